"""Batch runs at scale: many calls per caller type or scenario, N at a time, one manifest.

``await run(config="difficult_customers")`` runs every (caller type or scenario) × ``repeat``
calls, ``parallel`` at a time, each recorded in its own conversation folder under one batch
folder ``{output_dir}/{batch_id}/``::

    batch_runs/difficult_customers-20261125T143046-1a2b/
      batch.json        manifest: config, seeds, version, times, one entry per call (kept up to date)
      calls.csv         one row per call
      summary.csv       one row per caller type / scenario: success rate, pass^k, turns, latency…
      summary.json      the same, plus batch-level figures
      frustrated-000/   a normal call recording (see docs/recording-format.md)
      …

Local calls share ONE embedded :class:`LocalRealtimeServer`; ``executor="dask://HOST:PORT"`` (or a
``distributed.Client``) runs them as Dask tasks instead. A failed call never stops the batch;
``resume=True`` re-runs only the calls that did not finish; Ctrl-C stops cleanly and the manifest
says ``"interrupted"``. See ``docs/batch.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import math
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dualagent import __version__
from dualagent.call.recording import AUDIO_FORMATS, validate_conversation_id
from dualagent.call.simulate import MAX_DURATION_S, InputError, resolve_persona, simulate
from dualagent.files import write_text_atomic
from dualagent.personas import list_personas
from dualagent.realtime.local.server import LocalRealtimeServer

MANIFEST_FILE = "batch.json"
DEFAULT_OUTPUT_DIR = "batch_runs"
TEXT_ROUTE_PARALLEL = 16
FINISHED_STATUSES = ("completed", "error")  # a trial result; "interrupted"/"pending" are not
_MANIFEST_MIN_INTERVAL_S = 0.5


class ConfigError(InputError):
    """A batch config that cannot be used: the message names the file, the field and the reason."""


# ------------------------------------------------------------------------------ config


class BatchConfig(BaseModel):
    """What a batch runs. Loaded from YAML (``load_config``) or built in code."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, description="short name; used in the default batch id")
    description: str = ""
    caller_types: list[str] = Field(
        default_factory=list, description="persona names or .yaml paths"
    )
    scenarios: list[str] = Field(
        default_factory=list, description="scenario names (dualagent.scenarios)"
    )
    repeat: int = Field(default=1, ge=1, le=10_000, description="calls per caller type / scenario")
    parallel: int | None = Field(
        default=None, ge=1, le=1024, description="calls at a time (default: per route)"
    )
    route: Literal["audio", "text"] = "audio"
    duration: float | None = Field(
        default=None,
        ge=1,
        le=MAX_DURATION_S,
        description="call length limit, seconds (default: the scenario's, else 300)",
    )
    max_turns: int | None = Field(default=None, ge=1, le=200)
    seed: int = Field(default=0, ge=0, description="base seed; each call's seed derives from it")
    audio_format: Literal["wav", "flac", "ogg"] = "wav"

    @field_validator("caller_types", "scenarios", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("caller_types")
    @classmethod
    def _known_caller_types(cls, value: list[str]) -> list[str]:
        for name in value:
            resolve_persona(name)  # InputError (a ValueError) -> pydantic names the field
        _no_duplicates(value, "caller type")
        return value

    @field_validator("scenarios")
    @classmethod
    def _unique_scenarios(cls, value: list[str]) -> list[str]:
        _no_duplicates(value, "scenario")
        return value

    @model_validator(mode="after")
    def _something_to_run(self) -> BatchConfig:
        if not self.caller_types and not self.scenarios:
            raise ValueError("nothing to run: give caller_types and/or scenarios")
        return self


def _no_duplicates(values: list[str], what: str) -> None:
    seen = {_slug(v) for v in values}
    if len(seen) != len(values):
        raise ValueError(f"each {what} may appear only once: {', '.join(values)}")


def _builtin_config_dir() -> Path:
    return Path(str(resources.files("dualagent") / "data" / "configs"))


def list_configs() -> list[str]:
    """Names of the built-in batch configs (``dualagent/data/configs/*.yaml``)."""
    return sorted(p.stem for p in _builtin_config_dir().glob("*.yaml"))


def load_config(name_or_path: str | Path) -> BatchConfig:
    """A built-in config by name (``"difficult_customers"``) or a YAML file by path.

    Raises :class:`ConfigError` naming the file, the field and the reason.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        if str(name_or_path) not in list_configs():
            raise ConfigError(
                f"unknown config {str(name_or_path)!r}; valid choices: {', '.join(list_configs())}"
                " (or a path to a .yaml file)"
            )
        path = _builtin_config_dir() / f"{name_or_path}.yaml"
    elif not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config {path}: not valid YAML{where}: {reason}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a mapping of fields, got {type(data).__name__}")
    data = _persona_paths_relative_to(data, path.parent)
    data.setdefault("name", path.stem)
    return config_from_dict(data, source=f"config {path}")


def _persona_paths_relative_to(data: dict[str, Any], base: Path) -> dict[str, Any]:
    """Persona and scenario .yaml paths in a config file are relative to that file."""
    data = dict(data)
    for key in ("caller_types", "scenarios"):
        names = data.get(key)
        if isinstance(names, list):
            data[key] = [
                str(base / n)
                if isinstance(n, str)
                and n.endswith((".yaml", ".yml"))
                and not Path(n).is_absolute()
                and (base / n).is_file()
                else n
                for n in names
            ]
    return data


def config_from_dict(data: dict[str, Any], source: str = "config") -> BatchConfig:
    """Validate a config mapping; errors name the source, each bad field and the reason."""
    try:
        return BatchConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_describe_validation(exc)}") from None


def _describe_validation(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = f"unknown field; valid fields: {', '.join(BatchConfig.model_fields)}"
        shown = (
            f" (got {err['input']!r})"
            if err["type"] not in ("extra_forbidden", "missing") and loc
            else ""
        )
        parts.append(f"field {loc!r}: {msg}{shown}" if loc else msg)
    return "; ".join(parts)


def _as_config(config: BatchConfig | str | Path | dict[str, Any] | None) -> BatchConfig | None:
    if config is None or isinstance(config, BatchConfig):
        return config
    if isinstance(config, dict):
        return config_from_dict(config)
    return load_config(config)


# ------------------------------------------------------------------------------ plan


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


def _slug(name: str) -> str:
    stem = Path(name).stem if name.endswith((".yaml", ".yml")) else name
    return re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "item"


def plan_calls(config: BatchConfig) -> list[CallSpec]:
    """Every (caller type or scenario) × repeat, with its conversation id and seed."""
    items = [("caller_type", c) for c in config.caller_types] + [
        ("scenario", s) for s in config.scenarios
    ]
    slugs = [_slug(name) for _, name in items]
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


def _simulate_supports_scenarios() -> bool:
    return "scenario" in inspect.signature(simulate).parameters


def _check_scenarios(names: list[str]) -> None:
    if not names:
        return
    if not _simulate_supports_scenarios():
        raise InputError(
            f"scenarios ({', '.join(names)}) need dualagent.simulate() with a scenario= parameter, "
            "which this installation does not have yet; use caller_types"
        )
    try:
        from dualagent.scenarios import load_scenario
    except ImportError:
        return  # simulate() checks them when each call starts
    for name in names:
        try:
            load_scenario(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None


# ------------------------------------------------------------------------------ results


def pass_hat_k(trials: Iterable[tuple[int, int]], k: int) -> float:
    """pass^k as in τ-bench: mean over tasks of C(c, k) / C(n, k) for n trials with c successes.

    The chance that k trials drawn without replacement from a task's n trials all succeed,
    averaged over tasks. Tasks with fewer than k trials are left out; NaN if none is left.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = [math.comb(c, k) / math.comb(n, k) for n, c in trials if n >= k]
    return sum(values) / len(values) if values else math.nan


def call_record(meta: dict[str, Any]) -> dict[str, Any]:
    """The per-call figures a batch keeps, from a call's ``call_metadata.json``."""
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    outcome = meta.get("outcome")
    result = outcome.get("result") if isinstance(outcome, dict) else outcome
    as_expected = outcome.get("as_expected") if isinstance(outcome, dict) else None
    scenario = meta.get("scenario")
    latency = metrics.get("response_latency_s")
    mean_latency = latency.get("mean") if isinstance(latency, dict) else latency
    latencies = [x for x in meta.get("response_latencies_s") or [] if isinstance(x, int | float)]
    if mean_latency is None and latencies:
        mean_latency = round(sum(latencies) / len(latencies), 4)
    interruptions = metrics.get("interruptions")
    if isinstance(interruptions, dict):
        interruptions = sum(v for v in interruptions.values() if isinstance(v, int | float))
    return {
        "conversation_id": meta.get("conversation_id"),
        "caller_type": meta.get("caller_type"),
        "status": meta.get("status", "unknown"),
        "end_reason": meta.get("end_reason"),
        "outcome": result,
        "as_expected": as_expected,
        "scenario": scenario.get("name") if isinstance(scenario, dict) else scenario,
        "turns": meta.get("turn_count"),
        "duration_s": meta.get("timeline_s"),
        "wall_time_s": meta.get("wall_time_s"),
        "mean_latency_s": mean_latency,
        "interruptions": interruptions,
        "tool_calls": meta.get("tool_call_count"),
        "started_at": meta.get("started_at"),
        "ended_at": meta.get("ended_at"),
        "error": meta.get("error"),
    }


def is_success(entry: dict[str, Any]) -> bool:
    """Outcome ``"success"`` when the call has an outcome, else status ``"completed"``."""
    if entry.get("outcome") is not None:
        return entry["outcome"] == "success"
    return entry.get("status") == "completed"


def _read_metadata(call_dir: Path) -> dict[str, Any] | None:
    try:
        meta = json.loads((call_dir / "call_metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _error_record(call_dir: Path, exc: BaseException) -> dict[str, Any]:
    """A call that raised: what its recording says (if any), with status error and the exception."""
    meta = _read_metadata(call_dir)
    record = call_record(meta) if meta else call_record({})
    record["status"] = "error"
    record["end_reason"] = (
        record["end_reason"]
        if meta and record["end_reason"] not in (None, "interrupted")
        else "exception"
    )
    record["error"] = f"{type(exc).__name__}: {exc}"
    return record


CALL_COLUMNS = [
    "call_id",
    "kind",
    "item",
    "repeat",
    "seed",
    "status",
    "end_reason",
    "outcome",
    "success",
    "as_expected",
    "turns",
    "duration_s",
    "wall_time_s",
    "mean_latency_s",
    "interruptions",
    "tool_calls",
    "caller_type",
    "scenario",
    "error",
    "resumed",
    "attempts",
    "path",
]


def calls_frame(manifest: dict[str, Any], batch_dir: Path):  # -> pandas.DataFrame
    """One row per planned call (pending ones too), from a manifest."""
    import pandas as pd

    rows = []
    for entry in manifest.get("calls", []):
        row = {col: entry.get(col) for col in CALL_COLUMNS}
        row["success"] = is_success(entry) if entry.get("status") in FINISHED_STATUSES else None
        row["path"] = str(batch_dir / entry["path"]) if entry.get("path") else None
        rows.append(row)
    return pd.DataFrame(rows, columns=CALL_COLUMNS)


def summarize(calls, k: int):  # (pandas.DataFrame, int) -> pandas.DataFrame
    """One row per caller type / scenario over the finished calls (completed or error).

    Columns: kind, item, n, successes, success_rate, pass^1, pass^k, mean_turns,
    mean_duration_s, mean_wall_time_s, mean_latency_s, [mean_interruptions],
    [as_expected_rate], errors, failures, failures_by_end_reason ({end_reason: count} of the
    unsuccessful calls). Bracketed columns appear when the calls' metadata has them (metrics,
    scenario outcomes with an expected result).
    """
    import pandas as pd

    done = calls[calls["status"].isin(FINISHED_STATUSES)]
    ks = sorted({1, max(1, k)})
    has_interruptions = done["interruptions"].notna().any()
    has_expectations = done["as_expected"].notna().any()
    rows = []
    for kind, item in calls[["kind", "item"]].drop_duplicates().itertuples(index=False):
        g = done[(done["kind"] == kind) & (done["item"] == item)]
        n = len(g)
        successes = int(g["success"].astype(bool).sum()) if n else 0
        failed = g[~g["success"].astype(bool)] if n else g
        row: dict[str, Any] = {
            "kind": kind,
            "item": item,
            "n": n,
            "successes": successes,
            "success_rate": successes / n if n else math.nan,
        }
        for kk in ks:
            row[f"pass^{kk}"] = pass_hat_k([(n, successes)], kk)
        row["mean_turns"] = _mean(g["turns"])
        row["mean_duration_s"] = _mean(g["duration_s"])
        row["mean_wall_time_s"] = _mean(g["wall_time_s"])
        row["mean_latency_s"] = _mean(g["mean_latency_s"])
        if has_interruptions:
            row["mean_interruptions"] = _mean(g["interruptions"])
        if has_expectations:
            judged = g["as_expected"].dropna()
            row["as_expected_rate"] = float(judged.astype(bool).mean()) if len(judged) else math.nan
        row["errors"] = int((g["status"] == "error").sum())
        row["failures"] = len(failed)
        row["failures_by_end_reason"] = {
            str(reason): int(count)
            for reason, count in failed["end_reason"].fillna("unknown").value_counts().items()
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _mean(series) -> float:
    values = series.dropna().astype(float)
    return round(float(values.mean()), 4) if len(values) else math.nan


def overall(summary, k: int) -> dict[str, Any]:
    """Batch-level figures: totals, success rate, pass^k averaged over the items (tasks)."""
    n = int(summary["n"].sum()) if len(summary) else 0
    successes = int(summary["successes"].sum()) if len(summary) else 0
    trials = list(zip(summary["n"], summary["successes"], strict=True)) if len(summary) else []
    result: dict[str, Any] = {
        "n": n,
        "successes": successes,
        "success_rate": successes / n if n else None,
    }
    for kk in sorted({1, max(1, k)}):
        value = pass_hat_k(trials, kk)
        result[f"pass^{kk}"] = None if math.isnan(value) else value
    result["errors"] = int(summary["errors"].sum()) if len(summary) else 0
    result["failures"] = int(summary["failures"].sum()) if len(summary) else 0
    return result


@dataclass
class BatchResult:
    """A batch: its folder, manifest, one row per call, one summary row per item."""

    path: Path
    manifest: dict[str, Any]
    calls: Any  # pandas.DataFrame
    summary: Any  # pandas.DataFrame

    @property
    def batch_id(self) -> str:
        return self.manifest["batch_id"]

    @property
    def status(self) -> str:
        return self.manifest.get("status", "unknown")

    @property
    def errors(self) -> int:
        """Calls that ended in error (the call failed or raised)."""
        return int((self.calls["status"] == "error").sum())

    @property
    def overall(self) -> dict[str, Any]:
        return self.manifest.get("overall") or overall(
            self.summary, self.manifest["config"]["repeat"]
        )

    def _repr_html_(self) -> str:
        counts = self.manifest.get("counts", {})
        return (
            f"<p><b>{self.batch_id}</b>: {self.status}, {counts.get('finished', 0)}/{counts.get('total', 0)} "
            f"calls, {counts.get('errors', 0)} errors — <code>{self.path}</code></p>"
            + self.summary.to_html(index=False)
        )


def load_batch(path: str | Path) -> BatchResult:
    """A batch from its folder (``batch.json``): e.g. to analyse it in a notebook."""
    batch_dir = Path(path)
    try:
        manifest = json.loads((batch_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"not a batch folder (no readable {MANIFEST_FILE}): {batch_dir}: {exc}"
        ) from None
    return _result(batch_dir, manifest)


def _result(batch_dir: Path, manifest: dict[str, Any]) -> BatchResult:
    calls = calls_frame(manifest, batch_dir)
    return BatchResult(batch_dir, manifest, calls, summarize(calls, manifest["config"]["repeat"]))


def write_results(result: BatchResult) -> None:
    """``calls.csv``, ``summary.csv`` and ``summary.json`` in the batch folder (atomically)."""
    summary_csv = result.summary.copy()
    if "failures_by_end_reason" in summary_csv:
        summary_csv["failures_by_end_reason"] = summary_csv["failures_by_end_reason"].map(
            json.dumps
        )
    write_text_atomic(result.path / "calls.csv", result.calls.to_csv(index=False))
    write_text_atomic(result.path / "summary.csv", summary_csv.to_csv(index=False))
    doc = {
        "batch_id": result.batch_id,
        "status": result.status,
        "k": result.manifest["config"]["repeat"],
        "overall": result.manifest.get("overall"),
        "items": json.loads(result.summary.to_json(orient="records")),
    }
    write_text_atomic(result.path / "summary.json", json.dumps(doc, indent=2))


def format_summary(result: BatchResult) -> str:
    """The summary as a terminal table plus the batch-level line."""
    table = result.summary.copy()
    if len(table):
        table["failures_by_end_reason"] = table["failures_by_end_reason"].map(
            lambda d: ", ".join(f"{k}={v}" for k, v in d.items()) or "-"
        )
        text = table.drop(columns=["kind"]).to_string(
            index=False, float_format=lambda x: f"{x:.3g}"
        )
    else:
        text = "(no calls finished)"
    o = result.overall
    counts = result.manifest.get("counts", {})
    rate = "n/a" if o.get("success_rate") is None else f"{o['success_rate']:.1%}"
    passes = "  ".join(
        f"{k} {v:.3f}" for k, v in o.items() if k.startswith("pass^") and v is not None
    )
    return (
        f"{text}\n\nbatch:    {result.batch_id} ({result.status})\nfolder:   {result.path}\n"
        f"calls:    {counts.get('finished', 0)}/{counts.get('total', 0)} finished "
        f"({counts.get('resumed', 0)} kept from before), {o['errors']} errors\n"
        f"success:  {rate}   {passes}"
    )


# ------------------------------------------------------------------------------ manifest


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class _Manifest:
    """``batch.json``: rewritten atomically as calls finish (at most every 0.5 s, and at the end)."""

    def __init__(self, batch_dir: Path, data: dict[str, Any]) -> None:
        self.batch_dir = batch_dir
        self.path = batch_dir / MANIFEST_FILE
        self.data = data
        self.by_id = {entry["call_id"]: entry for entry in data["calls"]}
        self._last_write = 0.0

    def update(self, call_id: str, **fields: Any) -> None:
        self.by_id[call_id].update(fields)

    def counts(self) -> dict[str, int]:
        calls = self.data["calls"]
        finished = [c for c in calls if c["status"] in FINISHED_STATUSES]
        return {
            "total": len(calls),
            "finished": len(finished),
            "successes": sum(is_success(c) for c in finished),
            "errors": sum(c["status"] == "error" for c in finished),
            "interrupted": sum(c["status"] == "interrupted" for c in calls),
            "pending": sum(c["status"] in ("pending", "running") for c in calls),
            "resumed": sum(bool(c.get("resumed")) for c in calls),
        }

    def save(self, force: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._last_write < _MANIFEST_MIN_INTERVAL_S:
            return
        self.data["counts"] = self.counts()
        self.data["updated_at"] = _utc_now()
        write_text_atomic(self.path, json.dumps(self.data, indent=2, default=str))
        self._last_write = now


# ------------------------------------------------------------------------------ progress


def _in_notebook() -> bool:
    """True inside a Jupyter (IPython kernel) session."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class _Progress:
    """tqdm in a terminal, an ipywidgets bar in a notebook, nothing otherwise (or if disabled)."""

    def __init__(
        self, total: int, initial: int, successes: int, failures: int, enabled: bool, desc: str
    ) -> None:
        self.successes, self.failures = successes, failures
        self.bar: Any = None
        if not enabled:
            return
        if _in_notebook():
            from tqdm.notebook import tqdm as notebook_tqdm

            self.bar = notebook_tqdm(total=total, initial=initial, desc=desc, unit="call")
        else:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, initial=initial, desc=desc, unit="call", file=sys.stderr, disable=None
            )
        self._postfix()

    def _postfix(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"ok={self.successes}, failed={self.failures}", refresh=False)

    def done(self, success: bool) -> None:
        if success:
            self.successes += 1
        else:
            self.failures += 1
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------ running


@dataclass
class _Batch:
    """Everything a run needs once the input is checked."""

    config: BatchConfig
    batch_id: str
    batch_dir: Path
    specs: list[CallSpec]
    parallel: int
    executor: Any
    notebook: Path | None
    resume: bool
    progress: bool
    local_server: LocalRealtimeServer | None


def _call_kwargs(spec: CallSpec, config: BatchConfig, output_dir: str) -> dict[str, Any]:
    """The ``simulate()`` arguments for one planned call."""
    kwargs: dict[str, Any] = {
        "route": config.route,
        "seed": spec.seed,
        "audio_format": config.audio_format,
        "output_dir": output_dir,
        "conversation_id": spec.call_id,
    }
    if config.duration is not None:  # else the scenario's limit, or simulate's default
        kwargs["duration"] = config.duration
    if config.max_turns is not None:
        kwargs["max_turns"] = config.max_turns
    if spec.kind == "scenario":
        kwargs["scenario"] = spec.item
    else:
        kwargs["caller_type"] = spec.item
    return kwargs


def _prepare(
    config: BatchConfig | str | Path | dict[str, Any] | None,
    overrides: dict[str, Any],
    *,
    executor: Any,
    output_dir: str | Path,
    resume: bool,
    progress: bool,
    batch_id: str | None,
    notebook: str | Path | None,
    local_server: LocalRealtimeServer | None,
) -> _Batch:
    """Check every input and plan the calls. Writes nothing; raises InputError."""
    out = Path(output_dir)
    previous: dict[str, Any] | None = None
    if resume:
        if not batch_id:
            raise InputError(
                "resume needs the batch id of the batch to resume (batch_id= / --batch-id)"
            )
        validate_batch_id(batch_id)
        manifest_path = out / batch_id / MANIFEST_FILE
        if not manifest_path.is_file():
            raise InputError(f"no batch {batch_id!r} to resume in {out} (missing {manifest_path})")
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise InputError(f"cannot resume: {manifest_path} is not valid JSON: {exc}") from None

    base = _as_config(config)
    given = {k: v for k, v in overrides.items() if v is not None}
    if base is None:
        if previous is not None:
            base = config_from_dict(
                previous["config"], source=f"manifest {out / batch_id / MANIFEST_FILE}"
            )  # type: ignore[operator]
        elif "caller_types" not in given and "scenarios" not in given:
            base = load_config("default")
    data = {**(base.model_dump() if base is not None else {}), **given}
    cfg = config_from_dict(data, source="batch settings")
    _check_scenarios(cfg.scenarios)
    specs = plan_calls(cfg)

    if batch_id is None:
        batch_id = (
            f"{_slug(cfg.name or 'batch')}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"
        )
    validate_batch_id(batch_id)
    batch_dir = (out / batch_id).resolve()
    if not resume and batch_dir.exists() and (not batch_dir.is_dir() or any(batch_dir.iterdir())):
        raise InputError(
            f"batch {batch_id!r} already exists in {out}; use resume (--resume) or another batch id"
        )

    executor = _check_executor(executor)
    parallel = cfg.parallel
    if parallel is None and _is_local(executor):
        parallel = default_parallel(cfg.route)
    nb = None
    if notebook is not None:
        nb = Path(notebook)
        if nb.suffix != ".ipynb" or not nb.is_file():
            raise InputError(f"notebook {str(notebook)!r} not found or not a .ipynb file")
    return _Batch(
        cfg, batch_id, batch_dir, specs, parallel or 0, executor, nb, resume, progress, local_server
    )


def validate_batch_id(batch_id: str) -> str:
    try:
        return validate_conversation_id(batch_id)
    except ValueError as exc:
        raise InputError(str(exc).replace("conversation id", "batch id")) from None


def _check_executor(executor: Any) -> Any:
    if executor is None or executor == "local":
        return "local"
    if isinstance(executor, str):
        if re.fullmatch(r"(dask|tcp|tls)://[^\s/:]+(:\d+)?/?", executor):
            return executor
        raise InputError(f"invalid executor {executor!r}; valid choices: local, dask://HOST:PORT")
    if type(executor).__name__ == "Client" and type(executor).__module__.startswith("distributed"):
        return executor
    raise InputError(
        f"invalid executor {executor!r}; valid choices: local, dask://HOST:PORT, or a distributed.Client"
    )


def _is_local(executor: Any) -> bool:
    return isinstance(executor, str) and executor == "local"


def _executor_label(executor: Any) -> str:
    if isinstance(executor, str):
        return executor
    return f"dask {getattr(executor.scheduler, 'address', '?')}"


def _dask_address(executor: str) -> str:
    return "tcp://" + executor.split("://", 1)[1] if executor.startswith("dask://") else executor


async def run(
    config: BatchConfig | str | Path | dict[str, Any] | None = None,
    *,
    caller_types: Sequence[str] | str | None = None,
    scenarios: Sequence[str] | str | None = None,
    repeat: int | None = None,
    parallel: int | None = None,
    executor: Any = "local",
    route: str | None = None,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    seed: int | None = None,
    duration: float | None = None,
    resume: bool = False,
    progress: bool = True,
    batch_id: str | None = None,
    notebook: str | Path | None = None,
    max_turns: int | None = None,
    audio_format: str | None = None,
    local_server: LocalRealtimeServer | None = None,
) -> BatchResult:
    """Run a batch of calls; return its :class:`BatchResult` (also written to the batch folder).

    ``config`` is a :class:`BatchConfig`, a dict, a built-in config name or a YAML path; the
    keyword arguments override its fields (``None`` = keep the config's value; without a config
    the defaults are all four caller types, repeat 1, route audio, seed 0, and the scenario's
    duration limit or 300 s). ``local_server``: a running server to share (else one is started).
    ``parallel=None``: 16 on the text route, one per CPU core on audio (Dask: the cluster's
    threads). ``executor``: ``"local"`` (one shared embedded server in this process),
    ``"dask://HOST:PORT"`` or a ``distributed.Client``. ``resume=True`` with ``batch_id`` re-runs
    only the calls of that batch that did not complete. ``notebook``: a papermill notebook run
    afterwards with ``input_dir`` and ``output_dir`` set to the batch folder.

    Bad input raises :class:`InputError` before anything is written. A failing call is recorded
    and counted, never raised. Cancelling the task (Ctrl-C) cancels the calls in flight and
    marks the manifest ``"interrupted"``.
    """
    overrides = {
        "caller_types": list(caller_types)
        if isinstance(caller_types, list | tuple)
        else caller_types,
        "scenarios": list(scenarios) if isinstance(scenarios, list | tuple) else scenarios,
        "repeat": repeat,
        "parallel": parallel,
        "route": route,
        "seed": seed,
        "duration": duration,
        "max_turns": max_turns,
        "audio_format": audio_format,
    }
    if audio_format is not None and audio_format not in AUDIO_FORMATS:
        raise InputError(
            f"invalid audio_format {audio_format!r}; valid choices: {', '.join(AUDIO_FORMATS)}"
        )
    batch = _prepare(
        config,
        overrides,
        executor=executor,
        output_dir=output_dir,
        resume=resume,
        progress=progress,
        batch_id=batch_id,
        notebook=notebook,
        local_server=local_server,
    )
    return await _execute(batch)


def _new_manifest(batch: _Batch, previous: dict[str, Any] | None) -> dict[str, Any]:
    old = {c["call_id"]: c for c in (previous or {}).get("calls", [])}
    calls = []
    for spec in batch.specs:
        entry = {
            "call_id": spec.call_id,
            "kind": spec.kind,
            "item": spec.item,
            "repeat": spec.repeat,
            "seed": spec.seed,
            "status": "pending",
            "path": spec.call_id,
            "resumed": False,
            "attempts": old.get(spec.call_id, {}).get("attempts", 0),
        }
        calls.append(entry)
    return {
        "batch_id": batch.batch_id,
        "status": "running",
        "package_version": __version__,
        "created_at": (previous or {}).get("created_at") or _utc_now(),
        "started_at": _utc_now(),
        "ended_at": None,
        "resumed_from_previous_run": previous is not None,
        "executor": _executor_label(batch.executor),
        "parallel": batch.parallel or None,
        "config": batch.config.model_dump(mode="json"),
        "seeds": {spec.call_id: spec.seed for spec in batch.specs},
        "calls": calls,
    }


def _already_done(call_dir: Path, spec: CallSpec, config: BatchConfig) -> dict[str, Any] | None:
    """The record of a call that finished before (completed, valid metadata, same seed/route)."""
    meta = _read_metadata(call_dir)
    if not meta or meta.get("status") != "completed" or meta.get("conversation_id") != spec.call_id:
        return None
    if meta.get("seed") != spec.seed or meta.get("route") != config.route:
        return None
    return call_record(meta)


async def _execute(batch: _Batch) -> BatchResult:
    previous = None
    manifest_path = batch.batch_dir / MANIFEST_FILE
    if batch.resume and manifest_path.is_file():
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
    batch.batch_dir.mkdir(parents=True, exist_ok=True)
    manifest = _Manifest(batch.batch_dir, _new_manifest(batch, previous))

    todo: list[CallSpec] = []
    for spec in batch.specs:
        call_dir = batch.batch_dir / spec.call_id
        record = _already_done(call_dir, spec, batch.config) if batch.resume else None
        if record is not None:
            manifest.update(spec.call_id, **record, resumed=True)
            continue
        if call_dir.exists():  # a failed or unfinished attempt: run it again from scratch
            shutil.rmtree(call_dir)
        todo.append(spec)
    manifest.save()

    counts = manifest.counts()
    bar = _Progress(
        total=len(batch.specs),
        initial=counts["finished"],
        successes=counts["successes"],
        failures=counts["finished"] - counts["successes"],
        enabled=batch.progress,
        desc=batch.batch_id,
    )

    def finished(spec: CallSpec, record: dict[str, Any]) -> None:
        entry = manifest.by_id[spec.call_id]
        manifest.update(spec.call_id, **record, attempts=entry.get("attempts", 0) + 1)
        if record["status"] in FINISHED_STATUSES:
            bar.done(is_success(record))
        manifest.save(force=False)

    try:
        if _is_local(batch.executor):
            await _execute_local(batch, todo, manifest, finished)
        else:
            await _execute_dask(batch, todo, manifest, finished)
        manifest.data["status"] = "completed"
    except (asyncio.CancelledError, KeyboardInterrupt):
        manifest.data["status"] = "interrupted"
        raise
    except BaseException as exc:
        manifest.data["status"] = "failed"
        manifest.data["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        bar.close()
        for entry in manifest.data["calls"]:
            if entry["status"] == "running":
                entry["status"] = "interrupted"
        manifest.data["ended_at"] = _utc_now()
        result = _result(batch.batch_dir, manifest.data)
        manifest.data["overall"] = overall(result.summary, batch.config.repeat)
        manifest.save()
        write_results(result)

    if batch.notebook is not None:
        manifest.data["notebook"] = await asyncio.to_thread(
            run_notebook, batch.notebook, batch.batch_dir
        )
        manifest.save()
    return result


async def _execute_local(
    batch: _Batch, todo: list[CallSpec], manifest: _Manifest, finished: Any
) -> None:
    """Run the calls in this process, ``parallel`` at a time, on one shared embedded server."""
    if not todo:
        return
    output_dir = str(batch.batch_dir)
    semaphore = asyncio.Semaphore(batch.parallel)
    async with contextlib.AsyncExitStack() as stack:
        server = batch.local_server or await stack.enter_async_context(LocalRealtimeServer())

        async def one(spec: CallSpec) -> None:
            async with semaphore:
                manifest.update(spec.call_id, status="running", started_at=_utc_now())
                call_dir = batch.batch_dir / spec.call_id
                try:
                    result = await simulate(
                        **_call_kwargs(spec, batch.config, output_dir), local_server=server
                    )
                    record = call_record(result.metadata)
                except asyncio.CancelledError:
                    meta = _read_metadata(call_dir)
                    record = call_record(meta) if meta else {"status": "interrupted"}
                    if record["status"] in ("running", "completed", "unknown"):
                        record["status"] = "interrupted"
                    finished(spec, record)
                    raise
                except Exception as exc:  # one failed call never stops the batch
                    record = _error_record(call_dir, exc)
                finished(spec, record)

        tasks = [asyncio.create_task(one(spec), name=f"call-{spec.call_id}") for spec in todo]
        try:
            # Not gather(): on cancellation it returns at the first cancelled child, and
            # cancelling the others again would cut their recordings' finalisation short.
            await asyncio.wait(tasks)
        except BaseException:
            for task in tasks:
                if not task.done():
                    task.cancel()  # once: simulate() finalises the recording as "interrupted"
            await asyncio.wait(tasks)
            raise
        for task in tasks:
            task.result()  # an unexpected bug in the batch machinery surfaces here


# ------------------------------------------------------------------------------ dask


def run_call_in_worker(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A Dask task: one call on the worker's own embedded backend; returns its record.

    Runs ``dualagent.simulate`` with ``asyncio.run`` and writes the recording to
    ``kwargs["output_dir"]`` (the batch folder, which must be shared with the client).
    """
    call_dir = Path(kwargs["output_dir"]) / kwargs["conversation_id"]
    try:
        result = asyncio.run(simulate(**kwargs))
        record = call_record(result.metadata)
    except Exception as exc:
        record = _error_record(call_dir, exc)
        record["traceback"] = traceback.format_exc(limit=5)
    record["worker_host"] = os.uname().nodename
    record["worker_pid"] = os.getpid()
    return record


async def _execute_dask(
    batch: _Batch, todo: list[CallSpec], manifest: _Manifest, finished: Any
) -> None:
    """Submit the calls as Dask tasks (at most ``parallel`` in flight) and gather their records."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise InputError(
            "the dask executor needs dask.distributed: pip install 'dualagent[dask]'"
        ) from None
    own_client = isinstance(batch.executor, str)
    client = (
        await asyncio.to_thread(Client, _dask_address(batch.executor))
        if own_client
        else batch.executor
    )
    try:
        if not batch.parallel:
            batch.parallel = max(1, sum(client.nthreads().values()))
            manifest.data["parallel"] = batch.parallel
        if not todo:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[CallSpec, dict[str, Any] | None] | None] = asyncio.Queue()
        output_dir = str(batch.batch_dir)
        waiting = list(reversed(todo))
        futures: dict[Any, CallSpec] = {}
        stop = threading.Event()

        def submit(spec: CallSpec) -> Any:
            future = client.submit(
                run_call_in_worker,
                _call_kwargs(spec, batch.config, output_dir),
                key=f"dualagent-{spec.call_id}-{uuid.uuid4().hex[:8]}",
                pure=False,
            )
            futures[future] = spec
            loop.call_soon_threadsafe(queue.put_nowait, (spec, None))  # started
            return future

        def pump() -> None:
            """In a thread: keep ``parallel`` tasks in flight, hand each result to the loop."""
            try:
                pool = as_completed(
                    [submit(waiting.pop()) for _ in range(min(batch.parallel, len(waiting)))]
                )
                for future in pool:
                    if stop.is_set():
                        break
                    spec = futures[future]
                    try:
                        record = future.result()
                    except BaseException as exc:  # the task or its worker died
                        record = _error_record(batch.batch_dir / spec.call_id, exc)
                    loop.call_soon_threadsafe(queue.put_nowait, (spec, record))
                    if waiting and not stop.is_set():
                        pool.add(submit(waiting.pop()))
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        # The manifest is only touched here, on the event loop; the pump thread just reports.
        thread = threading.Thread(target=pump, name="dualagent-dask-pump", daemon=True)
        thread.start()
        try:
            while (item := await queue.get()) is not None:
                spec, record = item
                if record is None:
                    manifest.update(spec.call_id, status="running", started_at=_utc_now())
                else:
                    finished(spec, record)
        finally:
            stop.set()
            pending = [f for f in futures if not f.done()]
            if pending:
                with contextlib.suppress(Exception):
                    await asyncio.to_thread(client.cancel, pending)
            await asyncio.to_thread(thread.join, 10)
    finally:
        if own_client:
            await asyncio.to_thread(client.close)


# ------------------------------------------------------------------------------ notebook


def run_notebook(notebook: Path, batch_dir: Path) -> dict[str, Any]:
    """Execute ``notebook`` with papermill (``input_dir``/``output_dir`` = the batch folder).

    The executed copy is saved in the batch folder under the notebook's name. Returns what
    happened (paths, status, error) for the manifest; a failing notebook does not raise.
    """
    import papermill

    output = batch_dir / notebook.name
    info: dict[str, Any] = {
        "input": str(notebook),
        "output": str(output),
        "status": "completed",
        "error": None,
    }
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters={"input_dir": str(batch_dir), "output_dir": str(batch_dir)},
            progress_bar=False,
            cwd=str(batch_dir),
        )
    except Exception as exc:
        if getattr(exc, "ename", None):  # papermill: a cell raised
            reason = f"{exc.ename}: {exc.evalue}"  # type: ignore[attr-defined]
        else:
            reason = f"{type(exc).__name__}: {exc}"
        info.update(status="error", error=reason.strip())
    return info


# ------------------------------------------------------------------------------ benchmarks


def bench_throughput(
    routes: Sequence[str] = ("text", "audio"),
    parallel: Sequence[int] = (1, 2, 4),
    calls: int | dict[str, int] | None = None,
    *,
    print_table: bool = True,
):  # -> pandas.DataFrame
    """Calls per minute per route and parallelism, on one warm shared embedded server.

    ``calls``: calls per measurement (an int, or per route; default text 48, audio 2 × the
    largest parallelism). The four caller types take turns. Prints the table and returns it.
    """
    import pandas as pd

    defaults = {"text": 48, "audio": 2 * max(parallel)}
    per_route = (
        calls if isinstance(calls, dict) else dict.fromkeys(routes, calls) if calls else defaults
    )

    async def measure() -> list[dict[str, Any]]:
        rows = []
        types = list_personas()
        async with LocalRealtimeServer() as server:
            with tempfile.TemporaryDirectory(prefix="dualagent-bench-") as tmp:
                for route in routes:
                    n = int(per_route.get(route) or defaults.get(route, 8))
                    for p in parallel:
                        repeat = math.ceil(n / len(types))
                        started = time.perf_counter()
                        result = await run(
                            caller_types=types,
                            repeat=repeat,
                            parallel=p,
                            route=route,
                            output_dir=tmp,
                            progress=False,
                            local_server=server,
                            batch_id=f"bench-{route}-p{p}",
                        )
                        wall = time.perf_counter() - started
                        done = len(result.calls)
                        rows.append(
                            {
                                "route": route,
                                "parallel": p,
                                "calls": done,
                                "wall_s": round(wall, 2),
                                "calls_per_min": round(done / wall * 60, 1),
                                "errors": result.errors,
                                "mean_call_wall_s": round(
                                    float(result.calls["wall_time_s"].mean()), 3
                                ),
                            }
                        )
                        shutil.rmtree(Path(tmp) / f"bench-{route}-p{p}", ignore_errors=True)
        return rows

    frame = pd.DataFrame(asyncio.run(measure()))
    if print_table:
        print(f"dualagent batch throughput ({os.cpu_count()} CPU cores)")
        print(frame.to_string(index=False))
    return frame


def _rss_mb() -> float:
    """Resident memory now of this process and its speech-recognition workers (Linux
    ``/proc``; elsewhere this process's peak so far)."""
    from dualagent.realtime.local import engines

    pids = ["self", *(str(pid) for pid in engines.get_asr_worker_pids())]
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError, IndexError):
            if pid != "self":
                continue  # a worker that just ended
            import resource

            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return total


def _memory_probe(n: int, route: str = "audio") -> dict[str, float]:
    """In a fresh process: RSS (MB) with a warm server, and its peak during ``n`` concurrent calls.

    The peak is sampled every 20 ms while the calls run (``ru_maxrss`` would be dominated by
    the engines' warm-up, which happens before any call).
    """

    async def go() -> dict[str, float]:
        async with LocalRealtimeServer() as server:
            baseline = _rss_mb()
            peak = [baseline]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.02):
                    peak[0] = max(peak[0], _rss_mb())

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                with tempfile.TemporaryDirectory(prefix="dualagent-mem-") as tmp:
                    result = await run(
                        caller_types=["typical"],
                        repeat=n,
                        parallel=n,
                        route=route,
                        output_dir=tmp,
                        progress=False,
                        local_server=server,
                        batch_id="mem",
                    )
            finally:
                stop.set()
                sampler.join()
            return {
                "calls": len(result.calls),
                "errors": result.errors,
                "baseline_mb": baseline,
                "peak_mb": peak[0],
            }

    return asyncio.run(go())


def bench_memory(
    n: int = 10, route: str = "audio", *, print_table: bool = True
) -> dict[str, float]:
    """Peak RSS of ``n`` concurrent full-audio calls vs 1, each in a fresh subprocess.

    Each probe starts a warm shared server, notes its RSS, runs the calls and samples the
    peak RSS. Returns (and prints) the figures and the MB each extra concurrent call costs.
    """
    import subprocess

    def probe(k: int) -> dict[str, float]:
        code = (
            "import json; from dualagent.batch import _memory_probe; "
            f"print(json.dumps(_memory_probe({k}, {route!r})))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])

    one, many = probe(1), probe(n)
    extra_1 = one["peak_mb"] - one["baseline_mb"]
    extra_n = many["peak_mb"] - many["baseline_mb"]
    figures = {
        "n": n,
        "route": route,
        "warm_server_mb": round(one["baseline_mb"], 1),
        "peak_1_call_mb": round(one["peak_mb"], 1),
        f"peak_{n}_calls_mb": round(many["peak_mb"], 1),
        "mb_per_extra_call": round((extra_n - extra_1) / max(1, n - 1), 1),
        "errors": one["errors"] + many["errors"],
    }
    if print_table:
        print(f"dualagent batch memory ({route} route, peak RSS, fresh process each)")
        for key, value in figures.items():
            print(f"  {key:<20} {value}")
    return figures
