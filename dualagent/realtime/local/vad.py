"""Server-side voice activity detection for the embedded server (``turn_detection``).

A client that streams microphone audio and sets ``turn_detection: {"type": "server_vad"}``
expects the server to find where speech starts and stops, commit the buffer and answer on its
own, as the hosted service does. This is an energy detector over 10 ms frames: simple, fast and
deterministic, which suits synthetic speech and clean or moderately noisy lines. It has no I/O:
:meth:`EnergyVad.feed` takes PCM16 and returns the speech starts and stops it found, with their
positions in milliseconds of all audio fed so far (the protocol's ``audio_start_ms`` and
``audio_end_ms``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from dualagent.realtime import protocol as p

FRAME_MS = 10
MIN_SPEECH_MS = 50  # a click or a breath is not speech
# semantic_vad has no model here: its eagerness picks how long a pause ends a turn.
EAGERNESS_SILENCE_MS = {"low": 1000, "medium": 600, "auto": 600, "high": 300}


@dataclass(frozen=True)
class VadSettings:
    """The ``turn_detection`` fields the detector and the session use, with the service's
    defaults."""

    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    create_response: bool = True
    interrupt_response: bool = True

    @classmethod
    def from_turn_detection(cls, config: dict[str, Any] | None) -> VadSettings | None:
        """Settings for a session's ``turn_detection``; ``None`` when it is off (null)."""
        if not config:
            return None
        kind = config.get("type", "server_vad")
        if kind not in ("server_vad", "semantic_vad"):
            raise ValueError(
                f"turn_detection.type {kind!r} is not supported; use 'server_vad', "
                "'semantic_vad' or null"
            )
        silence = config.get("silence_duration_ms")
        if kind == "semantic_vad":
            silence = EAGERNESS_SILENCE_MS.get(config.get("eagerness") or "auto", 600)
        values = {
            "threshold": config.get("threshold"),
            "prefix_padding_ms": config.get("prefix_padding_ms"),
            "silence_duration_ms": silence,
            "create_response": config.get("create_response"),
            "interrupt_response": config.get("interrupt_response"),
        }
        settings = cls(**{k: v for k, v in values.items() if v is not None})
        if not 0.0 <= settings.threshold <= 1.0:
            raise ValueError(f"turn_detection.threshold {settings.threshold} is not in 0.0–1.0")
        return settings

    @property
    def level_dbfs(self) -> float:
        """Frame level above which a frame is speech: threshold 0.5 → -35 dBFS, 1.0 → -10."""
        return -60.0 + 50.0 * self.threshold


def default_turn_detection() -> dict[str, Any]:
    """A new session's ``turn_detection``: server VAD on, with the hosted service's defaults.

    A client that never sets ``turn_detection`` (Pipecat's defaults, a plain SDK script) gets
    its speech answered, as it would from the hosted service. Our bridge sets ``null``.
    """
    normal = normalize_turn_detection({"type": "server_vad"})
    assert normal is not None
    return normal


SERVER_VAD_FIELDS = (
    "threshold",
    "prefix_padding_ms",
    "silence_duration_ms",
    "idle_timeout_ms",
    "create_response",
    "interrupt_response",
)
SEMANTIC_VAD_FIELDS = ("eagerness", "create_response", "interrupt_response")


def normalize_turn_detection(config: dict[str, Any] | None) -> dict[str, Any] | None:
    """``turn_detection`` as the session reports it: the type's fields with their defaults
    filled in, nothing else (``None`` stays off). Raises ``ValueError`` for a bad setting."""
    settings = VadSettings.from_turn_detection(config)
    if settings is None or config is None:
        return None
    kind = config.get("type", "server_vad")
    defaults: dict[str, Any] = {
        "threshold": settings.threshold,
        "prefix_padding_ms": settings.prefix_padding_ms,
        "silence_duration_ms": settings.silence_duration_ms,
        "create_response": settings.create_response,
        "interrupt_response": settings.interrupt_response,
        "eagerness": config.get("eagerness") or "auto",
    }
    names = SERVER_VAD_FIELDS if kind == "server_vad" else SEMANTIC_VAD_FIELDS
    normal: dict[str, Any] = {"type": kind}
    for name in names:
        value = config.get(name, defaults.get(name))
        if value is not None:
            normal[name] = value
    return normal


VadEvent = tuple[Literal["speech_started", "speech_stopped"], int]


class EnergyVad:
    """Finds speech starts and stops in a stream of PCM16 (24 kHz mono) audio."""

    def __init__(self, settings: VadSettings) -> None:
        self.settings = settings
        self.frame_bytes = 2 * p.SAMPLE_RATE_HZ * FRAME_MS // 1000
        self._rest = b""  # the part of a frame not complete yet
        self._frames = 0  # whole frames seen
        self.speaking = False
        self._run = 0  # consecutive frames on the other side of the current state
        self._run_start = 0  # frame index where that run began

    @property
    def position_ms(self) -> int:
        """Milliseconds of audio fed so far (whole frames)."""
        return self._frames * FRAME_MS

    def feed(self, pcm16: bytes) -> list[VadEvent]:
        """Feed audio; returns ``(kind, ms)`` for each speech start or stop it completes."""
        data = self._rest + pcm16
        whole = len(data) - len(data) % self.frame_bytes
        self._rest = data[whole:]
        if not whole:
            return []
        samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
        frames = samples.reshape(-1, self.frame_bytes // 2)
        rms = np.sqrt(np.mean(frames * frames, axis=1))
        level = 20.0 * np.log10(np.maximum(rms, 1e-10))
        loud = level > self.settings.level_dbfs
        need_speech = math.ceil(MIN_SPEECH_MS / FRAME_MS)
        need_silence = max(1, math.ceil(self.settings.silence_duration_ms / FRAME_MS))
        events: list[VadEvent] = []
        for is_loud in loud:
            if is_loud != self.speaking:  # a frame that argues for a change of state
                if self._run == 0:
                    self._run_start = self._frames
                self._run += 1
                if self._run >= (need_silence if self.speaking else need_speech):
                    self.speaking = not self.speaking
                    kind = "speech_started" if self.speaking else "speech_stopped"
                    events.append((kind, self._run_start * FRAME_MS))
                    self._run = 0
            else:
                self._run = 0
            self._frames += 1
        return events
