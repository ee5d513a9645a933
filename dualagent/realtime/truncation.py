"""Which words of a spoken message were said before its audio was cut off (barge-in).

Both ends of a truncation need the answer: the bridge keeps the heard words in the transcript,
and the local server keeps them in the agent's own memory of the conversation (as the hosted
service does after ``conversation.item.truncate``).

A message streams as text deltas interleaved with audio deltas. :class:`SpokenAlignment` notes
where in the audio each text delta arrived, so the words of a sentence are placed inside that
sentence's audio rather than spread over the whole message. Deltas that arrive together (a
service that sends all of the transcript ahead of the audio) form one segment, which falls back
to spreading them evenly over the audio that follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_WORD = re.compile(r"\S+")


@dataclass
class SpokenAlignment:
    """A message's text, with the audio offset at which each piece of it arrived."""

    text: str = ""
    # (characters of text before the piece, seconds of audio before it), one per segment.
    marks: list[tuple[int, float]] = field(default_factory=list)

    def add_text(self, delta: str, audio_s: float) -> None:
        """Append a text delta that arrived after ``audio_s`` seconds of the message's audio."""
        if not delta:
            return
        if not self.marks:  # the text describes the audio from its start
            self.marks.append((0, 0.0))
        elif audio_s > self.marks[-1][1]:
            self.marks.append((len(self.text), audio_s))
        self.text += delta

    def spoken_before(self, cut_s: float, total_audio_s: float) -> str:
        """The words said in the first ``cut_s`` seconds of ``total_audio_s`` of audio.

        Text that arrived at or after ``cut_s`` is not counted, even when no audio followed it
        yet: the next sentence's text may come just before its audio, or just after the cut.
        """
        if total_audio_s <= 0:  # no audio at all (a text reply): all of it was "said"
            return " ".join(self.text.split())
        spoken_chars = 0.0
        for i, (char_start, audio_start) in enumerate(self.marks):
            if i and audio_start >= cut_s:  # its audio had not started at the cut
                break
            last = i + 1 == len(self.marks)
            char_end = len(self.text) if last else self.marks[i + 1][0]
            audio_end = total_audio_s if last else self.marks[i + 1][1]
            if cut_s >= audio_end:
                spoken_chars = char_end
                continue
            if cut_s > audio_start and audio_end > audio_start:
                share = (cut_s - audio_start) / (audio_end - audio_start)
                spoken_chars = char_start + share * (char_end - char_start)
            break
        # A word counts as said once the cut falls past its middle.
        words = [
            m.group()
            for m in _WORD.finditer(self.text)
            if (m.start() + m.end()) / 2 <= spoken_chars
        ]
        return " ".join(words)


def spoken_fraction(text: str, cut_s: float, total_audio_s: float) -> str:
    """The words said before ``cut_s``, knowing only the whole text and audio length."""
    alignment = SpokenAlignment()
    alignment.add_text(text, 0.0)
    return alignment.spoken_before(cut_s, total_audio_s)
