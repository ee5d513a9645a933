"""Writing result files so that a reader (or a crash) never sees half of one."""

from __future__ import annotations

import json
import os
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` via a temp file in the same folder + ``os.replace``."""
    # Not mkstemp: its 0600 mode would survive the rename; open("x") honours the umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(text)
        # No fsync: the rename already guarantees readers and a crashed process never see a
        # half file, and syncing each metadata rewrite cost more than a text-route call.
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as JSON, atomically (see :func:`write_text_atomic`)."""
    # default=str: a stray Path/datetime/enum must not lose the whole record.
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    write_text_atomic(path, text + "\n")
