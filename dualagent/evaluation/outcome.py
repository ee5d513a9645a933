"""The verdict on a call: success, failure or incomplete, with the evidence of every check.

The criteria and failure conditions come from a scenario (its checks), or from a persona's
goal (its plain-text criteria, judged by the standard checks). The rule: *failure* if any
failure condition holds, else *success* if every success criterion holds, else *incomplete*.
How each check runs against the record is :mod:`dualagent.evaluation.checks`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from dualagent.call.record import CallRecord
from dualagent.evaluation.check_base import kinds_in, unobservable_kinds
from dualagent.evaluation.checks import (
    STANDARD_CHECKS,
    CallContext,
    CheckResult,
    CheckSpec,
    call_context,
    normalize_criterion,
    run_check,
)
from dualagent.personas import CallerGoal, Persona

if TYPE_CHECKING:
    from dualagent.scenarios import Scenario

__all__ = ["RESULTS", "Outcome", "Result", "evaluate"]

RESULTS = ("success", "failure", "incomplete")
Result = Literal["success", "failure", "incomplete"]


class Outcome(BaseModel):
    """The verdict on one call; ``as_dict()`` goes into call_metadata.json["outcome"]."""

    result: Result
    criteria: list[CheckResult]
    failures: list[CheckResult]
    expected_outcome: Result | None = None
    as_expected: bool | None = None
    scenario: str | None = None

    @property
    def unmet_criteria(self) -> list[str]:
        return [c.name for c in self.criteria if not c.passed and c.observable]

    @property
    def not_observable(self) -> list[str]:
        """Criteria and failure conditions the recording cannot judge (a phone-stream bot)."""
        return [c.name for c in [*self.criteria, *self.failures] if not c.observable]

    @property
    def failure_conditions_met(self) -> list[str]:
        return [f.name for f in self.failures if f.passed]

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json")
        for check in [*data["criteria"], *data["failures"]]:
            if check.get("observable", True):  # said only where it is not
                check.pop("observable", None)
        data["unmet_criteria"] = self.unmet_criteria
        data["failure_conditions_met"] = self.failure_conditions_met
        if self.not_observable:
            data["not_observable"] = self.not_observable
        return data


Plan = list[tuple[str, CheckSpec | None]]


def _plan_for_goal(goal: CallerGoal) -> tuple[Plan, Plan]:
    def spec(text: str) -> CheckSpec | None:
        return STANDARD_CHECKS.get(normalize_criterion(text))

    return (
        [(t, spec(t)) for t in goal.success_criteria],
        [(t, spec(t)) for t in goal.failure_conditions],
    )


def _goal_from_metadata(record: CallRecord) -> CallerGoal:
    goal = ((record.metadata.get("persona") or {}).get("goal")) or None
    if goal is None:
        raise ValueError("the record's metadata has no persona goal; pass a scenario or a goal")
    return CallerGoal.model_validate(goal)


def _run_criterion(
    text: str, spec: CheckSpec | None, record: CallRecord, ctx: CallContext
) -> CheckResult:
    if spec is None:
        known = ", ".join(STANDARD_CHECKS)
        evidence = f"no check for {text!r} (define one in a scenario; standard criteria: {known})"
        return CheckResult(name=text, passed=False, evidence=evidence)
    hidden = unobservable_kinds(record.metadata) & kinds_in(
        spec, STANDARD_CHECKS, normalize_criterion
    )
    if hidden:
        evidence = (
            f"not observable: it needs {', '.join(sorted(hidden))}, which a phone-stream bot "
            "keeps to itself (tool calls can be reported to our hook)"
        )
        return CheckResult(name=text, passed=False, evidence=evidence, observable=False)
    return run_check(spec, record, ctx, name=text)


def evaluate(
    record: CallRecord,
    scenario_or_goal: Scenario | CallerGoal | Persona | None = None,
) -> Outcome:
    """Judge a call against a scenario's checks, or a goal's criteria via the standard checks.

    Without a scenario or goal, the persona goal recorded in the metadata is used. A criterion
    without a check never passes (so the call is at best incomplete), and a failure condition
    without a check never holds; both say so in their evidence.
    """
    if scenario_or_goal is None or isinstance(scenario_or_goal, CallerGoal | Persona):
        scenario = None
        goal = scenario_or_goal.goal if isinstance(scenario_or_goal, Persona) else scenario_or_goal
        success, failure = _plan_for_goal(goal or _goal_from_metadata(record))
    else:
        scenario = scenario_or_goal
        success, failure = scenario.check_plan()
    ctx = call_context(record, scenario)
    criteria = [_run_criterion(text, spec, record, ctx) for text, spec in success]
    failures = [_run_criterion(text, spec, record, ctx) for text, spec in failure]
    judged = [c for c in criteria if c.observable]  # what a phone-stream bot let us see
    result: Result = (
        "failure"
        if any(f.passed for f in failures)
        else "success"
        if all(c.passed for c in judged) and (judged or not criteria)
        else "incomplete"
    )
    expected = scenario.expected_outcome if scenario is not None else None
    return Outcome(
        result=result,
        criteria=criteria,
        failures=failures,
        expected_outcome=expected,
        as_expected=None if expected is None else result == expected,
        scenario=scenario.name if scenario is not None else None,
    )
