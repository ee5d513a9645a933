"""Built-in YAML data shipped inside the package (personas, scenarios, batch configs).

One loader for every kind, so names, paths and error messages behave the same everywhere: a
name picks a built-in file, a ``.yaml``/``.yml`` path picks the user's own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml


def builtin_dir(kind: str) -> Path:
    """The folder of built-in ``kind`` files (``personas``, ``scenarios``, ``configs``)."""
    return Path(str(resources.files("dualagent") / "data" / kind))


def list_builtin(kind: str) -> list[str]:
    """Names of the built-in ``kind`` files, sorted."""
    return sorted(p.stem for p in builtin_dir(kind).glob("*.yaml"))


def resolve(kind: str, name_or_path: str | Path, label: str, error: type[Exception]) -> Path:
    """The file for a built-in name or a YAML path; ``error`` names the valid choices."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        choices = list_builtin(kind)
        if str(name_or_path) not in choices:
            raise error(
                f"unknown {label} {str(name_or_path)!r}; valid choices: {', '.join(choices)}"
                f" (or a path to a {kind.rstrip('s')} .yaml file)"
            )
        return builtin_dir(kind) / f"{name_or_path}.yaml"
    if not path.is_file():
        raise error(f"{kind.rstrip('s')} file not found: {path}")
    return path


def read_yaml(path: Path, error: type[Exception], where: str = "") -> Any:
    """Parse a YAML file; a syntax error becomes ``error`` naming the file."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:  # one line: where in the file, and what is wrong there
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise error(f"{path}: {where}not valid YAML{at}: {problem}") from None
