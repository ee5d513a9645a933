"""Phone audio without I/O: G.711 μ-law, resampling as a stream, and the caller's speech
found in a 20 ms frame stream (:mod:`dualagent.realtime.phone_stream` uses them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soxr

from dualagent.realtime import protocol as p

__all__ = ["CallerSpeech", "Resampler", "mulaw_decode", "mulaw_encode"]

PHONE_RATE_HZ = 8000
FRAME_MS = 20
FRAME_BYTES = PHONE_RATE_HZ * FRAME_MS // 1000  # μ-law: one byte per sample
FRAME_BYTES_24K = 2 * p.SAMPLE_RATE_HZ * FRAME_MS // 1000  # the same 20 ms as PCM16 24 kHz
CALLER_PAUSE_S = 0.6
"""A pause this long in the caller's audio ends its speech (speech_stopped, committed)."""
SPEECH_RMS = 200.0
"""A 20 ms frame of the caller's PCM16 with this RMS or more is speech (the bridge sends digital
silence between utterances, so the detector needs no adaptation)."""

_MULAW_BIAS = 0x84  # in 16-bit terms (decoding)
_MULAW_BIAS_14 = 0x21  # in 14-bit terms (encoding)
_MULAW_CLIP_14 = 8159


# ------------------------------------------------------------------------------ μ-law (G.711)


def mulaw_encode(pcm16: bytes) -> bytes:
    """PCM16 (little-endian) to G.711 μ-law, one byte per sample (the reference algorithm,
    Sun's ``g711.c``, as ``audioop.lin2ulaw`` did: 14-bit magnitude, bias 33)."""
    samples = np.frombuffer(pcm16, dtype="<i2").astype(np.int32) >> 2
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.minimum(np.abs(samples), _MULAW_CLIP_14) + _MULAW_BIAS_14, 0x1FFF)
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 5, 0, 7)
    mantissa = (magnitude >> (exponent + 1)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def mulaw_decode(mulaw: bytes) -> bytes:
    """G.711 μ-law to PCM16 (little-endian)."""
    codes = ~np.frombuffer(mulaw, dtype=np.uint8).astype(np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = ((((codes & 0x0F) << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    samples = np.where(codes & 0x80, -magnitude, magnitude)
    return samples.astype("<i2").tobytes()


class Resampler:
    """PCM16 from one rate to another as a stream (no clicks at chunk boundaries)."""

    def __init__(self, in_rate_hz: int, out_rate_hz: int) -> None:
        self._stream = soxr.ResampleStream(in_rate_hz, out_rate_hz, 1, dtype="int16")

    def __call__(self, pcm16: bytes, *, last: bool = False) -> bytes:
        samples = np.frombuffer(pcm16, dtype="<i2")
        return self._stream.resample_chunk(samples, last=last).astype("<i2").tobytes()


# ------------------------------------------------------------------------------ caller speech


@dataclass
class CallerSpeech:
    """Finds the caller's speech in the stream sent to the bot, 20 ms frame by frame (no I/O).

    :meth:`frame` takes one frame of PCM16 24 kHz and returns what happened at its end:
    ``("started", start_ms)``, ``("stopped", end_ms, pcm16)`` (the speech, from its first
    voiced frame to its last) or nothing. Positions count from the stream's start.
    """

    pause_frames: int = round(CALLER_PAUSE_S * 1000 / FRAME_MS)
    level_rms: float = SPEECH_RMS
    frames: int = 0
    _speech: bytearray | None = None
    _start_frame: int = 0
    _last_voiced: int = -1
    _trailing: list[bytes] = field(default_factory=list)
    voiced: bool = False  # the last frame was speech

    def frame(self, pcm16: bytes) -> tuple[Any, ...] | None:
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.float64)
        voiced = bool(samples.size) and float(np.sqrt(np.mean(samples**2))) >= self.level_rms
        self.voiced = voiced
        index, self.frames = self.frames, self.frames + 1
        if self._speech is None:
            if not voiced:
                return None
            self._speech, self._start_frame, self._last_voiced = bytearray(pcm16), index, index
            self._trailing = []
            return ("started", index * FRAME_MS)
        if voiced:
            for held in self._trailing:
                self._speech += held
            self._trailing = []
            self._speech += pcm16
            self._last_voiced = index
            return None
        self._trailing.append(pcm16)
        if index - self._last_voiced < self.pause_frames:
            return None
        speech, self._speech, self._trailing = bytes(self._speech), None, []
        return ("stopped", (self._last_voiced + 1) * FRAME_MS, speech)
