"""The speech engines themselves: same input, same output, whatever came before."""

import pytest

from dualagent.realtime.local.engines import PocketSphinxASR, get_tts

REPLACEMENT = (
    "Your replacement card has been ordered and will arrive in five to seven business days "
    "at 12 Oak Street,"
)


def speech(text: str, voice: str) -> bytes:
    return b"".join(get_tts().synthesize(text, voice=voice, speed=1.0))


def cut(audio: bytes, fraction: float) -> bytes:
    """The start of an utterance, cut off mid-word as a barge-in does."""
    return audio[: int(len(audio) * fraction) // 2 * 2]


@pytest.mark.slow
def test_recognition_does_not_depend_on_the_utterance_before() -> None:
    """Worker threads share decoders, so any utterance may come after any other."""
    target = cut(speech(REPLACEMENT, "ash"), 1 / 3)
    before = [
        cut(speech(REPLACEMENT, "alloy"), 1 / 3),
        cut(speech(REPLACEMENT, "ash"), 1 / 3),
        cut(speech("Thank you for calling First Bank, this is Alex.", "ash"), 1 / 3),
        speech("Yes, yes. go on, go on.", "ash"),
    ]
    heard_alone = PocketSphinxASR().transcribe(target)  # a new decoder
    assert "replacement" in heard_alone
    asr = PocketSphinxASR()
    for previous in before:
        asr.transcribe(previous)
        assert asr.transcribe(target) == heard_alone
