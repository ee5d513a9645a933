"""Phone-line conditions applied to the audio between the two agents.

- ``clean``: audio passes untouched.
- ``telephone``: the narrow band of a phone call: 8 kHz sampling (so nothing above 4 kHz), a
  300 Hz high-pass, and 8-bit mu-law companding (G.711), then back to 24 kHz.
- ``noisy``: white noise added at a given signal-to-noise ratio (``snr_db``) relative to the
  running speech level of the talker.

The degraded audio is what the other agent hears *and* what the recording holds, so speech
recognition errors and outcomes can be compared across lines. Each direction of the call gets
its own :class:`LineChannel` (filter and resampler state, seeded noise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from dualagent.realtime.protocol import SAMPLE_RATE_HZ, float_to_pcm16, pcm16_to_float

LINE_NAMES = ("clean", "telephone", "noisy")
PHONE_RATE_HZ = 8_000
MU = 255.0


@dataclass(frozen=True)
class LineModel:
    """A line condition; :meth:`channel` makes the stateful processor for one direction."""

    name: str = "clean"
    snr_db: float | None = None

    @property
    def is_clean(self) -> bool:
        return self.name == "clean"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "snr_db": self.snr_db}

    def channel(self, seed: int = 0) -> LineChannel:
        return LineChannel(self, seed)


def make_line(spec: Any) -> LineModel:
    """A :class:`LineModel` from None, a name (``noisy:15`` sets the SNR), a mapping or a model
    with ``name``/``snr_db`` attributes. Raises ``ValueError`` naming the valid choices."""
    if spec is None:
        return LineModel()
    if isinstance(spec, LineModel):
        return spec
    if isinstance(spec, str):
        name, _, snr = spec.partition(":")
        snr_db = None
        if snr:
            try:
                snr_db = float(snr)
            except ValueError:
                raise ValueError(
                    f"invalid line SNR {snr!r} in {spec!r}; use e.g. noisy:15"
                ) from None
        return _checked(name, snr_db if snr else (15.0 if name == "noisy" else None), spec)
    if isinstance(spec, dict):
        return _checked(spec.get("name", "clean"), spec.get("snr_db"), spec)
    return _checked(getattr(spec, "name", "clean"), getattr(spec, "snr_db", None), spec)


def _checked(name: str, snr_db: float | None, spec: Any) -> LineModel:
    if name not in LINE_NAMES:
        raise ValueError(f"invalid line {spec!r}; valid choices: clean, telephone, noisy[:SNR_DB]")
    if name == "noisy" and snr_db is None:
        snr_db = 15.0
    return LineModel(name, float(snr_db) if snr_db is not None else None)


class LineChannel:
    """Processes one talker's audio, chunk by chunk, keeping filter state across chunks."""

    def __init__(self, model: LineModel, seed: int = 0) -> None:
        self.model = model
        self._rng = np.random.default_rng(seed)
        if model.name == "telephone":  # resampler state only where it is used
            self._down = soxr.ResampleStream(SAMPLE_RATE_HZ, PHONE_RATE_HZ, 1, dtype="float32")
            self._up = soxr.ResampleStream(PHONE_RATE_HZ, SAMPLE_RATE_HZ, 1, dtype="float32")
        # One-pole high-pass at 300 Hz (phone lines carry no bass).
        self._hp_alpha = 1.0 / (1.0 + 2 * math.pi * 300 / PHONE_RATE_HZ)
        self._hp_prev_in = 0.0
        self._hp_prev_out = 0.0
        self._speech_rms = 0.1  # running level of the talker (about -20 dBFS to start)

    def process(self, pcm16: bytes) -> bytes:
        if self.model.is_clean or not pcm16:
            return pcm16
        audio = pcm16_to_float(pcm16)
        out = self._telephone(audio) if self.model.name == "telephone" else self._noisy(audio)
        return float_to_pcm16(out)

    def _telephone(self, audio: np.ndarray) -> np.ndarray:
        narrow = self._down.resample_chunk(audio.astype(np.float32))
        narrow = self._high_pass(narrow)
        narrow = mu_law_roundtrip(narrow)
        wide = self._up.resample_chunk(narrow.astype(np.float32))
        # Keep the chunk's length so the timeline is unchanged (the streams delay a few ms).
        if len(wide) < len(audio):
            wide = np.concatenate([np.zeros(len(audio) - len(wide), dtype=np.float32), wide])
        return wide[: len(audio)]

    def _high_pass(self, x: np.ndarray) -> np.ndarray:
        out = np.empty_like(x)
        alpha, prev_in, prev_out = self._hp_alpha, self._hp_prev_in, self._hp_prev_out
        for i, sample in enumerate(x):  # chunks are ~1600 samples at 8 kHz: cheap enough
            prev_out = alpha * (prev_out + sample - prev_in)
            prev_in = sample
            out[i] = prev_out
        self._hp_prev_in, self._hp_prev_out = prev_in, prev_out
        return out

    def _noisy(self, audio: np.ndarray) -> np.ndarray:
        rms = float(np.sqrt(np.mean(audio**2))) if len(audio) else 0.0
        if rms > 0.01:  # track the level of speech, not of pauses
            self._speech_rms = 0.9 * self._speech_rms + 0.1 * rms
        noise_rms = self._speech_rms / (10 ** ((self.model.snr_db or 15.0) / 20))
        return audio + self._rng.normal(0.0, noise_rms, len(audio)).astype(np.float32)


def mu_law_roundtrip(x: np.ndarray) -> np.ndarray:
    """Encode to 8-bit mu-law and decode back (G.711's quantisation noise)."""
    x = np.clip(x, -1.0, 1.0)
    encoded = np.sign(x) * np.log1p(MU * np.abs(x)) / math.log1p(MU)
    quantised = np.round(encoded * 127) / 127
    return np.sign(quantised) * (np.power(1 + MU, np.abs(quantised)) - 1) / MU
