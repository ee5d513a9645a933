"""Load recorded calls into tidy pandas DataFrames.

Plain functions from paths to DataFrames, one row per call, turn, tool call or event::

    from dualagent import analysis
    calls = analysis.load_calls("agent_conversations")     # one row per call
    turns = analysis.load_turns("agent_conversations")     # one row per turn (utterance)
    tools = analysis.load_tool_calls("agent_conversations")
    by_type = analysis.summarize_by_caller_type(calls)

Every loader accepts a root folder (searched recursively for call folders, i.e. folders holding
``call_metadata.json``), one call folder, a :class:`dualagent.CallResult`, or a list of these.
Each call is read by :func:`dualagent.call.record.load_call`, the one reader of a recording, and
judged by its :func:`~dualagent.call.record.call_success`, the one definition of success.

Columns are named like the JSON fields of the recording (see ``docs/recording-format.md``);
nested fields are flattened with dots (``scenario.name``, ``outcome.result``, ``metrics.<key>``),
like :func:`pandas.json_normalize`. Loaders never crash on a broken call folder (call still
running, crashed, truncated or missing JSON): the call shows up with its ``status`` (or
``"unreadable"``) and a ``load_error`` message, and contributes whatever rows could be read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from dualagent.call.record import METADATA_FILE, CallRecord, call_success, is_call_folder, load_call
from dualagent.evaluation.metrics import compute_metrics

PathLike = str | Path
Source = PathLike | Any  # also a CallResult or CallRecord (anything with a ``.path``)

CALL_COLUMNS = [
    "conversation_id",
    "caller_type",
    "scenario.name",
    "scenario.intent",
    "status",
    "end_reason",
    "error",
    "outcome.result",
    "route",
    "pace",
    "seed",
    "audio_format",
    "turn_count",
    "utterance_count",
    "timeline_s",
    "wall_time_s",
    "tool_call_count",
    "sessions_ready_s",
    "mean_turn_gap_s",
    "mean_engine_latency_s",
    "max_engine_latency_s",
    "caller_talk_s",
    "cs_talk_s",
    "caller_talk_ratio",
    "interruption_count",
    "overlap_s",
    "started_at",
    "ended_at",
    "load_error",
    "path",
]
TURN_COLUMNS = [
    "conversation_id",
    "caller_type",
    "index",
    "speaker",
    "text",
    "heard",
    "start_s",
    "end_s",
    "duration_s",
    "interrupted",
    "response_latency_s",
]
TOOL_CALL_COLUMNS = [
    "conversation_id",
    "caller_type",
    "call_id",
    "agent",
    "name",
    "arguments",
    "output",
    "ok",
    "t_s",
    "turn_index",
]
EVENT_COLUMNS = ["conversation_id", "caller_type", "t_s", "agent", "direction", "type", "event"]

# Order in which the built-in personas appear in tables and plots; others follow by name.
CALLER_TYPE_ORDER = ["typical", "frustrated", "elderly", "hurried"]

# The evaluation's metrics (``metadata["metrics"]``) that the timing columns of a call row are
# taken from; a recording without them gets them computed from its turns, by the same function.
TIMING_METRICS = ("talk_time_s", "talk_ratio", "overlaps", "interruptions", "response_latency_s")


# ------------------------------------------------------------------------------ discovery


def find_conversations(root: PathLike) -> list[Path]:
    """Every call folder (a folder holding ``call_metadata.json``) at or under ``root``, sorted.

    Raises :class:`FileNotFoundError` if ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    if is_call_folder(root):
        return [root]
    return sorted(p.parent for p in root.rglob(METADATA_FILE) if is_call_folder(p.parent))


def _conversation_dirs(source: Source | Iterable[Source]) -> list[Path]:
    """Call folders from a root, a call folder, a CallResult, or an iterable of these."""
    if isinstance(source, str | Path) or hasattr(source, "path"):
        sources: Iterable[Any] = [source]
    else:
        sources = source
    found: list[Path] = []
    for item in sources:
        path = Path(item.path) if hasattr(item, "path") else Path(item)
        for folder in find_conversations(path):
            if folder not in found:
                found.append(folder)
    return found


def _records(source: Source | Iterable[Source]) -> list[CallRecord]:
    """Every call of ``source`` as read by :func:`dualagent.call.record.load_call` (a
    :class:`~dualagent.call.record.CallRecord` given as the source is used as it is)."""
    if isinstance(source, CallRecord):
        return [source]
    return [load_call(folder) for folder in _conversation_dirs(source)]


def _ids(record: CallRecord) -> dict[str, Any]:
    return {"conversation_id": record.conversation_id, "caller_type": record.caller_type}


# ------------------------------------------------------------------------------ flattening


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to one level with dotted keys; lists and scalars are kept as values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _number(value: Any) -> float:
    """``value`` as a float; NaN when it is missing or not a number."""
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _timing_metrics(record: CallRecord) -> dict[str, Any]:
    """The evaluation's metrics of the call: as recorded, completed from the turns with
    :func:`dualagent.evaluation.metrics.compute_metrics` when the recording lacks some of them
    (a call never evaluated). Empty when there is neither."""
    recorded = record.metrics
    if all(key in recorded for key in TIMING_METRICS) or not record.turns:
        return recorded
    try:
        computed = compute_metrics(record.turns, record.function_calls, record.metadata)
    except (TypeError, ValueError, KeyError, AttributeError):  # malformed turns: no figures
        return recorded
    return {**computed, **recorded}


def _timing(record: CallRecord) -> dict[str, float]:
    """Talk time per side, talk ratio, interruptions, overlap and turn gap of one call."""
    metrics = _timing_metrics(record)
    talk = metrics.get("talk_time_s")
    talk = talk if isinstance(talk, dict) else {}
    overlaps = metrics.get("overlaps")
    overlaps = overlaps if isinstance(overlaps, dict) else {}
    gaps = metrics.get("response_latency_s")
    gaps = gaps if isinstance(gaps, dict) else {}
    turn_gap = record.mean_turn_gap_s
    return {
        "mean_turn_gap_s": _number(turn_gap if turn_gap is not None else gaps.get("mean")),
        "caller_talk_s": _number(talk.get("caller")),
        "cs_talk_s": _number(talk.get("cs")),
        "caller_talk_ratio": _number(metrics.get("talk_ratio")),
        "interruption_count": _number(metrics.get("interruptions")),
        "overlap_s": _number(overlaps.get("total_s")),
    }


def _count(record: CallRecord, key: str, value: int, entries: list[Any]) -> float:
    """A count from the record; NaN when neither the metadata nor the entries give it."""
    known = isinstance(record.metadata.get(key), int | float) or bool(entries)
    return float(value) if known else math.nan


def call_row(source: PathLike | CallRecord) -> dict[str, Any]:
    """One call (its folder, or its :class:`~dualagent.call.record.CallRecord`) as a flat dict:
    the row :func:`load_calls` builds for it."""
    record = source if isinstance(source, CallRecord) else load_call(source)
    meta = record.metadata
    row: dict[str, Any] = {
        **_ids(record),
        "scenario.name": record.scenario_name,
        "scenario.intent": record.intent,
        "status": record.status,
        "end_reason": record.end_reason,
        "error": record.error,
        "outcome.result": record.outcome,
    }
    for key in ("route", "pace", "seed", "audio_format", "started_at", "ended_at"):
        row[key] = meta.get(key)
    row["turn_count"] = _count(record, "turn_count", record.turn_count, record.turns)
    row["utterance_count"] = _count(record, "utterance_count", record.utterance_count, record.turns)
    row["tool_call_count"] = _count(
        record, "tool_call_count", record.tool_call_count, record.function_calls
    )
    row["timeline_s"] = _number(record.timeline_s)
    row["wall_time_s"] = _number(record.wall_time_s)
    row["sessions_ready_s"] = _number(meta.get("sessions_ready_s"))
    row["mean_engine_latency_s"] = _number(record.mean_engine_latency_s)
    row["max_engine_latency_s"] = _number(record.max_engine_latency_s)
    row.update(_timing(record))
    row["load_error"] = record.load_error
    row["path"] = str(record.path)
    outcome = record.outcome_details
    row.update(flatten({k: v for k, v in outcome.items() if k != "result"}, "outcome."))
    # per-turn lists (latencies, overlap pairs) belong to load_turns; keep the call's scalars
    metrics = flatten(record.metrics, "metrics.")
    row.update({k: v for k, v in metrics.items() if not isinstance(v, list)})
    return row


# ------------------------------------------------------------------------------ loaders


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """A DataFrame with ``columns`` first (always present, even with no rows), extras after."""
    frame = pd.DataFrame(rows)
    for column in columns:
        if column not in frame.columns:
            frame[column] = pd.Series(dtype=object)
    extras = [c for c in frame.columns if c not in columns]
    return frame[columns + extras].reset_index(drop=True)


def load_calls(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per call (in start order): metadata flattened, latency and talk-time stats, ``path``.

    Two latencies, never mixed: ``mean_turn_gap_s`` is the silence between turns on the call
    timeline (the evaluation's ``metrics.response_latency_s.mean``); ``mean_engine_latency_s``
    and ``max_engine_latency_s`` are the backend's measured time to answer. Integer-valued
    counts (``turn_count`` ...) are floats so that missing values are NaN.
    """
    frame = _frame([call_row(record) for record in _records(source)], CALL_COLUMNS)
    frame = frame.sort_values(["started_at", "path"], na_position="last", kind="stable")
    frame = frame.reset_index(drop=True)
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    return frame


def load_turns(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per turn (utterance): who spoke, what was said and heard, when, and the engine
    latency of the answer (``response_latency_s``, as in transcript.json)."""
    rows: list[dict[str, Any]] = []
    for record in _records(source):
        for turn in record.turns:
            start, end = _number(turn.get("start_s")), _number(turn.get("end_s"))
            rows.append(
                {
                    **_ids(record),
                    **turn,
                    "start_s": start,
                    "end_s": end,
                    "duration_s": end - start,
                    "interrupted": bool(turn.get("interrupted")),
                    "response_latency_s": _number(turn.get("response_latency_s")),
                }
            )
    return _frame(rows, TURN_COLUMNS)


def load_tool_calls(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per function call: agent, name, arguments and output (dicts), ok, time, turn."""
    rows = [
        {**_ids(record), **call} for record in _records(source) for call in record.function_calls
    ]
    return _frame(rows, TOOL_CALL_COLUMNS)


def load_events(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per Realtime event (both agents, both directions), ``event`` as a dict."""
    rows = [{**_ids(record), **event} for record in _records(source) for event in record.events()]
    return _frame(rows, EVENT_COLUMNS)


# ------------------------------------------------------------------------------ summaries


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95% by default) for ``successes`` out of ``n``; NaNs if n=0."""
    if n <= 0:
        return math.nan, math.nan
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def caller_type_order(values: Iterable[Any]) -> list[str]:
    """Caller types in display order: built-in personas first, then the rest by name."""
    present = {str(v) for v in values if isinstance(v, str) and v}
    known = [t for t in CALLER_TYPE_ORDER if t in present]
    return known + sorted(present - set(known))


def _text(value: Any) -> str | None:
    """A string cell as str; NaN, NA and None as None."""
    return value if isinstance(value, str) else None


def success_measure(calls: pd.DataFrame) -> tuple[str, pd.Series]:
    """What "success" means for these calls, and a boolean-or-NA series per call.

    When any call carries an outcome, the ``"success rate"``: each call judged by
    :func:`dualagent.call.record.call_success`, the one definition (outcome ``success``; a call
    that did not complete and has no outcome failed; a completed call without an outcome is
    left out, NA), so a batch summary of the same folder counts the same successes. When no
    call carries an outcome there is no success to measure, and this is the
    ``"completion rate"``: ``status == "completed"``.
    """
    outcome = calls.get("outcome.result")
    if outcome is not None and outcome.notna().any():
        values = [
            call_success(_text(status), _text(result))
            for result, status in zip(outcome, calls["status"], strict=True)
        ]
        series = pd.Series([pd.NA if v is None else v for v in values], dtype="boolean")
        return "success rate", series.set_axis(calls.index)
    return "completion rate", calls["status"].eq("completed").astype("boolean")


SUMMARY_METRICS = {
    "turn_count": "turns",
    "timeline_s": "duration_s",
    "mean_turn_gap_s": "turn_gap_s",
    "mean_engine_latency_s": "engine_latency_s",
    "caller_talk_ratio": "caller_talk_ratio",
    "interruption_count": "interruptions",
    "tool_call_count": "tool_calls",
}


def summarize_by_caller_type(calls: pd.DataFrame) -> pd.DataFrame:
    """One row per caller type: n, rate with Wilson 95% CI, means of the main call metrics.

    The rate is the success rate if calls carry an outcome, else the completion rate; the
    ``rate_kind`` column says which, ``rated`` how many calls it is computed over (see
    :func:`success_measure`), ``successes`` how many of those succeeded.
    """
    kind, success = success_measure(calls)
    rows = []
    for caller_type in caller_type_order(calls["caller_type"]):
        mask = calls["caller_type"] == caller_type
        valid = success[mask].dropna()
        k, n = int(valid.sum()), len(valid)
        low, high = wilson_interval(k, n)
        row: dict[str, Any] = {
            "caller_type": caller_type,
            "calls": int(mask.sum()),
            "rate_kind": kind,
            "rated": n,
            "successes": k,
            "rate": k / n if n else math.nan,
            "rate_ci_low": low,
            "rate_ci_high": high,
            "completed": int(calls.loc[mask, "status"].eq("completed").sum()),
        }
        for column, name in SUMMARY_METRICS.items():
            values = pd.to_numeric(calls.loc[mask, column], errors="coerce")
            row[f"mean_{name}"] = values.mean()
        rows.append(row)
    return pd.DataFrame(rows)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def transcript_text(turns: pd.DataFrame, heard: bool = True) -> str:
    """A readable transcript: ``[  12.3s] CALLER: said`` lines, plus ``heard:`` when it differs."""
    lines = []
    for turn in turns.itertuples(index=False):
        label = {"caller": "CALLER", "cs": "AGENT "}.get(str(turn.speaker), str(turn.speaker))
        mark = " (interrupted)" if turn.interrupted else ""
        lines.append(f"[{turn.start_s:7.1f}s] {label}: {turn.text}{mark}")
        if not heard:
            continue
        if not isinstance(turn.heard, str):
            lines.append(f"{'':10}  heard: (nothing)")
        elif _words(turn.heard) != _words(str(turn.text)):
            lines.append(f"{'':10}  heard: {turn.heard}")
    return "\n".join(lines)


def latency_stats(values: Iterable[Any]) -> dict[str, float]:
    """count, mean, median, p95 and max of response latencies (seconds), ignoring missing ones."""
    series = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").dropna()
    if series.empty:
        return {"count": 0, "mean": math.nan, "median": math.nan, "p95": math.nan, "max": math.nan}
    return {
        "count": len(series),
        "mean": float(series.mean()),
        "median": float(series.median()),
        "p95": float(series.quantile(0.95)),
        "max": float(series.max()),
    }


def outcome_checks(outcome: Any) -> list[dict[str, Any]]:
    """The checks behind a call's outcome (``metadata["outcome"]``), one dict each:

    ``kind`` ("criterion" or "failure condition"), ``name``, ``met`` (the criterion holds / the
    failure condition happened) and ``evidence``. Empty if the call has no outcome.
    """
    if not isinstance(outcome, dict):
        return []
    checks = []
    for kind, key in (("criterion", "criteria"), ("failure condition", "failures")):
        entries = outcome.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                checks.append(
                    {
                        "kind": kind,
                        "name": str(entry.get("name", "?")),
                        "met": bool(entry.get("passed")),
                        "evidence": entry.get("evidence"),
                    }
                )
            else:
                checks.append({"kind": kind, "name": str(entry), "met": None, "evidence": None})
    return checks
