"""A batch as a CI step: a success-rate gate (``min_success``) and a JUnit XML report.

- :class:`Gate`: the batch's success rate against a minimum. The rate is the batch summary's
  (:func:`dualagent.batch.manifest.overall`): successes over the judged calls, success as
  :func:`dualagent.call.record.call_success` defines it, so a completed call that was never
  judged is left out, and a call that ended in error counts as a failed call.
- :func:`write_junit`: one ``<testcase>`` per call (classname: the scenario or caller type;
  name: the call id and its seed), one ``<testsuite>`` per scenario or caller type. A call
  that did not succeed has a ``<failure>`` (an ``<error>`` when it ended in error) whose
  message names the unmet criteria, the failure conditions that held and the end reason, and
  whose text is :func:`~dualagent.call.result.explain_record` (evidence and transcript tail);
  a call never judged, or never finished, is ``<skipped>``. Each test case has the recording's
  path as a property. GitHub Actions (via a JUnit report action), GitLab
  (``artifacts:reports:junit``) and Jenkins (``junit``) read this shape.

- :func:`write_comparison_junit`: ``dualagent compare-agents --fail-if-worse``'s report: one
  ``<testcase>`` per scenario or caller type and one for the overall regression gate
  (:class:`dualagent.compare.RegressionGate`); a case whose candidate is significantly worse
  has a ``<failure>`` whose message is the gate's sentence and whose text lists the calls the
  candidate broke. Only the overall case decides the exit code.

Both inputs are checked before a batch writes anything (``min_success`` is a field of
:class:`~dualagent.batch.config.BatchConfig`; the report's path: :func:`check_junit_path`), as
:class:`~dualagent.errors.InputError`, one line.
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dualagent.batch.manifest import FINISHED_STATUSES, is_success
from dualagent.batch.plan import item_slug
from dualagent.call.record import CallRecord, load_call
from dualagent.call.result import explain_record
from dualagent.errors import InputError
from dualagent.files import write_text_atomic

if TYPE_CHECKING:
    from dualagent.batch.manifest import BatchResult
    from dualagent.compare import Comparison

__all__ = [
    "Gate",
    "check_junit_path",
    "comparison_junit_xml",
    "junit_xml",
    "write_comparison_junit",
    "write_junit",
]


def check_junit_path(path: str | Path | None) -> Path | None:
    """Where the JUnit report goes, if it can be written there: its folder exists and may be
    written in, and the path is not a folder. Raises :class:`InputError`; writes nothing."""
    if path is None:
        return None
    target = Path(path)
    folder = target.parent
    if str(path).strip() == "" or target.is_dir():
        raise InputError(f"junit: {str(path)!r} is a folder; give a file path such as results.xml")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"junit: cannot write {str(path)!r}: its folder {str(folder)!r} {what}")
    writable = os.access(folder, os.W_OK | os.X_OK) and (
        not target.exists() or os.access(target, os.W_OK)
    )
    if not writable:
        raise InputError(
            f"junit: cannot write {str(path)!r}: not writable; give a path you may write"
        )
    return target


# ------------------------------------------------------------------------------ the gate


@dataclass(frozen=True)
class Gate:
    """A batch's success rate against the minimum it must reach."""

    min_success: float
    success_rate: float | None  # None: no call was judged
    successes: int
    judged: int
    unjudged: int = 0  # completed calls never judged, left out of the rate

    @classmethod
    def of(cls, overall: dict[str, Any], min_success: float) -> Gate:
        """The gate for a batch's ``overall`` figures (:func:`~dualagent.batch.manifest.overall`)."""
        judged = int(overall.get("judged") or 0)
        return cls(
            min_success=min_success,
            success_rate=overall.get("success_rate"),
            successes=int(overall.get("successes") or 0),
            judged=judged,
            unjudged=int(overall.get("n") or 0) - judged,
        )

    @property
    def passed(self) -> bool:
        """The rate reaches the minimum. No judged call proves nothing: not passed."""
        return self.success_rate is not None and self.success_rate >= self.min_success

    def message(self) -> str:
        """One line: the rate, the minimum and the verdict."""
        if self.success_rate is None:
            rate = "n/a (no call was judged)"
        else:
            rate = f"{self.success_rate:.4g} ({self.successes} of {self.judged} judged calls)"
        left_out = (
            f"; {self.unjudged} completed calls not judged, left out" if self.unjudged else ""
        )
        verdict = "reaches" if self.passed else "is below"
        return f"success rate {rate} {verdict} min_success {self.min_success:g}{left_out}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "min_success": self.min_success,
            "success_rate": self.success_rate,
            "successes": self.successes,
            "judged": self.judged,
            "passed": self.passed,
        }


# ------------------------------------------------------------------------------ JUnit XML


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(number) else number


def _properties(parent: ET.Element, values: dict[str, Any]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        if value is not None:  # booleans as JSON writes them
            text = str(value).lower() if isinstance(value, bool) else str(value)
            ET.SubElement(props, "property", name=name, value=text)


def _record(path: Path) -> CallRecord | None:
    try:
        return load_call(path)
    except FileNotFoundError:  # a call that left no folder (never started)
        return None


def _failure_message(entry: dict[str, Any], record: CallRecord | None) -> str:
    """One line for the report's list of failures: outcome, what failed, how the call ended."""
    outcome = record.outcome_details if record is not None else {}
    parts = [f"outcome {entry.get('outcome') or 'none'}"]
    if outcome.get("unmet_criteria"):
        parts.append("unmet: " + ", ".join(outcome["unmet_criteria"]))
    if outcome.get("failure_conditions_met"):
        parts.append("failure conditions met: " + ", ".join(outcome["failure_conditions_met"]))
    parts.append(f"end reason {entry.get('end_reason') or 'none'}")
    if entry.get("error"):
        parts.append(f"error: {entry['error']}")
    return "; ".join(parts)


def _testcase(suite: ET.Element, entry: dict[str, Any], path: Path) -> str:
    """Add one call's ``<testcase>``; return its verdict: passed, failure, error or skipped."""
    case = ET.SubElement(
        suite,
        "testcase",
        classname=item_slug(str(entry["item"])),
        name=f"{entry['call_id']} (seed {entry['seed']})",
        time=f"{_seconds(entry.get('wall_time_s')):.3f}",
    )
    record = _record(path)
    _properties(
        case,
        {
            "recording": path,
            "seed": entry.get("seed"),
            "status": entry.get("status"),
            "end_reason": entry.get("end_reason"),
            "outcome": entry.get("outcome"),
            "as_expected": entry.get("as_expected"),
        },
    )
    status = entry.get("status")
    if status not in FINISHED_STATUSES:
        ET.SubElement(case, "skipped", message=f"not finished: {status}")
        return "skipped"
    success = is_success(entry)
    if success is True:
        return "passed"
    if success is None:
        ET.SubElement(case, "skipped", message="completed but not judged (no outcome)")
        return "skipped"
    kind = "error" if status == "error" else "failure"
    element = ET.SubElement(
        case,
        kind,
        message=_failure_message(entry, record),
        type=str(entry.get("end_reason") or entry.get("outcome") or status),
    )
    element.text = explain_record(record) if record is not None else str(entry.get("error"))
    return kind


def _counts(element: ET.Element, verdicts: list[str], seconds: float) -> None:
    element.set("tests", str(len(verdicts)))
    element.set("failures", str(verdicts.count("failure")))
    element.set("errors", str(verdicts.count("error")))
    element.set("skipped", str(verdicts.count("skipped")))
    element.set("time", f"{seconds:.3f}")


def junit_xml(result: BatchResult) -> ET.ElementTree:
    """The batch as JUnit XML: a test suite per scenario or caller type, a test case per call."""
    manifest = result.manifest
    root = ET.Element("testsuites", name=f"dualagent batch {result.batch_id}")
    by_item: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in manifest.get("calls", []):
        by_item.setdefault((entry["kind"], entry["item"]), []).append(entry)
    every: list[str] = []
    total_s = 0.0
    for (kind, item), entries in by_item.items():
        suite = ET.SubElement(
            root,
            "testsuite",
            name=item_slug(item),
            timestamp=str(manifest.get("started_at") or ""),
        )
        _properties(suite, {"batch_id": result.batch_id, "kind": kind, "item": item})
        verdicts = [_testcase(suite, e, result.path / str(e.get("path"))) for e in entries]
        seconds = sum(_seconds(e.get("wall_time_s")) for e in entries)
        _counts(suite, verdicts, seconds)
        every += verdicts
        total_s += seconds
    _counts(root, every, total_s)
    ET.indent(root)
    return ET.ElementTree(root)


def _write_xml(tree: ET.ElementTree, path: str | Path) -> Path:
    target = Path(path)
    text = ET.tostring(tree.getroot(), encoding="unicode", xml_declaration=True)
    write_text_atomic(target, text + "\n")
    return target


def write_junit(result: BatchResult, path: str | Path) -> Path:
    """Write the batch's JUnit XML to ``path`` (atomically); return the path."""
    return _write_xml(junit_xml(result), path)


# ------------------------------------------------------------------------------ comparisons


def _wall_time_s(comparison: Comparison) -> dict[str, float]:
    """Both sides' call time per item."""
    seconds: dict[str, float] = {}
    for result in (comparison.baseline, comparison.candidate):
        for entry in result.manifest.get("calls", []):
            item = str(entry["item"])
            seconds[item] = seconds.get(item, 0.0) + _seconds(entry.get("wall_time_s"))
    return seconds


def comparison_junit_xml(comparison: Comparison, alpha: float, min_effect: float) -> ET.ElementTree:
    """A comparison as JUnit XML: a test case per scenario or caller type and the overall gate."""
    from dualagent.compare import ALL

    name = comparison.path.name
    root = ET.Element("testsuites", name=f"dualagent compare-agents {name}")
    suite = ET.SubElement(root, "testsuite", name="compare-agents")
    _properties(
        suite,
        {
            "comparison": comparison.path,
            "baseline": comparison.agents.get("baseline"),
            "candidate": comparison.agents.get("candidate"),
            "alpha": alpha,
            "min_effect": min_effect,
        },
    )
    seconds = _wall_time_s(comparison)
    verdicts: list[str] = []
    pairs = comparison.pairs
    for gate in comparison.gates(alpha, min_effect):
        overall = gate.item == ALL
        case = ET.SubElement(
            suite,
            "testcase",
            classname="compare-agents",
            name="regression gate (all pairs)" if overall else item_slug(gate.item),
            time=f"{sum(seconds.values()) if overall else seconds.get(gate.item, 0.0):.3f}",
        )
        _properties(case, {k: v for k, v in gate.as_dict().items() if k != "message"})
        if not gate.worse:
            verdicts.append("passed")
            continue
        mine = pairs if overall else pairs[pairs["item"] == gate.item]
        broken = [str(c) for c in mine.loc[mine["change"] == "broken", "call_id"]]
        failure = ET.SubElement(case, "failure", message=gate.message(), type="worse")
        failure.text = "calls the candidate broke: " + (", ".join(broken) or "none")
        verdicts.append("failure")
    _counts(suite, verdicts, sum(seconds.values()))
    _counts(root, verdicts, sum(seconds.values()))
    ET.indent(root)
    return ET.ElementTree(root)


def write_comparison_junit(
    comparison: Comparison, path: str | Path, alpha: float, min_effect: float
) -> Path:
    """Write the comparison's JUnit XML to ``path`` (atomically); return the path."""
    return _write_xml(comparison_junit_xml(comparison, alpha, min_effect), path)
