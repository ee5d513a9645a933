"""The calls of a batch: every (caller type or scenario) × repetition, with its id and seed."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dualagent.errors import InputError

if TYPE_CHECKING:
    from dualagent.batch.config import BatchConfig

TEXT_ROUTE_PARALLEL = 16


@dataclass(frozen=True)
class CallSpec:
    """One planned call: which item (caller type or scenario), which repetition, which seed."""

    call_id: str
    kind: Literal["caller_type", "scenario"]
    item: str
    repeat: int
    seed: int


def derive_seed(base_seed: int, kind: str, item: str, repeat: int) -> int:
    """A call's seed: stable per (base seed, item, repetition), independent of the other items."""
    digest = hashlib.sha256(f"{base_seed}:{kind}:{item}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def item_slug(name: str) -> str:
    """The name a caller type or scenario gives its calls (a .yaml path: the file's stem)."""
    stem = Path(name).stem if name.endswith((".yaml", ".yml")) else name
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "item"


def plan_calls(config: BatchConfig) -> list[CallSpec]:
    """Every (caller type or scenario) × repeat, with its conversation id and seed."""
    items = [("caller_type", c) for c in config.caller_types] + [
        ("scenario", s) for s in config.scenarios
    ]
    slugs = [item_slug(name) for _, name in items]
    if len(set(slugs)) != len(slugs):
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        raise InputError(
            f"caller types and scenarios need distinct names; used twice: {', '.join(dupes)}"
        )
    return [
        CallSpec(f"{slug}-{r:03d}", kind, name, r, derive_seed(config.seed, kind, name, r))  # type: ignore[arg-type]
        for (kind, name), slug in zip(items, slugs, strict=True)
        for r in range(config.repeat)
    ]


def default_parallel(route: str) -> int:
    """Calls at a time when not given: text calls are cheap (16); audio ones want a core each."""
    return TEXT_ROUTE_PARALLEL if route == "text" else max(1, os.cpu_count() or 1)


def check_scenarios(names: list[str]) -> None:
    """Every scenario name loads (else InputError naming it and the valid choices)."""
    from dualagent.scenarios import load_scenario

    for name in names:
        try:
            load_scenario(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None


def call_kwargs(spec: CallSpec, config: BatchConfig, output_dir: str) -> dict[str, Any]:
    """The ``simulate()`` arguments for one planned call (on the embedded backend a batch's
    calls go through memory unless its config names a transport)."""
    kwargs: dict[str, Any] = {
        "default_transport": "memory",
        **config.call_defaults(),  # unset ones: the scenario's value, else the default
        "seed": spec.seed,
        "output_dir": output_dir,
        "conversation_id": spec.call_id,
    }
    if spec.kind == "scenario":
        kwargs["scenario"] = spec.item
    else:
        kwargs["caller_type"] = spec.item
    return kwargs
