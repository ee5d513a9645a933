"""Barge-in in the text route: the caller cuts in where the audio route's seeded draw says, the
agent's text is cut at the word its estimated speaking time reaches, and both sides know it."""

from typing import Any

import pytest

import dualagent
from dualagent.call.core import WORDS_PER_SECOND, AddTurn
from dualagent.mood import MoodProfile
from dualagent.realtime import protocol as p
from tests.test_call_core import Call, send_types, sends

LONG_ANSWER = " ".join(
    [
        "Thank",
        "you,",
        "I",
        "can",
        "help",
        "with",
        "that.",
        "I",
        "will",
        "first",
        "check",
        "your",
        "identity",
        "and",
        "then",
        "order",
        "a",
        "new",
        "card",
        "to",
        "the",
        "address",
        "we",
        "have",
        "on",
        "file",
        "for",
        "you,",
        "which",
        "takes",
        "five",
        "to",
        "seven",
        "business",
        "days.",
    ]
)  # 33 words: about 12.7 s at 2.6 words/s, past any cut-in point (1.5 to 4 s)


def _to_long_answer(call: Call, agent_writes: Any) -> list:
    """Greeting (never interrupted), the caller's request, then the agent's long answer."""
    call.start()
    call.created("cs")
    agent_writes(call, "Thank you for calling First Bank. How can I help?")
    call.done("cs")
    call.created("caller")
    call.write("caller", "I lost my card.")
    call.done("caller")
    call.created("cs")
    return agent_writes(call, LONG_ANSWER)


def _write(call: Call, text: str) -> list:
    return call.write("cs", text)


def test_the_caller_cuts_in_and_the_agent_keeps_only_the_words_said_before() -> None:
    call = Call(route="text", interrupt_probability=1.0, seed=3)
    effects = _to_long_answer(call, _write)
    answer = call.core.turns[2]
    assert answer["interrupted"] and call.core.interruptions == 1
    assert answer["planned_text"] == LONG_ANSWER
    said = answer["text"].split()
    assert 0 < len(said) < len(LONG_ANSWER.split())
    assert LONG_ANSWER.split()[: len(said)] == said  # a prefix, cut at a word
    cut_s = answer["end_s"] - answer["start_s"]
    assert 1.5 <= cut_s <= 4.0
    assert len(said) == pytest.approx(cut_s * WORDS_PER_SECOND, abs=1)
    # The caller hears exactly those words and answers at once, flagged as a barge-in.
    assert answer["heard"] == answer["text"]
    caller = sends(effects, "caller")
    assert [e["type"] for e in caller] == ["conversation.item.create", "response.create"]
    assert caller[0]["item"]["content"][0]["text"] == answer["text"]
    assert caller[1]["response"]["metadata"][p.BARGE_IN_METADATA_KEY] == "1"
    # The agent is told what was heard: its message becomes the words said.
    agent = sends(effects, "cs")
    assert [e["type"] for e in agent] == ["conversation.item.delete", "conversation.item.create"]
    assert agent[1]["item"]["role"] == "assistant"
    assert agent[1]["item"]["content"][0]["text"] == answer["text"]
    recorded = [e.turn for e in effects if isinstance(e, AddTurn)]
    assert recorded[0]["interrupted"] and recorded[0]["text"] == answer["text"]
    # The agent's response ends on its own: the turn is already the caller's.
    assert send_types(call.done("cs"), "caller") == []


def test_the_caller_starts_talking_just_before_the_agent_stops() -> None:
    call = Call(route="text", interrupt_probability=1.0, seed=3)
    _to_long_answer(call, _write)
    call.created("caller")
    call.write("caller", "Sorry, go ahead.")
    answer, cut_in = call.core.turns[2], call.core.turns[3]
    assert cut_in["start_s"] < answer["end_s"]  # both talk at once for a moment


def test_a_short_answer_ends_before_the_cut_in_point() -> None:
    call = Call(route="text", interrupt_probability=1.0, seed=3)
    call.start()
    call.created("cs")
    call.write("cs", "Hello, First Bank.")
    call.done("cs")
    call.created("caller")
    call.write("caller", "Hi.")
    call.done("caller")
    call.created("cs")
    call.write("cs", "Sure.")  # under half a second: the caller lets it finish
    assert not call.core.turns[2]["interrupted"]
    assert send_types(call.done("cs"), "caller") == ["response.create"]


def _speak(call: Call, text: str) -> list:
    words = len(text.split())
    ms = int(words / WORDS_PER_SECOND * 1000)
    return call.speak("cs", text, ms, chunks=max(1, ms // 100))[1]


@pytest.mark.parametrize("seed", [1, 3, 8])
def test_text_and_audio_routes_cut_in_at_the_same_point_for_a_seed(seed: int) -> None:
    text = Call(route="text", interrupt_probability=1.0, seed=seed)
    _to_long_answer(text, _write)
    audio = Call(route="audio", interrupt_probability=1.0, seed=seed)
    _to_long_answer(audio, _speak)
    text_turn, audio_turn = text.core.turns[2], audio.core.turns[2]
    assert text_turn["interrupted"] and audio_turn["interrupted"]
    # The audio route cuts at the end of the 100 ms chunk that reaches the point.
    text_cut = text_turn["end_s"] - text_turn["start_s"]
    audio_cut = audio_turn["end_s"] - audio_turn["start_s"]
    assert text_cut == pytest.approx(audio_cut, abs=0.11)


def test_the_persona_without_interruptions_never_cuts_in() -> None:
    call = Call(route="text", interrupt_probability=0.0, seed=3)
    _to_long_answer(call, _write)
    assert not call.core.turns[2]["interrupted"]


async def test_a_text_route_call_of_an_interrupting_caller_counts_its_barge_ins(
    local_server, tmp_path
) -> None:
    result = await dualagent.simulate(
        "frustrated", route="text", seed=1, output_dir=tmp_path, local_server=local_server
    )
    assert result.status == "completed", result.metadata.get("error")
    cut = [t for t in result.turns if t.get("interrupted")]
    assert cut, "a frustrated caller cuts in on the text route too"
    assert all(t["speaker"] == "cs" and t["text"] != t["planned_text"] for t in cut)
    metrics = result.record.metrics
    assert metrics["interruptions"] == len(cut)
    # The agent's cut answer is rewritten as an item the bridge creates: its server
    # acknowledged it, and every other item, before the call closed.
    assert result.metadata["unacknowledged_items"] == {}


def _cut_after_repeats(seed: int, mood: MoodProfile | None) -> bool:
    """Whether the caller cuts into the agent's long answer after being asked to repeat itself
    four times (short requests: never long enough to be cut into)."""
    call = Call(route="text", interrupt_probability=0.3, seed=seed, mood=mood)
    call.start()
    call.created("cs")
    call.write("cs", "First Bank, hello.")
    call.done("cs")
    for _ in range(4):
        call.created("caller")
        call.write("caller", "I lost my card.")
        call.done("caller")
        call.created("cs")
        call.write("cs", "Say that again?")
        call.done("cs")
    call.created("caller")
    call.write("caller", "I lost my card.")
    call.done("caller")
    call.created("cs")
    call.write("cs", LONG_ANSWER)
    return bool(call.core.turns[-1]["interrupted"])


def test_a_caller_frustrated_by_the_call_cuts_in_more_often() -> None:
    seeds = range(60)
    calm = sum(_cut_after_repeats(seed, None) for seed in seeds)
    riled = sum(_cut_after_repeats(seed, MoodProfile(start_patience=0.9)) for seed in seeds)
    # The same draws: every cut-in of the calm caller is one of the frustrated caller's too.
    assert riled > calm > 0
