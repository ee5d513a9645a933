"""Writing result files so that a reader (or a crash) never sees half of one."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson

_ORJSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) via a temp file in the same folder + ``os.replace``."""
    # Not mkstemp: its 0600 mode would survive the rename; O_EXCL with 0666 honours the umask.
    # Plain os calls: a recording writes ~10 small files per call, and a text object's
    # setup cost a third of each write.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        try:
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        # No fsync: the rename already guarantees readers and a crashed process never see a
        # half file, and syncing each metadata rewrite cost more than a text-route call.
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON text, indented by 2 spaces or compact (``indent=None``), UTF-8 as is.

    orjson writes it (in C: the standard library's indented encoder is pure Python and cost
    more than the rest of a text-route call); what orjson refuses (an int beyond 64 bits)
    goes through the standard library. Not-a-number floats are written ``null`` (JSON has no
    NaN). ``default=str``: a stray Path or set must not lose the whole record.
    """
    if indent in (None, 2):
        option = _ORJSON | orjson.OPT_INDENT_2 if indent else _ORJSON
        with suppress(orjson.JSONEncodeError):
            return orjson.dumps(data, default=str, option=option).decode()
    return json.dumps(data, indent=indent, ensure_ascii=False, default=str)


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as JSON (:func:`json_text`), atomically (see :func:`write_text_atomic`)."""
    write_text_atomic(path, json_text(data, indent=indent) + "\n")
