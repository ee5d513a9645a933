"""Which words of a cut-off message were said: text placed inside the audio it came with."""

from dualagent.realtime.truncation import SpokenAlignment, spoken_fraction


def test_words_are_placed_inside_their_own_sentence_audio() -> None:
    alignment = SpokenAlignment()
    alignment.add_text("Your card is blocked.", 0.0)  # 2 s of audio follow
    alignment.add_text(" I can send a replacement.", 2.0)  # 8 s more
    assert alignment.spoken_before(1.0, 10.0) == "Your card"
    assert alignment.spoken_before(2.0, 10.0) == "Your card is blocked."
    assert alignment.spoken_before(6.0, 10.0) == "Your card is blocked. I can send a"
    assert alignment.spoken_before(10.0, 10.0) == "Your card is blocked. I can send a replacement."


def test_the_answer_does_not_depend_on_how_much_audio_came_after_the_cut() -> None:
    """A cancelled response may or may not have sent its next sentence: same words either way."""
    alignment = SpokenAlignment()
    alignment.add_text("one two three four", 0.0)
    short = alignment.spoken_before(1.5, 2.0)
    alignment.add_text(" five six seven eight", 2.0)  # 6 s of audio follow
    assert alignment.spoken_before(1.5, 8.0) == short == "one two three"
    # Spreading the whole text over the whole audio would have said less.
    assert spoken_fraction(alignment.text, 1.5, 8.0) == "one two"


def test_text_sent_ahead_of_the_audio_is_spread_over_it() -> None:
    alignment = SpokenAlignment()
    for word in ["Hello", " there,", " how", " are", " you?"]:
        alignment.add_text(word, 0.0)
    assert alignment.marks == [(0, 0.0)]
    assert alignment.spoken_before(2.5, 5.0) == "Hello there,"
    assert alignment.spoken_before(0.0, 5.0) == ""
    assert alignment.spoken_before(3.0, 0.0) == "Hello there, how are you?"  # no audio at all


def test_the_first_text_describes_the_audio_from_its_start() -> None:
    alignment = SpokenAlignment()
    alignment.add_text("late transcript", 0.6)
    assert alignment.marks == [(0, 0.0)]
    assert alignment.spoken_before(0.5, 1.0) == "late"


def test_a_cut_at_a_sentence_end_leaves_out_the_next_sentence_sent_before_its_audio() -> None:
    """The local server sends a sentence's text just before its audio: if that happens
    between the cut and the cancel landing, the words still end at the cut."""
    alignment = SpokenAlignment()
    alignment.add_text("one two three four", 0.0)
    before = alignment.spoken_before(2.0, 2.0)
    alignment.add_text(" five six", 2.0)  # its audio has not come yet
    assert alignment.spoken_before(2.0, 2.0) == before == "one two three four"
    assert alignment.spoken_before(2.0, 3.0) == before  # nor once some of it has
