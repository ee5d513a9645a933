"""Retention: recordings and batches older than N days are deleted (``dualagent clean``, and
the service at start and daily).

A call's age is from its ``started_at`` (``call_metadata.json``), a batch's from ``batch.json``;
a folder whose JSON cannot be read ages from its last modification. Only call folders and
batch folders directly inside the given roots are touched, never anything else.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from dualagent.call.record import METADATA_FILE, is_call_folder
from dualagent.errors import InputError

MANIFEST_FILE = "batch.json"
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 86400}


def parse_age(text: str) -> float:
    """``"7d"`` -> seconds. Units: s, m, h, d (default), w."""
    match = _AGE.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise InputError(
            f"invalid age {text!r}; valid: a positive number with a unit s, m, h, d or w (e.g. 7d, 12h)"
        )
    return float(match.group(1)) * _UNITS_S[match.group(2)]


@dataclass
class Expired:
    """A folder past the retention limit."""

    path: Path
    kind: str  # "call" or "batch"
    age_days: float
    bytes: int


def _started_s(folder: Path, file_name: str) -> float:
    """When the call or batch started (epoch seconds), else the folder's modification time."""
    try:
        data = json.loads((folder / file_name).read_text(encoding="utf-8"))
        return datetime.fromisoformat(str(data["started_at"])).timestamp()
    except (OSError, ValueError, KeyError, TypeError):
        return folder.stat().st_mtime


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _candidates(root: Path) -> Iterable[tuple[Path, str]]:
    if not root.is_dir():
        return
    for child in sorted(root.iterdir()):
        if not child.is_dir() or child.is_symlink():
            continue
        if is_call_folder(child):
            yield child, "call"
        elif (child / MANIFEST_FILE).is_file():
            yield child, "batch"


def find_expired(
    roots: Iterable[str | Path],
    older_than_s: float,
    *,
    keep: Collection[str] = (),
    now_s: float | None = None,
) -> list[Expired]:
    """Call and batch folders directly in ``roots`` older than ``older_than_s`` (but none
    named in ``keep``: calls and batches still running)."""
    now_s = time.time() if now_s is None else now_s
    found = []
    for root in roots:
        for folder, kind in _candidates(Path(root)):
            if folder.name in keep:
                continue
            started = _started_s(folder, METADATA_FILE if kind == "call" else MANIFEST_FILE)
            age_s = now_s - started
            if age_s > older_than_s:
                found.append(Expired(folder, kind, round(age_s / 86400, 2), _size(folder)))
    return found


def clean(
    roots: Iterable[str | Path],
    older_than_s: float,
    *,
    dry_run: bool = False,
    keep: Collection[str] = (),
) -> list[Expired]:
    """Delete (or with ``dry_run`` only list) what :func:`find_expired` finds; returns it."""
    expired = find_expired(roots, older_than_s, keep=keep)
    if not dry_run:
        for entry in expired:
            shutil.rmtree(entry.path, ignore_errors=True)
    return expired
