"""A batch on disk: ``batch.json`` (the manifest), the per-call figures and the summary.

The per-call figures come from the one reader of recordings
(:func:`dualagent.call.record.load_call`, ``CallRecord.summary()``) and success from its one
definition (:func:`dualagent.call.record.call_success`): an outcome says ``success``; a call
without an outcome that did not complete failed; a completed call that was never judged is
unknown and left out of rates and pass^k.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dualagent.batch.plan import item_slug
from dualagent.call.record import CallRecord, call_success, load_call
from dualagent.call.recording import validate_conversation_id
from dualagent.errors import InputError
from dualagent.files import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from dualagent.batch.ci import Gate

MANIFEST_FILE = "batch.json"
DEFAULT_OUTPUT_DIR = "batch_runs"
FINISHED_STATUSES = ("completed", "error")  # a trial result; "interrupted"/"pending" are not
_MANIFEST_MIN_INTERVAL_S = 0.5

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
    "mean_turn_gap_s",
    "mean_engine_latency_s",
    "interruptions",
    "tool_calls",
    "caller_type",
    "scenario",
    "error",
    "resumed",
    "attempts",
    "path",
]


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_batch_id(name: str | None) -> str:
    """``NAME-YYYYMMDDTHHMMSS-XXXX``."""
    return f"{item_slug(name or 'batch')}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:4]}"


def validate_batch_id(batch_id: str) -> str:
    try:
        return validate_conversation_id(batch_id)
    except ValueError as exc:
        raise InputError(str(exc).replace("conversation id", "batch id")) from None


# ------------------------------------------------------------------------------ per call


def recorded_figures(call_dir: Path) -> dict[str, Any]:
    """The figures a batch keeps for one call, from its folder (``CallRecord.summary()``).

    A call that left no folder at all gives the same keys with status ``unreadable``.
    """
    try:
        return load_call(call_dir).summary()
    except FileNotFoundError:
        return CallRecord(path=call_dir, load_error="no recording").summary()


def error_figures(call_dir: Path, exc: BaseException) -> dict[str, Any]:
    """A call that raised: what its recording says (if any), with status error and the exception."""
    record = recorded_figures(call_dir)
    if record["end_reason"] in (None, "interrupted"):
        record["end_reason"] = "exception"
    record["status"] = "error"
    record["error"] = f"{type(exc).__name__}: {exc}"
    record["success"] = call_success(record["status"], record["outcome"])
    return record


def interrupted_figures(call_dir: Path) -> dict[str, Any]:
    """A call cancelled in flight: what its recording says, with status interrupted."""
    record = recorded_figures(call_dir)
    if record["status"] != "error":
        record["status"] = "interrupted"
    record["success"] = call_success(record["status"], record["outcome"])
    return record


def finished_before(call_dir: Path, call_id: str, seed: int, route: str) -> dict[str, Any] | None:
    """The figures of a call that completed before (readable, same id, seed and route), else None."""
    if not call_dir.is_dir():
        return None
    record = load_call(call_dir)
    meta = record.metadata
    if record.status != "completed" or meta.get("conversation_id") != call_id:
        return None
    if meta.get("seed") != seed or meta.get("route") != route:
        return None
    return record.summary()


def is_success(entry: dict[str, Any]) -> bool | None:
    """Success of a manifest entry (:func:`dualagent.call.record.call_success`)."""
    return call_success(entry.get("status"), entry.get("outcome"))


# ------------------------------------------------------------------------------ manifest


class Manifest:
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
        verdicts = [is_success(c) for c in finished]
        return {
            "total": len(calls),
            "finished": len(finished),
            "successes": sum(v is True for v in verdicts),
            "failures": sum(v is False for v in verdicts),
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
        self.data["updated_at"] = utc_now()
        # While calls finish, compact (a big sweep's manifest is large); the forced saves
        # (start, end) are indented.
        write_json_atomic(self.path, self.data, indent=2 if force else None)
        self._last_write = now


def read_manifest(batch_dir: Path) -> dict[str, Any]:
    """``batch.json`` of a batch folder; InputError if missing or not valid JSON."""
    path = batch_dir / MANIFEST_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(
            f"not a batch folder (no readable {MANIFEST_FILE}): {batch_dir}: {exc}"
        ) from None


# ------------------------------------------------------------------------------ figures


def pass_hat_k(trials: Iterable[tuple[int, int]], k: int) -> float:
    """pass^k as in τ-bench: mean over tasks of C(c, k) / C(n, k) for n trials with c successes.

    The chance that k trials drawn without replacement from a task's n trials all succeed,
    averaged over tasks. Tasks with fewer than k trials are left out; NaN if none is left.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    values = [math.comb(c, k) / math.comb(n, k) for n, c in trials if n >= k]
    return float(np.mean(values)) if values else math.nan


def calls_frame(manifest: dict[str, Any], batch_dir: Path):  # -> pandas.DataFrame
    """One row per planned call (pending ones too), from a manifest.

    ``success`` is True, False, or None (not a finished call, or a completed call never judged).
    """
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

    Columns: kind, item, n (trials), judged (trials with a verdict), successes, success_rate
    (successes / judged), pass^1, pass^k (over the judged trials), mean_turns,
    mean_duration_s, mean_wall_time_s, mean_turn_gap_s, mean_engine_latency_s,
    [mean_interruptions], [as_expected_rate], errors, failures (trials judged unsuccessful),
    failures_by_end_reason ({end_reason: count} of those). Bracketed columns appear when the
    calls have them (interruption counts, scenario outcomes with an expected result).
    """
    import pandas as pd

    done = calls[calls["status"].isin(FINISHED_STATUSES)]
    ks = sorted({1, max(1, k)})
    has_interruptions = done["interruptions"].notna().any()
    has_expectations = done["as_expected"].notna().any()
    rows = []
    for kind, item in calls[["kind", "item"]].drop_duplicates().itertuples(index=False):
        g = done[(done["kind"] == kind) & (done["item"] == item)]
        verdicts = [_verdict(v) for v in g["success"]]
        judged = sum(v is not None for v in verdicts)
        successes = sum(v is True for v in verdicts)
        failed = g[np.array([v is False for v in verdicts], dtype=bool)]
        row: dict[str, Any] = {
            "kind": kind,
            "item": item,
            "n": len(g),
            "judged": judged,
            "successes": successes,
            "success_rate": successes / judged if judged else math.nan,
        }
        for kk in ks:
            row[f"pass^{kk}"] = pass_hat_k([(judged, successes)], kk)
        row["mean_turns"] = _mean(g["turns"])
        row["mean_duration_s"] = _mean(g["duration_s"])
        row["mean_wall_time_s"] = _mean(g["wall_time_s"])
        row["mean_turn_gap_s"] = _mean(g["mean_turn_gap_s"])
        row["mean_engine_latency_s"] = _mean(g["mean_engine_latency_s"])
        if has_interruptions:
            row["mean_interruptions"] = _mean(g["interruptions"])
        if has_expectations:
            expected = g["as_expected"].dropna()
            row["as_expected_rate"] = (
                float(np.mean(expected.astype(bool))) if len(expected) else math.nan
            )
        row["errors"] = int((g["status"] == "error").sum())
        row["failures"] = len(failed)
        row["failures_by_end_reason"] = {
            str(reason): int(count)
            for reason, count in failed["end_reason"].fillna("unknown").value_counts().items()
        }
        rows.append(row)
    return pd.DataFrame(rows)


def _verdict(value: Any) -> bool | None:
    """A success cell as True, False or None (NaN/NA/None: not judged)."""
    import pandas as pd

    return None if value is None or pd.isna(value) else bool(value)


def _mean(series) -> float:
    import pandas as pd

    values = pd.to_numeric(series, errors="coerce").dropna().to_numpy(dtype=float)
    return round(float(np.mean(values)), 4) if len(values) else math.nan


def overall(summary, k: int) -> dict[str, Any]:
    """Batch-level figures: totals, success rate, pass^k averaged over the items (tasks)."""

    def total(column: str) -> int:
        return int(summary[column].sum()) if len(summary) else 0

    judged, successes = total("judged"), total("successes")
    trials = list(zip(summary["judged"], summary["successes"], strict=True)) if len(summary) else []
    result: dict[str, Any] = {
        "n": total("n"),
        "judged": judged,
        "successes": successes,
        "success_rate": successes / judged if judged else None,
    }
    for kk in sorted({1, max(1, k)}):
        value = pass_hat_k(trials, kk)
        result[f"pass^{kk}"] = None if math.isnan(value) else value
    result["errors"] = total("errors")
    result["failures"] = total("failures")
    return result


# ------------------------------------------------------------------------------ result


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

    @property
    def gate(self) -> Gate | None:
        """The success rate against the config's ``min_success`` (None when it sets none):
        ``gate.passed``, ``gate.message()``."""
        from dualagent.batch.ci import Gate  # ci reads the manifest: imported on use

        threshold = self.manifest.get("config", {}).get("min_success")
        return None if threshold is None else Gate.of(self.overall, float(threshold))

    def _repr_html_(self) -> str:
        counts = self.manifest.get("counts", {})
        return (
            f"<p><b>{self.batch_id}</b>: {self.status}, {counts.get('finished', 0)}/{counts.get('total', 0)} "
            f"calls, {counts.get('errors', 0)} errors — <code>{self.path}</code></p>"
            + self.summary.to_html(index=False)
        )


def batch_result(batch_dir: Path, manifest: dict[str, Any]) -> BatchResult:
    """The calls frame and the summary of a manifest."""
    calls = calls_frame(manifest, batch_dir)
    return BatchResult(batch_dir, manifest, calls, summarize(calls, manifest["config"]["repeat"]))


def load_batch(path: str | Path) -> BatchResult:
    """A batch from its folder (``batch.json``): e.g. to analyse it in a notebook."""
    batch_dir = Path(path)
    return batch_result(batch_dir, read_manifest(batch_dir))


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
    unjudged = o.get("n", 0) - o.get("judged", o.get("n", 0))
    not_judged = f" ({unjudged} completed calls not judged, left out)" if unjudged else ""
    return (
        f"{text}\n\nbatch:    {result.batch_id} ({result.status})\nfolder:   {result.path}\n"
        f"calls:    {counts.get('finished', 0)}/{counts.get('total', 0)} finished "
        f"({counts.get('resumed', 0)} kept from before), {o['errors']} errors\n"
        f"success:  {rate}   {passes}{not_judged}"
    )
