"""Audio files of a recording: libsndfile's empty files, and closing without a sync."""

from __future__ import annotations

import functools
import io
from typing import Any

import soundfile as sf

SoundFileArgs = tuple[int, int, str, str, float | None]
"""(sample rate in Hz, channels, container, subtype, compression level or None)."""


def open_sound_file(target: Any, args: SoundFileArgs) -> sf.SoundFile:
    """A new audio file for writing (``target``: a path, or a file object)."""
    rate, channels, container, subtype, compression = args
    return sf.SoundFile(
        target,
        mode="w",
        samplerate=rate,
        channels=channels,
        format=container,
        subtype=subtype,
        compression_level=compression,
    )


@functools.cache
def empty_audio(args: SoundFileArgs) -> bytes:
    """The bytes of an audio file without frames, as libsndfile writes it."""
    buffer = io.BytesIO()
    with open_sound_file(buffer, args):
        pass
    return buffer.getvalue()


def close_sound_file(f: sf.SoundFile) -> None:
    """Close an audio file without the fsync soundfile's ``close()`` asks libsndfile for
    first (``sf_write_sync``): it cost more than the rest of closing a text-route call, and,
    as for the JSON files (see :func:`dualagent.files.write_text_atomic`), a crashed process
    cannot lose what the kernel already has. ``sf_close`` still writes the final header."""
    handle = getattr(f, "_file", None)
    close = getattr(getattr(sf, "_snd", None), "sf_close", None)
    if handle is None or close is None or f.closed:  # another soundfile: its own close
        f.close()
        return
    error = close(handle)
    f._file = None
    sf._error_check(error)
