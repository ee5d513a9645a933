"""Load recorded calls into tidy pandas DataFrames.

Plain functions from paths to DataFrames, one row per call, turn, tool call or event::

    from dualagent import analysis
    calls = analysis.load_calls("agent_conversations")     # one row per call
    turns = analysis.load_turns("agent_conversations")     # one row per turn (utterance)
    tools = analysis.load_tool_calls("agent_conversations")
    by_type = analysis.summarize_by_caller_type(calls)

Every loader accepts a root folder (searched recursively for call folders, i.e. folders holding
``call_metadata.json``), one call folder, a :class:`dualagent.CallResult`, or a list of these.

Columns are named like the JSON fields of the recording (see ``docs/recording-format.md``);
nested fields are flattened with dots (``scenario.name``, ``outcome.result``, ``metrics.<key>``),
like :func:`pandas.json_normalize`. Loaders never crash on a broken call folder (call still
running, crashed, truncated or missing JSON): the call shows up with its ``status`` (or
``"unreadable"``) and a ``load_error`` message, and contributes whatever rows could be read.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

METADATA_FILE = "call_metadata.json"
UNREADABLE = "unreadable"

PathLike = str | Path
Source = PathLike | Any  # also a CallResult (anything with a ``.path``)

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
    "mean_response_latency_s",
    "max_response_latency_s",
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


# ------------------------------------------------------------------------------ discovery


def find_conversations(root: PathLike) -> list[Path]:
    """Every call folder (a folder holding ``call_metadata.json``) at or under ``root``, sorted.

    Raises :class:`FileNotFoundError` if ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"no such folder: {root}")
    if (root / METADATA_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(METADATA_FILE) if p.is_file())


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


def _read_json(path: Path) -> tuple[Any, str | None]:
    """The parsed JSON at ``path`` and None, or None and a one-line reason it could not be read."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except FileNotFoundError:
        return None, f"missing {path.name}"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"unreadable {path.name}: {exc}"


def _metadata(folder: Path) -> tuple[dict[str, Any], str | None]:
    meta, error = _read_json(folder / METADATA_FILE)
    if not isinstance(meta, dict):
        return {}, error or f"unexpected content in {METADATA_FILE}"
    return meta, None


def _entries(folder: Path, filename: str, key: str) -> tuple[list[dict[str, Any]], str | None]:
    """The list under ``key`` in one of the call's JSON files (empty if missing or broken)."""
    data, error = _read_json(folder / filename)
    if error:
        return [], error
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [], f"no {key!r} list in {filename}"
    return [e for e in entries if isinstance(e, dict)], None


def _ids(folder: Path, meta: dict[str, Any]) -> dict[str, Any]:
    return {
        "conversation_id": meta.get("conversation_id") or folder.name,
        "caller_type": meta.get("caller_type"),
    }


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
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def _turn_stats(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Talk time per side, talk ratio, interruptions and overlap from one call's turns."""
    talk = {"caller": 0.0, "cs": 0.0}
    spans: dict[str, list[tuple[float, float]]] = {"caller": [], "cs": []}
    for turn in turns:
        start, end = _number(turn.get("start_s")), _number(turn.get("end_s"))
        speaker = turn.get("speaker")
        if speaker in talk and not (math.isnan(start) or math.isnan(end)) and end > start:
            talk[speaker] += end - start
            spans[speaker].append((start, end))
    overlap = sum(
        max(0.0, min(a_end, b_end) - max(a_start, b_start))
        for a_start, a_end in spans["caller"]
        for b_start, b_end in spans["cs"]
    )
    total = talk["caller"] + talk["cs"]
    return {
        "caller_talk_s": round(talk["caller"], 3) if turns else math.nan,
        "cs_talk_s": round(talk["cs"], 3) if turns else math.nan,
        "caller_talk_ratio": talk["caller"] / total if total > 0 else math.nan,
        "interruption_count": sum(1 for t in turns if t.get("interrupted")) if turns else math.nan,
        "overlap_s": round(overlap, 3) if turns else math.nan,
    }


def _latency_stats(meta: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, float]:
    values = meta.get("response_latencies_s")
    if not isinstance(values, list) or not values:
        values = [t.get("response_latency_s") for t in turns]
    numbers = [n for n in (_number(v) for v in values) if not math.isnan(n)]
    if not numbers:
        return {"mean_response_latency_s": math.nan, "max_response_latency_s": math.nan}
    return {
        "mean_response_latency_s": sum(numbers) / len(numbers),
        "max_response_latency_s": max(numbers),
    }


def call_row(folder: PathLike) -> dict[str, Any]:
    """One call folder as a flat dict (the row :func:`load_calls` builds for it)."""
    folder = Path(folder)
    meta, meta_error = _metadata(folder)
    turns, turns_error = _entries(folder, "transcript.json", "turns")
    scenario = meta.get("scenario") if isinstance(meta.get("scenario"), dict) else {}
    outcome = meta.get("outcome") if isinstance(meta.get("outcome"), dict) else {}
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    row: dict[str, Any] = {
        **_ids(folder, meta),
        "scenario.name": scenario.get("name"),
        "scenario.intent": scenario.get("intent"),
        "status": meta.get("status") or UNREADABLE,
        "outcome.result": outcome.get("result"),
    }
    for key in (
        "end_reason",
        "error",
        "route",
        "pace",
        "seed",
        "audio_format",
        "started_at",
        "ended_at",
    ):
        row[key] = meta.get(key)
    for key in (
        "turn_count",
        "utterance_count",
        "timeline_s",
        "wall_time_s",
        "tool_call_count",
        "sessions_ready_s",
    ):
        row[key] = _number(meta.get(key))
    row.update(_latency_stats(meta, turns))
    row.update(_turn_stats(turns))
    if math.isnan(row["utterance_count"]) and turns:
        row["utterance_count"] = float(len(turns))
    problems = [
        p for p in (meta_error, turns_error if meta.get("status") != "running" else None) if p
    ]
    row["load_error"] = "; ".join(problems) or None
    row["path"] = str(folder)
    row.update(flatten({k: v for k, v in outcome.items() if k != "result"}, "outcome."))
    # per-turn lists (latencies, overlap pairs) belong to load_turns; keep the call's scalars
    row.update({k: v for k, v in flatten(metrics, "metrics.").items() if not isinstance(v, list)})
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

    Integer-valued counts (``turn_count`` ...) are floats so that missing values are NaN.
    """
    frame = _frame([call_row(folder) for folder in _conversation_dirs(source)], CALL_COLUMNS)
    frame = frame.sort_values(["started_at", "path"], na_position="last", kind="stable")
    frame = frame.reset_index(drop=True)
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    return frame


def load_turns(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per turn (utterance): who spoke, what was said and heard, when, latency."""
    rows: list[dict[str, Any]] = []
    for folder in _conversation_dirs(source):
        meta, _ = _metadata(folder)
        turns, _ = _entries(folder, "transcript.json", "turns")
        for turn in turns:
            start, end = _number(turn.get("start_s")), _number(turn.get("end_s"))
            rows.append(
                {
                    **_ids(folder, meta),
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
    return _load_entries(source, "function_calls.json", "calls", TOOL_CALL_COLUMNS)


def load_events(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per Realtime event (both agents, both directions), ``event`` as a dict."""
    return _load_entries(source, "session_events.json", "events", EVENT_COLUMNS)


def _load_entries(
    source: Source | Iterable[Source], filename: str, key: str, columns: Any
) -> pd.DataFrame:
    """One row per entry of ``filename``'s ``key`` list, with the call's ids in front."""
    rows: list[dict[str, Any]] = []
    for folder in _conversation_dirs(source):
        meta, _ = _metadata(folder)
        entries, _ = _entries(folder, filename, key)
        rows.extend({**_ids(folder, meta), **entry} for entry in entries)
    return _frame(rows, columns)


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


def success_measure(calls: pd.DataFrame) -> tuple[str, pd.Series]:
    """What "success" means for these calls, and a boolean-or-NA series per call.

    When any call carries an outcome: ``outcome.result == "success"`` (``failure`` and
    ``incomplete`` count as not successful; a call that did not complete and has no outcome
    counts as a failure; a completed call without an outcome is left out, NA). Otherwise:
    ``status == "completed"`` (the completion rate).
    """
    outcome = calls.get("outcome.result")
    if outcome is not None and outcome.notna().any():

        def judge(result: Any, status: Any) -> Any:
            if isinstance(result, str):
                return result == "success"
            return pd.NA if status == "completed" else False

        values = [judge(r, s) for r, s in zip(outcome, calls["status"], strict=True)]
        return "success rate", pd.Series(values, index=calls.index, dtype="boolean")
    return "completion rate", calls["status"].eq("completed").astype("boolean")


SUMMARY_METRICS = {
    "turn_count": "turns",
    "timeline_s": "duration_s",
    "mean_response_latency_s": "latency_s",
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
