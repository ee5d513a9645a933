"""Checks that hold for any agent spec: the agent's state after the call, what was said (a
pattern), and turn and time limits. Tool checks (``tool_called``, ``tool_not_called``) and the
end reason (``end_reason_in``) are in :mod:`dualagent.evaluation.checks`, with the language.

``state`` reads ``call_metadata.json["agent_state"]``, the snapshot the spec's state gives at the
end of the call, by a dotted path: ``appointments.0.status``; ``*`` stands for every item of a
list (or value of a mapping), and the check holds when any of them satisfies it (or exactly
``count`` of them do).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from dualagent.call.record import CallRecord
from dualagent.evaluation.check_base import (
    CheckModel,
    Speaker,
    Verdict,
    agent_state,
    same_value,
    short,
    turns_of,
)
from dualagent.text import words

__all__ = [
    "DOMAIN_RUNNERS",
    "DurationAtMost",
    "SaidMatching",
    "StateIs",
    "TurnsAtMost",
    "compile_pattern",
    "resolve_path",
]

_CONDITIONS = ("equals", "one_of", "matches", "contains", "exists")


def compile_pattern(value: str) -> str:
    """A field validator: ``value`` must be a regular expression."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
    return value


class StateIs(CheckModel):
    """A value in the agent's state after the call, by path (see the module docstring).

    One condition at most: ``equals`` (strings compare by their words), ``one_of``, ``matches``
    (a regular expression, case-insensitive), ``contains`` (a mapping holding these values), or
    ``exists`` (true: the path leads somewhere; false: nowhere). None given: ``exists: true``.
    """

    kind: Literal["state"] = "state"
    path: str = Field(min_length=1, description="e.g. appointments.0.status; * = any item")
    equals: Any = None
    one_of: list[Any] | None = Field(None, min_length=1)
    matches: str | None = None
    contains: dict[str, Any] | None = None
    exists: bool | None = None
    count: int | None = Field(None, ge=0, description="exactly this many values satisfy it")

    @field_validator("matches")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        return value if value is None else compile_pattern(value)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if any(not part for part in value.split(".")):
            raise ValueError(f"{value!r} has an empty part; write parts between single dots")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> StateIs:
        given = [c for c in _CONDITIONS if c in self.model_fields_set]
        if len(given) > 1:
            raise ValueError(f"give one condition, not {' and '.join(given)}")
        if self.exists is False and self.count is not None:
            raise ValueError("count does not apply to exists: false")
        return self

    @property
    def condition(self) -> str:
        return next((c for c in _CONDITIONS if c in self.model_fields_set), "exists")


class SaidMatching(CheckModel):
    """Someone said something matching ``pattern`` (a regular expression, case-insensitive),
    searched in what was said and in its words (lower case, no punctuation)."""

    kind: Literal["said_matching"] = "said_matching"
    speaker: Speaker = "cs"
    pattern: str = Field(min_length=1)
    field: Literal["text", "heard"] = "text"

    _pattern = field_validator("pattern")(compile_pattern)


class TurnsAtMost(CheckModel):
    """The call took at most ``turns`` conversation turns (runs of one speaker)."""

    kind: Literal["turns_at_most"] = "turns_at_most"
    turns: int = Field(ge=1)


class DurationAtMost(CheckModel):
    """The call lasted at most ``seconds`` on its timeline."""

    kind: Literal["duration_at_most"] = "duration_at_most"
    seconds: float = Field(gt=0)


# --------------------------------------------------------------------------------------------
# Paths into the state
# --------------------------------------------------------------------------------------------


def resolve_path(document: Any, path: str) -> list[tuple[str, Any]]:
    """The (concrete path, value) pairs ``path`` leads to in ``document`` (``*`` fans out)."""
    found: list[tuple[str, Any]] = [("", document)]
    for part in path.split("."):
        step: list[tuple[str, Any]] = []
        for where, value in found:
            for key, item in _children(value, part):
                step.append((f"{where}.{key}" if where else str(key), item))
        found = step
    return found


def _children(value: Any, part: str) -> list[tuple[Any, Any]]:
    if isinstance(value, dict):
        if part == "*":
            return list(value.items())
        return [(part, value[part])] if part in value else []
    if isinstance(value, list):
        if part == "*":
            return list(enumerate(value))
        try:
            index = int(part)
        except ValueError:
            return []
        if -len(value) <= index < len(value):
            return [(index % len(value), value[index])]
    return []


def _satisfies(spec: StateIs, value: Any) -> bool:
    condition = spec.condition
    if condition == "equals":
        return same_value(spec.equals, value)
    if condition == "one_of":
        return any(same_value(option, value) for option in spec.one_of or [])
    if condition == "matches":
        scalar = isinstance(value, str | int | float) and not isinstance(value, bool)
        return scalar and re.search(spec.matches or "", str(value), re.IGNORECASE) is not None
    if condition == "contains":
        return isinstance(value, dict) and all(
            key in value and same_value(expected, value[key])
            for key, expected in (spec.contains or {}).items()
        )
    return True  # exists


def _wanted(spec: StateIs) -> str:
    condition = spec.condition
    if condition == "exists":
        return "exists" if spec.exists is not False else "does not exist"
    value = getattr(spec, condition)
    return f"{condition.replace('_', ' ')} {short(value)}"


def _check_state(spec: StateIs, record: CallRecord, ctx: Any) -> Verdict:
    state = agent_state(record)
    if state is None:
        return False, "the recording has no agent_state (the agent's state after the call)"
    found = resolve_path(state, spec.path)
    if spec.condition == "exists" and spec.exists is False:
        if found:
            return False, f"{found[0][0]} exists: {short(found[0][1])}"
        return True, f"nothing at {spec.path}"
    if not found:
        return False, f"nothing at {spec.path} ({_where_it_stops(state, spec.path)})"
    hits = [(where, value) for where, value in found if _satisfies(spec, value)]
    if spec.count is not None:
        passed = len(hits) == spec.count
        shown = "; ".join(f"{w} = {short(v)}" for w, v in hits[:3]) or "none"
        return passed, (
            f"{len(hits)} of {len(found)} at {spec.path} {_wanted(spec)} (expected "
            f"{spec.count}): {shown}"
        )
    if hits:
        where, value = hits[0]
        return True, f"{where} = {short(value)} ({_wanted(spec)})"
    shown = "; ".join(f"{w} = {short(v)}" for w, v in found[:3])
    more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
    return False, f"no value at {spec.path} {_wanted(spec)}: {shown}{more}"


def _where_it_stops(document: Any, path: str) -> str:
    """Which part of ``path`` leads nowhere, and what is there instead."""
    parts = path.split(".")
    for i in range(1, len(parts) + 1):
        if not resolve_path(document, ".".join(parts[:i])):
            above = resolve_path(document, ".".join(parts[: i - 1])) if i > 1 else [("", document)]
            value = above[0][1] if above else None
            if isinstance(value, list):
                return f"{'.'.join(parts[: i - 1]) or 'the state'} has {len(value)} items"
            if isinstance(value, dict):
                keys = ", ".join(map(str, list(value)[:8]))
                return f"{parts[i - 1]!r} is not one of: {keys}"
            return f"{'.'.join(parts[: i - 1])} is {short(value)}"
    return "empty"


def _check_said_matching(spec: SaidMatching, record: CallRecord, ctx: Any) -> Verdict:
    pattern = re.compile(spec.pattern, re.IGNORECASE)
    for turn in turns_of(record, spec.speaker):
        said = str(turn.get(spec.field) or "")
        if pattern.search(said) or pattern.search(words(said)):
            return True, f"{turn.get('speaker')} turn {turn.get('index')}: {short(said, 90)}"
    return False, f"{spec.speaker} never said anything matching {spec.pattern!r}"


def _check_turns(spec: TurnsAtMost, record: CallRecord, ctx: Any) -> Verdict:
    turns = record.turn_count
    return turns <= spec.turns, f"{turns} turns (at most {spec.turns})"


def _check_duration(spec: DurationAtMost, record: CallRecord, ctx: Any) -> Verdict:
    seconds = record.timeline_s
    if seconds is None:
        return False, "the recording has no timeline_s"
    return seconds <= spec.seconds, f"{seconds:.1f} s (at most {spec.seconds:g} s)"


DOMAIN_RUNNERS: dict[str, Any] = {
    "state": _check_state,
    "said_matching": _check_said_matching,
    "turns_at_most": _check_turns,
    "duration_at_most": _check_duration,
}
