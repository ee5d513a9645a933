"""The figures of ``dualagent bench``: each with its target, the machine they were measured on,
a JSON report (``--output``) and the change from an older one (``--compare``)."""

from __future__ import annotations

import contextlib
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: str
    ok: bool | None
    key: str = ""  # stable id for --output / --compare

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        mark = {True: "ok", False: "MISSED", None: ""}[self.ok]
        return f"{self.name:<48} {value:>10} {self.unit:<12} target {self.target:<10} {mark}"


def figure(key: str, name: str, value: float | None, unit: str, target: str = "info") -> Figure:
    """A figure; ``target`` like ``"<= 8"``, ``">= 20"``, ``"< 1"`` is checked, ``"info"`` not."""
    ok = None
    if value is not None and target != "info":
        op, limit = target.split()
        bound = float(limit)
        ok = {
            "<": value < bound,
            "<=": value <= bound,
            ">": value > bound,
            ">=": value >= bound,
        }[op]
    return Figure(name, None if value is None else float(value), unit, target, ok, key)


@dataclass
class BenchReport:
    figures: list[Figure] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    quick: bool = False
    date: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date,
            "quick": self.quick,
            "machine": self.machine,
            "figures": [asdict(f) for f in self.figures],
        }


def machine_info() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from dualagent.version import __version__

    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "dualagent": __version__,
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    with contextlib.suppress(OSError, AttributeError):
        return [round(x, 2) for x in os.getloadavg()]
    return None


def compare_lines(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The change of each figure from ``old`` to ``new`` (two ``--output`` files' contents)."""
    before = {f.get("key") or f["name"]: f for f in old.get("figures", [])}
    lines = [f"change since {old.get('date', '?')} ({len(before)} figures then):"]
    for fig in new.get("figures", []):
        key = fig.get("key") or fig["name"]
        was = before.pop(key, None)
        now, then = fig.get("value"), (was or {}).get("value")
        if was is None or now is None or then is None:
            change = "new" if was is None else "n/a"
        else:
            delta = now - then
            rel = f" ({100 * delta / then:+.0f} %)" if then else ""
            change = f"{then:.4g} -> {now:.4g}  {delta:+.4g}{rel}"
        lines.append(f"  {fig['name']:<48} {change} {fig.get('unit', '')}")
    lines += [f"  {f['name']:<48} gone (was {f.get('value')})" for f in before.values()]
    return lines
