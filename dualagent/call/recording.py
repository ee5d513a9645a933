"""Call recording: three audio files on one virtual timeline plus the call's JSON records.

`CallRecorder` writes one folder per call, laid out as described in
``docs/recording-format.md``::

    {directory}/{conversation_id}/
        caller_audio.<ext>       mono, the caller's channel
        cs_audio.<ext>           mono, the customer-service agent's channel
        stereo_recording.<ext>   stereo, caller LEFT, cs RIGHT
        transcript.json  function_calls.json  session_events.json  call_metadata.json

Audio arrives as PCM16 mono chunks that are *placed* at a time on the call's virtual timeline
(`place_audio`). Placed audio stays in a small in-memory window until `flush(until_s)` promises
that nothing more will land before ``until_s``; then that part is written to all three files at
once (silence where nobody spoke) and freed, so memory is bounded by the unflushed window rather
than by the call's length. A barge-in is two speakers placed over the same stretch of time.

The recorder opens everything on construction: the folder is created, the three audio files are
opened for incremental writing and ``call_metadata.json`` is written with ``"status": "running"``
and the recording process (pid, host, start time) so a crash leaves a record saying the call
never finished, and :func:`dualagent.call.record.load_call` can tell a call still running from
one whose process died (``"crashed"``). While the call runs, the transcript and tool calls are
checkpointed (rewritten atomically at most every :data:`CHECKPOINT_INTERVAL_S`, when a turn
starts and when audio is flushed) and events are appended to ``session_events.jsonl``, so a
process killed with SIGKILL still leaves parseable JSON and audio files whose headers count
every frame written (libsndfile updates a WAV header as it writes). `close` writes the final
files (``session_events.json`` replaces the ``.jsonl``); it is synchronous and idempotent so it
can run from ``finally`` blocks, exception handlers and after task cancellation.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
import soundfile as sf

from dualagent.call.event_copies import recorded_event, scrub_event
from dualagent.call.sound_files import (
    SoundFileArgs,
    close_sound_file,
    empty_audio,
    open_sound_file,
)
from dualagent.files import json_text, write_json_atomic, write_text_atomic

__all__ = [
    "AUDIO_FORMATS",
    "SPEAKERS",
    "CallRecorder",
    "scrub_event",
    "validate_conversation_id",
]

logger = logging.getLogger(__name__)

Speaker = Literal["caller", "cs"]
Direction = Literal["sent", "received"]

#: Channel index of each speaker in the stereo file (caller LEFT, cs RIGHT).
SPEAKERS: dict[str, int] = {"caller": 0, "cs": 1}

#: Supported containers → (libsndfile format, subtype).
AUDIO_FORMATS: dict[str, tuple[str, str]] = {
    "wav": ("WAV", "PCM_16"),
    "flac": ("FLAC", "PCM_16"),
    "ogg": ("OGG", "VORBIS"),
}

_ID_MAX_LEN = 128
_ID_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
_ID_RULE = f"letters, digits, '-' and '_' only, 1-{_ID_MAX_LEN} characters"

# Smallest buffer we keep allocated, and the largest block handed to libsndfile in one call
# (small blocks keep encoder memory flat and avoid giant temporaries for long silences).
_MIN_BUFFER_S = 5.0
_WRITE_BLOCK_FRAMES = 1 << 15

_AUDIO_FILES = ("caller_audio", "cs_audio", "stereo_recording")
_JSON_FILES = {
    "transcript": "transcript.json",
    "function_calls": "function_calls.json",
    "session_events": "session_events.json",
    "call_metadata": "call_metadata.json",
}
#: Events of a running call, one JSON object a line (replaced by session_events.json at close).
EVENTS_JOURNAL = "session_events.jsonl"
#: The most often the transcript and tool calls of a running call are rewritten on disk (the
#: first time this long after the call opened: a crash loses at most this much of a call,
#: and a fast text call, done sooner, writes its files once).
CHECKPOINT_INTERVAL_S = 0.5

# Keys the recorder owns in call_metadata.json; they override same-named user metadata.
_MANAGED_METADATA_KEYS = (
    "conversation_id",
    "status",
    "started_at",
    "ended_at",
    "end_reason",
    "error",
    "audio",
    "process",
)


def validate_conversation_id(conversation_id: str) -> str:
    """Return ``conversation_id`` if it is safe as a folder name, else raise ``ValueError``.

    The id becomes a directory name, so anything that could escape the output folder
    (``..``, ``/``) or confuse shells (spaces) is rejected.
    """
    if (
        not isinstance(conversation_id, str)
        or not 1 <= len(conversation_id) <= _ID_MAX_LEN
        or not _ID_ALLOWED.issuperset(conversation_id)
    ):
        raise ValueError(f"invalid conversation id {conversation_id!r}: must be {_ID_RULE}")
    return conversation_id


def _write_compact_json_atomic(path: Path, data: Any) -> None:
    write_json_atomic(path, data, indent=None)


def _this_process() -> dict[str, Any]:
    """The recording process, as call_metadata.json names it while the call runs."""
    return dict(_process_identity(os.getpid()))


@functools.cache
def _process_identity(pid: int) -> tuple[tuple[str, Any], ...]:
    import psutil

    return (
        ("pid", pid),
        ("host", socket.gethostname()),
        ("create_time", psutil.Process(pid).create_time()),
    )


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class CallRecorder:
    """Record one call: audio on a shared virtual timeline plus transcript, tools and events.

    Files go to ``Path(directory) / conversation_id`` (`directory` is the output dir, e.g.
    ``agent_conversations``). Everything is opened on construction; `open` exists only as an
    idempotent alias. Not thread-safe beyond a coarse lock: meant for one asyncio loop.
    """

    def __init__(
        self,
        directory: Path | str,
        conversation_id: str,
        *,
        audio_format: str = "wav",
        sample_rate_hz: int = 24000,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        validate_conversation_id(conversation_id)
        if audio_format not in AUDIO_FORMATS:
            raise ValueError(
                f"invalid audio_format {audio_format!r}: choose one of {', '.join(AUDIO_FORMATS)}"
            )
        if not isinstance(sample_rate_hz, int) or sample_rate_hz <= 0:
            raise ValueError(f"sample_rate_hz must be a positive int, got {sample_rate_hz!r}")

        self.conversation_id = conversation_id
        self.audio_format = audio_format
        self.sample_rate_hz = sample_rate_hz
        self._dir = Path(directory) / conversation_id
        self._paths: dict[str, Path] = {
            name: self._dir / f"{name}.{audio_format}" for name in _AUDIO_FILES
        }
        self._paths.update({name: self._dir / fn for name, fn in _JSON_FILES.items()})

        self._metadata: dict[str, Any] = dict(metadata or {})
        self._status = "running"
        self._started_at = _utc_now()
        self._ended_at: str | None = None
        self._end_reason: str | None = None
        self._error: str | None = None
        self._audio_info: dict[str, Any] | None = None

        self._turns: list[dict[str, Any]] = []
        self._calls: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._journaled = 0  # events already appended to the journal
        self._checkpoint_at = time.monotonic()  # of the last checkpoint (or the opening)
        self._process = _this_process()

        # Unflushed window: frame 0 of `_buf` is absolute frame `_flushed`. Column 0 = caller,
        # column 1 = cs. Invariant: rows >= `_pending` are zero, so silence is free.
        self._min_cap = max(1, int(_MIN_BUFFER_S * sample_rate_hz))
        self._buf = np.zeros((self._min_cap, 2), dtype=np.int16)
        self._pending = 0
        self._flushed = 0
        self._ends = [0, 0]  # absolute end frame of each speaker's latest audio
        self._clip_warned = False
        self._closed_warned = False

        self._files: dict[str, sf.SoundFile] = {}
        self._lock = threading.RLock()
        self._opened = False
        self._closed = False
        self._metadata_holds = 0  # inside metadata_held(): call_metadata.json waits
        self._checkpointed: dict[str, str] = {}  # what the last checkpoint wrote
        self._metadata_due = False
        self.open()

    # ------------------------------------------------------------------ lifecycle

    def open(self) -> CallRecorder:
        """Create the folder, open the audio files, write the "running" metadata. Idempotent."""
        with self._lock:
            if self._opened:
                return self
            self._dir.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._dir.mkdir()
            except FileExistsError:
                # An empty folder (e.g. pre-created by a scheduler) is fine; anything in it
                # belongs to another call and must not be lost.
                if not self._dir.is_dir() or any(self._dir.iterdir()):
                    raise FileExistsError(
                        f"conversation folder already exists and is not empty: {self._dir}"
                    ) from None
            try:
                # Empty audio files now (a reader, or a crash, finds valid ones); libsndfile
                # opens them at the first audio: a text-route call never pays for that.
                for name in _AUDIO_FILES:
                    with open(self._paths[name], "xb") as fh:
                        fh.write(empty_audio(self._sound_file_args(name)))
                self._write_metadata()
            except BaseException:
                self._close_sound_files()
                raise
            self._opened = True
            return self

    def __enter__(self) -> CallRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        elif isinstance(exc, Exception) and not isinstance(exc, asyncio.CancelledError):
            self._close("error", "error", repr(exc), raise_errors=False)
        else:
            # KeyboardInterrupt, CancelledError, SystemExit: someone stopped the call.
            self._close("interrupted", "interrupted", None, raise_errors=False)

    def close(
        self,
        status: str = "completed",
        end_reason: str | None = None,
        error: str | None = None,
    ) -> None:
        """Flush and finalise every file. Idempotent, synchronous, safe in exception handlers.

        Every step is attempted even if an earlier one fails; the first failure is re-raised
        at the end so a broken disk does not go unnoticed.
        """
        self._close(status, end_reason, error, raise_errors=True)

    def _close(
        self, status: str, end_reason: str | None, error: str | None, *, raise_errors: bool
    ) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._status, self._end_reason, self._error = status, end_reason, error
            self._ended_at = _utc_now()
            failures: list[BaseException] = []

            def attempt(what: str, fn: Any, *args: Any) -> None:
                try:
                    fn(*args)
                except Exception as exc:  # keep going: the other files still matter
                    logger.exception("recording %s: %s failed", self.conversation_id, what)
                    failures.append(exc)

            attempt("final audio flush", self._flush_all)
            for name, f in list(self._files.items()):
                attempt(f"closing {name}", close_sound_file, f)
            attempt("audio info", self._collect_audio_info)
            attempt(
                "transcript.json",
                write_json_atomic,
                self._paths["transcript"],
                {"conversation_id": self.conversation_id, "turns": self._turns},
            )
            attempt(
                "function_calls.json",
                write_json_atomic,
                self._paths["function_calls"],
                {"conversation_id": self.conversation_id, "calls": self._calls},
            )
            attempt(
                "session_events.json",
                _write_compact_json_atomic,  # a machine log: compact, it is the largest file
                self._paths["session_events"],
                {"conversation_id": self.conversation_id, "events": self._events},
            )
            attempt("call_metadata.json", self._write_metadata)
            attempt("removing the event journal", self._remove_journal)
            # Drop the window; a closed recorder holds no audio.
            self._buf = np.zeros((0, 2), dtype=np.int16)
            self._pending = 0
            if failures and raise_errors:
                raise failures[0]

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def directory(self) -> Path:
        """The conversation folder (``<directory>/<conversation_id>``)."""
        return self._dir

    @property
    def paths(self) -> dict[str, Path]:
        """File name → path: caller_audio, cs_audio, stereo_recording, transcript,
        function_calls, session_events, call_metadata."""
        return dict(self._paths)

    # ------------------------------------------------------------------ audio

    @property
    def timeline_s(self) -> float:
        """End of the latest audio placed or flushed, in seconds: the call's length so far."""
        return self._end_frame() / self.sample_rate_hz

    @property
    def flushed_s(self) -> float:
        """Timeline point up to which audio is already on disk (placing before it is clipped)."""
        return self._flushed / self.sample_rate_hz

    @property
    def pending_nbytes(self) -> int:
        """Bytes currently allocated for the unflushed window (for memory checks)."""
        return int(self._buf.nbytes)

    def place_audio(self, speaker: Speaker, pcm16: bytes, at_s: float) -> None:
        """Put PCM16 mono ``pcm16`` on ``speaker``'s channel starting at timeline ``at_s``.

        A later placement over the same speaker's earlier audio overwrites it. Audio before the
        flushed point cannot be written any more; that part is dropped with a warning.
        """
        ch = self._channel(speaker)
        if len(pcm16) % 2:
            raise ValueError(f"PCM16 audio must have an even byte count, got {len(pcm16)}")
        if not math.isfinite(at_s):
            raise ValueError(f"at_s must be a finite number of seconds, got {at_s!r}")
        with self._lock:
            if self._ignore_closed("place_audio"):
                return
            samples = np.frombuffer(pcm16, dtype="<i2")
            start = round(at_s * self.sample_rate_hz)
            end = start + len(samples)
            if start < self._flushed:
                clipped = min(self._flushed, end) - start
                if not self._clip_warned:
                    # Once per call: a late chunk each 20 ms would otherwise flood the log.
                    logger.warning(
                        "recording %s: %s audio at %.3fs is before the flushed point %.3fs; "
                        "dropping %d frames (further clips not logged)",
                        self.conversation_id,
                        speaker,
                        at_s,
                        self.flushed_s,
                        clipped,
                    )
                    self._clip_warned = True
                samples = samples[clipped:]
                start = self._flushed
            if not len(samples):
                return
            rel = start - self._flushed
            self._ensure_capacity(rel + len(samples))
            self._buf[rel : rel + len(samples), ch] = samples
            self._pending = max(self._pending, rel + len(samples))
            self._ends[ch] = max(self._ends[ch], end)

    def flush(self, until_s: float) -> None:
        """Write everything before ``until_s`` to disk (silence where nobody spoke) and free it.

        A promise that nothing more will be placed before ``until_s``.
        """
        with self._lock:
            if self._ignore_closed("flush"):
                return
            self._flush_to(round(until_s * self.sample_rate_hz))
            self._checkpoint()

    def _flush_all(self) -> None:
        end = self._end_frame()
        if end == 0 and self.audio_format == "flac":
            # libsndfile writes a 0-byte FLAC for an empty stream, which nothing can read; one
            # silent frame keeps the files valid (and timeline_s moves with it).
            end = 1
        self._flush_to(end)

    def _flush_to(self, frame: int) -> None:
        n = frame - self._flushed
        if n <= 0:
            return
        from_buf = min(n, self._pending)
        if from_buf:
            self._write_block(self._buf[:from_buf])
        silence = n - from_buf
        if silence:
            zeros = np.zeros((min(silence, _WRITE_BLOCK_FRAMES), 2), dtype=np.int16)
            while silence:
                k = min(silence, len(zeros))
                self._write_block(zeros[:k])
                silence -= k
        # Shift the remaining window to the front and keep the zero-tail invariant.
        rest = self._pending - from_buf
        if rest:
            self._buf[:rest] = self._buf[from_buf : self._pending]
        self._buf[rest : self._pending] = 0
        self._pending = rest
        self._flushed = frame
        # Give memory back after a long window (e.g. a burst placed far ahead).
        cap = len(self._buf)
        if cap > 4 * max(rest, self._min_cap):
            new = np.zeros((max(2 * rest, self._min_cap), 2), dtype=np.int16)
            new[:rest] = self._buf[:rest]
            self._buf = new

    def _sound_file_args(self, name: str) -> SoundFileArgs:
        container, subtype = AUDIO_FORMATS[self.audio_format]
        channels = 2 if name == "stereo_recording" else 1
        # Speech needs little: Vorbis at this level keeps a call-minute of all three files
        # well under 1 MB and still sounds clean.
        compression = 0.8 if container == "OGG" else None
        return self.sample_rate_hz, channels, container, subtype, compression

    def _open_sound_files(self) -> None:
        try:
            for name in _AUDIO_FILES:  # over the empty files open() made
                self._files[name] = open_sound_file(self._paths[name], self._sound_file_args(name))
        except BaseException:
            self._close_sound_files()
            raise

    def _close_sound_files(self) -> None:
        for f in self._files.values():
            with suppress(Exception):
                f.close()
        self._files.clear()

    def _write_block(self, block: np.ndarray) -> None:
        if not self._files:
            self._open_sound_files()
        for i in range(0, len(block), _WRITE_BLOCK_FRAMES):
            part = block[i : i + _WRITE_BLOCK_FRAMES]
            self._files["caller_audio"].write(np.ascontiguousarray(part[:, 0]))
            self._files["cs_audio"].write(np.ascontiguousarray(part[:, 1]))
            self._files["stereo_recording"].write(part)

    def _ensure_capacity(self, frames: int) -> None:
        cap = len(self._buf)
        if frames <= cap:
            return
        new = np.zeros((max(frames, 2 * cap, self._min_cap), 2), dtype=np.int16)
        new[: self._pending] = self._buf[: self._pending]
        self._buf = new

    def _end_frame(self) -> int:
        return max(self._flushed, *self._ends)

    def _channel(self, speaker: str) -> int:
        try:
            return SPEAKERS[speaker]
        except KeyError:
            raise ValueError(
                f"invalid speaker {speaker!r}: choose one of {', '.join(SPEAKERS)}"
            ) from None

    def _ignore_closed(self, what: str) -> bool:
        # Late events during teardown are normal; note them once instead of raising.
        if not self._closed:
            return False
        if not self._closed_warned:
            logger.warning(
                "recording %s: %s after close ignored (further ones not logged)",
                self.conversation_id,
                what,
            )
            self._closed_warned = True
        return True

    # ------------------------------------------------------------------ data

    def add_turn(self, turn: Mapping[str, Any]) -> int:
        """Append a transcript turn (schema in the recording-format doc); return its index.

        ``index`` defaults to the turn's position. The transcript stays in index order: an
        utterance is added when it ends, and one cut into (its end waiting for where the agent's
        own VAD stops it) can end after the caller's words that cut in.
        """
        with self._lock:
            if self._ignore_closed("add_turn"):
                return -1
            self._checkpoint()  # the turns before this one are done: keep them on disk
            entry = dict(turn)
            entry.setdefault("index", len(self._turns))
            position = len(self._turns)
            while position and self._turns[position - 1].get("index", -1) > entry["index"]:
                position -= 1
            self._turns.insert(position, entry)
            return int(entry["index"])

    def update_turn(self, index: int, **fields: Any) -> None:
        """Set ``fields`` on the turn whose ``index`` is ``index`` (KeyError if unknown)."""
        with self._lock:
            if self._ignore_closed("update_turn"):
                return
            self._find(self._turns, "index", index, "turn").update(fields)

    def add_function_call(self, call: Mapping[str, Any]) -> None:
        """Append a tool-call record (schema in the recording-format doc)."""
        with self._lock:
            if self._ignore_closed("add_function_call"):
                return
            self._calls.append(dict(call))

    def update_function_call(self, call_id: str, **fields: Any) -> None:
        """Set ``fields`` (e.g. ``output``, ``ok``) on the call with ``call_id``."""
        with self._lock:
            if self._ignore_closed("update_function_call"):
                return
            self._find(self._calls, "call_id", call_id, "function call").update(fields)

    def add_event(
        self,
        agent: str,
        direction: Direction,
        event: Mapping[str, Any],
        t_s: float,
        *,
        owned: bool = False,
    ) -> None:
        """Record a Realtime event (a scrubbed copy: base64 audio becomes ``"<N bytes>"``).

        ``owned``: the caller hands the event over and will not change it (an event just
        read off the wire): one that carries neither audio nor items is kept as it is."""
        if direction not in ("sent", "received"):
            raise ValueError(f"invalid direction {direction!r}: choose 'sent' or 'received'")
        with self._lock:
            if self._closed:  # teardown noise; not worth a warning
                return
            self._events.append(
                {
                    "t_s": t_s,
                    "agent": agent,
                    "direction": direction,
                    "type": event.get("type"),
                    "event": recorded_event(event, owned=owned),
                }
            )

    def update_metadata(self, **fields: Any) -> None:
        """Merge ``fields`` into call_metadata.json and rewrite it (also after close, e.g. for
        outcome/metrics computed later). Recorder-managed keys (status, times, audio…) win."""
        with self._lock:
            self._metadata.update(fields)
            if self._opened:
                self._write_metadata()

    @property
    def metadata(self) -> dict[str, Any]:
        """The call_metadata.json content as it is (or would be) written now."""
        meta: dict[str, Any] = {"conversation_id": self.conversation_id}
        meta.update({k: v for k, v in self._metadata.items() if k not in _MANAGED_METADATA_KEYS})
        meta.update(
            status=self._status,
            started_at=self._metadata.get("started_at", self._started_at),
            ended_at=self._ended_at,
            end_reason=self._end_reason,
            error=self._error,
            audio=self._audio_info or self._audio_info_running(),
        )
        if not self._closed:  # who is recording it: lets a reader tell a crash from a call
            meta["process"] = self._process
        return meta

    @property
    def turns(self) -> list[dict[str, Any]]:
        return self._turns

    @property
    def function_calls(self) -> list[dict[str, Any]]:
        return self._calls

    @property
    def events(self) -> list[dict[str, Any]]:
        return self._events

    def checkpoint(self, *, force: bool = False) -> None:
        """Write what a crash must not lose: transcript, tool calls, new events (journal).

        Called by the recorder itself as the call goes (throttled); ``force`` writes now.
        """
        with self._lock:
            if not self._closed:
                self._checkpoint(force=force)

    def _checkpoint(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not self._opened or (not force and now - self._checkpoint_at < CHECKPOINT_INTERVAL_S):
            return
        self._checkpoint_at = now
        try:
            # Only what changed since the last checkpoint, compact (the C encoder: an indented
            # dump is pure Python and cost more than the rest of a text-route call); close()
            # writes the final files indented.
            for name, key, items in (
                ("transcript", "turns", self._turns),
                ("function_calls", "calls", self._calls),
            ):
                text = json_text({"conversation_id": self.conversation_id, key: items}, indent=None)
                if text != self._checkpointed.get(name):
                    write_text_atomic(self._paths[name], text + "\n")
                    self._checkpointed[name] = text
            fresh = self._events[self._journaled :]
            if fresh:
                lines = "".join(json_text(e, indent=None) + "\n" for e in fresh)
                with (self._dir / EVENTS_JOURNAL).open("a", encoding="utf-8") as journal:
                    journal.write(lines)
                self._journaled += len(fresh)
        except OSError:  # a checkpoint is insurance: the call goes on, close() tries again
            logger.warning("recording %s: checkpoint failed", self.conversation_id, exc_info=True)

    def _remove_journal(self) -> None:
        with suppress(FileNotFoundError):
            (self._dir / EVENTS_JOURNAL).unlink()

    def _write_metadata(self) -> None:
        if self._metadata_holds:
            self._metadata_due = True
            return
        self._metadata_due = False
        # Compact while the call runs (the C encoder; it is rewritten when the call ends),
        # indented once closed.
        indent = 2 if self._closed else None
        write_json_atomic(self._paths["call_metadata"], self.metadata, indent=indent)

    @contextmanager
    def metadata_held(self) -> Iterator[None]:
        """Write call_metadata.json once, when the block ends (on every exit path), rather
        than at each :meth:`update_metadata` and at :meth:`close` within it: the same content,
        fewer rewrites when a call is finalised."""
        with self._lock:
            self._metadata_holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._metadata_holds -= 1
                if not self._metadata_holds and self._metadata_due:
                    self._write_metadata()

    def _audio_info_running(self) -> dict[str, Any]:
        return {
            "format": self.audio_format,
            "sample_rate_hz": self.sample_rate_hz,
            "duration_s": None,
            "frames": None,
            "files": {
                name: {
                    "path": self._paths[name].name,
                    "channels": 2 if name == "stereo_recording" else 1,
                    "bytes": None,
                }
                for name in _AUDIO_FILES
            },
        }

    def _collect_audio_info(self) -> None:
        info = self._audio_info_running()
        frames = self._flushed
        info["frames"] = frames
        info["duration_s"] = round(frames / self.sample_rate_hz, 6)
        for name, entry in info["files"].items():
            path = self._paths[name]
            entry["bytes"] = path.stat().st_size if path.exists() else None
        self._audio_info = info

    @staticmethod
    def _find(items: list[dict[str, Any]], key: str, value: Any, what: str) -> dict[str, Any]:
        for item in reversed(items):  # updates are almost always for recent entries
            if item.get(key) == value:
                return item
        raise KeyError(f"no {what} with {key}={value!r}")
