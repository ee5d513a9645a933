"""Caches for the speech engines: synthesized audio and recognised text.

Scripted agents say the same sentences in every call, and on a clean line the other agent hears
exactly the audio that was sent, so a batch asks the engines the same questions again and
again. Each answer is kept under a SHA-256 of everything that decides it: for speech the text,
the voice's pitch and expressiveness, the speed, and the engine's versions and settings; for
recognition the exact PCM bytes and the decoder's versions and settings. A hit gives back the
very bytes (or text) the engine gave the first time, so a cached call is the same call.

- **In memory** (default on): one least-recently-used store per engine, bounded in bytes:
  ``DUALAGENT_ENGINE_CACHE_MB`` (default 32) for audio, a fixed 2 MB for text.
- **On disk** (off by default): ``DUALAGENT_ENGINE_CACHE_DIR=FOLDER`` also keeps every answer
  in that folder, for later processes (the next run of a batch, Dask workers on one machine).
  Files are written atomically, carry a checksum (a damaged file is a miss, never wrong
  audio) and never expire: delete the folder to empty it.
- ``DUALAGENT_ENGINE_CACHE=0`` turns both off.

Hits and misses are counted per engine (:func:`cache_stats`); ``dualagent bench`` reports them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_AUDIO_MB = 32.0
TEXT_CACHE_BYTES = 2 * 2**20
_CHECKSUM = hashlib.sha256().digest_size


def cache_key(*parts: Any) -> str:
    """A stable key for ``parts`` (JSON-able values: text, numbers, version strings)."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class EngineCache:
    """A thread-safe LRU of ``bytes`` bounded by ``max_bytes``, optionally backed by a folder.

    ``max_bytes=0`` keeps nothing in memory (a folder, if given, still serves and stores).
    """

    def __init__(self, name: str, max_bytes: int, folder: str | Path | None = None) -> None:
        self.name = name
        self.max_bytes = max(0, int(max_bytes))
        self.folder = Path(folder) / name if folder else None
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.disk_hits = self.stores = self.evictions = 0

    def get(self, key: str) -> bytes | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return value
        value = self._read(key) if self.folder is not None else None
        with self._lock:
            if value is None:
                self.misses += 1
                return None
            self.hits += 1
            self.disk_hits += 1
            self._remember(key, value)
        return value

    def put(self, key: str, value: bytes) -> None:
        value = bytes(value)
        with self._lock:
            self.stores += 1
            self._remember(key, value)
        if self.folder is not None:
            self._write(key, value)

    def clear(self) -> None:
        """Forget what is in memory (the folder stays) and reset the counters."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.hits = self.misses = self.disk_hits = self.stores = self.evictions = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            asked = self.hits + self.misses
            return {
                "hits": self.hits,
                "misses": self.misses,
                "disk_hits": self.disk_hits,
                "hit_rate": round(self.hits / asked, 4) if asked else None,
                "entries": len(self._items),
                "bytes": self._bytes,
                "max_bytes": self.max_bytes,
                "evictions": self.evictions,
                "folder": str(self.folder) if self.folder else None,
            }

    # ---------------------------------------------------------------------------- internals

    def _remember(self, key: str, value: bytes) -> None:
        """Keep ``value`` in memory, evicting the least recently used (the caller holds the lock)."""
        size = len(value) + len(key)
        if size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._bytes -= len(old) + len(key)
        self._items[key] = value
        self._bytes += size
        while self._bytes > self.max_bytes:
            evicted_key, evicted = self._items.popitem(last=False)
            self._bytes -= len(evicted) + len(evicted_key)
            self.evictions += 1

    def _path(self, key: str) -> Path:
        assert self.folder is not None
        return self.folder / key[:2] / key

    def _read(self, key: str) -> bytes | None:
        try:
            blob = self._path(key).read_bytes()
        except OSError:
            return None
        checksum, value = blob[:_CHECKSUM], blob[_CHECKSUM:]
        if len(checksum) < _CHECKSUM or hashlib.sha256(value).digest() != checksum:
            log.warning("engine cache: ignoring damaged file %s", self._path(key))
            return None
        return value

    def _write(self, key: str, value: bytes) -> None:
        path = self._path(key)
        temp = path.with_name(f".{key}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_bytes(hashlib.sha256(value).digest() + value)
            os.replace(temp, path)  # atomic: a reader sees the old file, or the whole new one
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            log.warning("engine cache: cannot write to %s (%s); not using it", self.folder, exc)
            self.folder = None


def _env_flag(name: str, default: bool = True) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _env_mb(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name) or default)
    except ValueError:
        log.warning("%s=%r is not a number of MB; using %s", name, os.environ[name], default)
        return default


class EngineCaches:
    """The audio (TTS) and text (ASR) caches of one process, set up from the environment."""

    def __init__(
        self,
        *,
        enabled: bool | None = None,
        audio_mb: float | None = None,
        folder: str | Path | None = None,
    ) -> None:
        self.enabled = _env_flag("DUALAGENT_ENGINE_CACHE") if enabled is None else enabled
        if audio_mb is None:
            audio_mb = _env_mb("DUALAGENT_ENGINE_CACHE_MB", DEFAULT_AUDIO_MB)
        if folder is None:
            folder = os.environ.get("DUALAGENT_ENGINE_CACHE_DIR") or None
        folder = folder if self.enabled else None
        self.tts = EngineCache("tts", int(audio_mb * 2**20) if self.enabled else 0, folder)
        self.asr = EngineCache("asr", TEXT_CACHE_BYTES if self.enabled else 0, folder)

    def stats(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "tts": self.tts.stats(), "asr": self.asr.stats()}


_caches: EngineCaches | None = None
_CACHES_LOCK = threading.Lock()


def engine_caches() -> EngineCaches:
    """This process's caches (made from the environment on first use)."""
    global _caches
    with _CACHES_LOCK:
        if _caches is None:
            _caches = EngineCaches()
        return _caches


def configure_caches(
    *,
    enabled: bool | None = None,
    audio_mb: float | None = None,
    folder: str | Path | None = None,
) -> EngineCaches:
    """Replace this process's caches (empty, counters at zero); ``None`` = from the environment."""
    global _caches
    with _CACHES_LOCK:
        _caches = EngineCaches(enabled=enabled, audio_mb=audio_mb, folder=folder)
        return _caches


def cache_stats() -> dict[str, Any]:
    """Hits, misses, disk hits, hit rate, entries and bytes of each engine's cache."""
    return engine_caches().stats()
