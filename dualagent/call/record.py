"""The one reader of a recorded call: ``load_call(folder) -> CallRecord``.

Every module that looks at a recording (evaluation, analysis, batch summaries, ``CallResult``,
the analysis commands) reads it here, so what a call *is* is defined once:

- **success** (:func:`call_success`): the outcome says ``success``. A call without an outcome
  that did not complete (error, interrupted, still running, unreadable) failed; a completed
  call that was never judged is unknown (``None``), and rates leave it out.
- **turns**: a conversation turn is a run of utterances by one speaker (``turn_count`` as the
  recorder counted it; from the transcript when the metadata lacks it).
- **latency**, two quantities that are never mixed:
  ``mean_turn_gap_s``, the silence between one speaker's end and the other's start on the call
  timeline (what a listener hears; ``metrics.response_latency_s`` of the evaluation), and
  ``mean_engine_latency_s``, the measured time from ``response.create`` to the first audio or
  text of the answer (what the backend costs; ``response_latencies_s`` of the recorder).

A broken folder (call still running, crashed, truncated or missing JSON) still loads: the
record says what could not be read in ``load_error`` and holds whatever could be. A call whose
metadata still says ``running`` but whose recording process is gone (killed, crashed, machine
restarted) reads as status ``crashed``, with what its last checkpoint kept.
"""

from __future__ import annotations

import json
import math
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

METADATA_FILE = "call_metadata.json"
TRANSCRIPT_FILE = "transcript.json"
FUNCTION_CALLS_FILE = "function_calls.json"
EVENTS_FILE = "session_events.json"
EVENTS_JOURNAL = "session_events.jsonl"  # a running (or crashed) call's events, one a line
UNREADABLE = "unreadable"
CRASHED = "crashed"


def call_success(status: str | None, outcome: str | None) -> bool | None:
    """Did the call succeed? The one definition (see the module docstring)."""
    if isinstance(outcome, str) and outcome:
        return outcome == "success"
    if status == "completed":
        return None
    return False


class CallRecord(BaseModel):
    """A recorded call as read from its folder: raw JSON plus the figures defined once."""

    path: Path
    metadata: dict[str, Any] = Field(default_factory=dict)
    turns: list[dict[str, Any]] = Field(default_factory=list)
    function_calls: list[dict[str, Any]] = Field(default_factory=list)
    load_error: str | None = None

    # -- identity ---------------------------------------------------------------------------

    @property
    def conversation_id(self) -> str:
        return str(self.metadata.get("conversation_id") or self.path.name)

    @property
    def caller_type(self) -> str | None:
        return self.metadata.get("caller_type")

    @property
    def scenario(self) -> dict[str, Any]:
        scenario = self.metadata.get("scenario")
        return scenario if isinstance(scenario, dict) else {}

    @property
    def scenario_name(self) -> str | None:
        return self.scenario.get("name")

    @property
    def intent(self) -> str | None:
        return self.scenario.get("intent")

    # -- how it ended -------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``completed``, ``error``, ``interrupted``, ``running``, ``crashed`` or ``unreadable``."""
        status = str(self.metadata.get("status") or UNREADABLE)
        if status == "running" and _process_gone(self.metadata.get("process")):
            return CRASHED
        return status

    @property
    def end_reason(self) -> str | None:
        return self.metadata.get("end_reason")

    @property
    def error(self) -> str | None:
        return self.metadata.get("error")

    @property
    def outcome_details(self) -> dict[str, Any]:
        outcome = self.metadata.get("outcome")
        return outcome if isinstance(outcome, dict) else {}

    @property
    def outcome(self) -> str | None:
        """``success``, ``failure`` or ``incomplete``; None if the call was not judged."""
        return self.outcome_details.get("result")

    @property
    def as_expected(self) -> bool | None:
        return self.outcome_details.get("as_expected")

    @property
    def success(self) -> bool | None:
        return call_success(self.status, self.outcome)

    @property
    def bank_state(self) -> dict[str, Any]:
        state = self.metadata.get("bank_state")
        return state if isinstance(state, dict) else {}

    @property
    def metrics(self) -> dict[str, Any]:
        metrics = self.metadata.get("metrics")
        return metrics if isinstance(metrics, dict) else {}

    # -- figures ------------------------------------------------------------------------------

    @property
    def utterance_count(self) -> int:
        count = self.metadata.get("utterance_count")
        return int(count) if isinstance(count, int | float) else len(self.turns)

    @property
    def turn_count(self) -> int:
        count = self.metadata.get("turn_count")
        if isinstance(count, int | float):
            return int(count)
        speakers = [t.get("speaker") for t in self.turns]
        return sum(1 for i, s in enumerate(speakers) if i == 0 or s != speakers[i - 1])

    @property
    def timeline_s(self) -> float | None:
        return _number(self.metadata.get("timeline_s"))

    @property
    def wall_time_s(self) -> float | None:
        return _number(self.metadata.get("wall_time_s"))

    @property
    def tool_call_count(self) -> int:
        count = self.metadata.get("tool_call_count")
        return int(count) if isinstance(count, int | float) else len(self.function_calls)

    @property
    def interruption_count(self) -> int:
        return sum(1 for t in self.turns if t.get("interrupted"))

    @property
    def mean_turn_gap_s(self) -> float | None:
        """Mean silence between turns on the call timeline (the evaluation's metric)."""
        latency = self.metrics.get("response_latency_s")
        if isinstance(latency, dict):
            return _number(latency.get("mean"))
        return None

    @property
    def engine_latencies_s(self) -> list[float]:
        """Measured backend latency of each answer (``response.create`` to first output)."""
        values = self.metadata.get("response_latencies_s")
        if not isinstance(values, list) or not values:
            values = [t.get("response_latency_s") for t in self.turns]
        return [n for n in (_number(v) for v in values) if n is not None]

    @property
    def mean_engine_latency_s(self) -> float | None:
        values = self.engine_latencies_s
        return sum(values) / len(values) if values else None

    @property
    def max_engine_latency_s(self) -> float | None:
        values = self.engine_latencies_s
        return max(values) if values else None

    def events(self) -> list[dict[str, Any]]:
        """Every event both ways (``session_events.json``), read on demand: it can be large.

        A call that never closed has its events in the journal instead (a torn last line is
        skipped)."""
        if not (self.path / EVENTS_FILE).is_file() and (self.path / EVENTS_JOURNAL).is_file():
            return _read_journal(self.path / EVENTS_JOURNAL)
        events, _ = _read_entries(self.path / EVENTS_FILE, "events")
        return events

    def summary(self) -> dict[str, Any]:
        """The figures a batch keeps per call (JSON-ready)."""
        return {
            "conversation_id": self.conversation_id,
            "caller_type": self.caller_type,
            "scenario": self.scenario_name,
            "status": self.status,
            "end_reason": self.end_reason,
            "outcome": self.outcome,
            "success": self.success,
            "as_expected": self.as_expected,
            "turns": self.turn_count,
            "duration_s": self.timeline_s,
            "wall_time_s": self.wall_time_s,
            "mean_turn_gap_s": self.mean_turn_gap_s,
            "mean_engine_latency_s": _round(self.mean_engine_latency_s),
            "interruptions": self.interruption_count,
            "tool_calls": self.tool_call_count,
            "started_at": self.metadata.get("started_at"),
            "ended_at": self.metadata.get("ended_at"),
            "error": self.error,
        }


def load_call(folder: str | Path) -> CallRecord:
    """Read one call folder (see docs/recording-format.md); never raises for broken content.

    Raises :class:`FileNotFoundError` only when ``folder`` is not a directory.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a recorded call (no such folder): {folder}")
    metadata, meta_error = _read_json(folder / METADATA_FILE)
    if meta_error is None and not isinstance(metadata, dict):
        metadata, meta_error = None, f"{METADATA_FILE} is not a JSON object"
    metadata = metadata if isinstance(metadata, dict) else {}
    turns, turns_error = _read_entries(folder / TRANSCRIPT_FILE, "turns")
    calls, calls_error = _read_entries(folder / FUNCTION_CALLS_FILE, "calls")
    # A running (or crashed) call may not have written its transcript yet: not a load error.
    running = metadata.get("status") == "running"
    problems = [meta_error, *(() if running else (turns_error, calls_error))]
    return CallRecord(
        path=folder,
        metadata=metadata,
        turns=turns,
        function_calls=calls,
        load_error="; ".join(p for p in problems if p) or None,
    )


def _process_gone(process: Any) -> bool:
    """Is the process that was recording this call known to be gone? Only a process on this
    host can be checked; elsewhere the call may still run, so the answer is no."""
    if not isinstance(process, dict) or process.get("host") != socket.gethostname():
        return False
    import psutil

    try:
        return psutil.Process(int(process["pid"])).create_time() != process.get("create_time")
    except (psutil.NoSuchProcess, KeyError, TypeError, ValueError):
        return True
    except psutil.Error:  # e.g. access denied: it exists
        return False


def _read_journal(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # the line being written when the process died
        if isinstance(event, dict):
            events.append(event)
    return events


def is_call_folder(folder: Path) -> bool:
    return (folder / METADATA_FILE).is_file()


def _read_json(path: Path) -> tuple[Any, str | None]:
    if not path.is_file():
        return None, f"missing {path.name}"
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"unreadable {path.name}: {exc}"
    except ValueError as exc:
        return None, f"invalid JSON in {path.name}: {exc}"


def _read_entries(path: Path, key: str) -> tuple[list[dict[str, Any]], str | None]:
    data, error = _read_json(path)
    if error:
        return [], error
    entries = data.get(key) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [], f"no {key!r} list in {path.name}"
    return [e for e in entries if isinstance(e, dict)], None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
