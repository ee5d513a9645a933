"""semantic_vad on the embedded server: eagerness decides how long a pause ends a turn."""

from __future__ import annotations

import numpy as np
import pytest

from dualagent.realtime import protocol as p
from dualagent.realtime.local.vad import EnergyVad, VadSettings

MS = 2 * p.SAMPLE_RATE_HZ // 1000  # bytes per millisecond of PCM16


def tone(ms: int, amplitude: int = 8000) -> bytes:
    t = np.arange(MS // 2 * ms) / p.SAMPLE_RATE_HZ
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (MS // 2) * ms


def turn_ends(eagerness: str | None, pause_ms: int) -> bool:
    config = {"type": "semantic_vad", **({"eagerness": eagerness} if eagerness else {})}
    vad = EnergyVad(VadSettings.from_turn_detection(config))
    events = vad.feed(silence(200) + tone(800) + silence(pause_ms))
    assert events[0] == ("speech_started", 200)
    return any(kind == "speech_stopped" for kind, _ in events)


@pytest.mark.parametrize(
    ("eagerness", "ends_after_ms", "continues_after_ms"),
    [("high", 350, 250), ("medium", 650, 550), (None, 650, 550), ("low", 1050, 950)],
)
def test_eagerness_sets_the_pause_that_ends_a_turn(
    eagerness, ends_after_ms, continues_after_ms
) -> None:
    assert turn_ends(eagerness, ends_after_ms)
    assert not turn_ends(eagerness, continues_after_ms)


def test_semantic_vad_ignores_a_silence_duration_and_keeps_the_other_settings() -> None:
    settings = VadSettings.from_turn_detection(
        {"type": "semantic_vad", "eagerness": "high", "create_response": False}
    )
    assert settings.silence_duration_ms == 300
    assert settings.create_response is False
    assert settings.interrupt_response is True  # the hosted default


def test_unknown_turn_detection_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="'server_vad', 'semantic_vad' or null"):
        VadSettings.from_turn_detection({"type": "push_to_talk"})
