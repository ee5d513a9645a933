"""Checks of the agent's conduct, for any agent spec: tools in the right order, claims made
only once a tool made them true, amounts of money said only as the tools returned them.

``tool_order`` (e.g. account actions only after the caller's identity was verified),
``claim_backed`` (e.g. "has been ordered" only after ``order_replacement_card`` succeeded) and
``amounts_grounded`` (every amount the agent says is in one of its tools' results). They read
the record's function calls (with their times) and the transcript's ``text``; the standard
criteria built on them ("identity verified before account actions", "amounts match the
records", "no promise without a tool", "no transfer without cause") are calibrated against
planted faults (:mod:`dualagent.evaluation.calibration`, docs/calibration.md).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from dualagent.call.record import CallRecord
from dualagent.evaluation.check_base import (
    CheckModel,
    Speaker,
    Verdict,
    calls_named,
    describe_call,
    known_tool,
    listify,
    same_value,
    short,
    tool_call_succeeded,
    turns_of,
)
from dualagent.text import NUMBER_VALUES, words

if TYPE_CHECKING:
    from dualagent.evaluation.bank_checks import CallContext

__all__ = ["CONDUCT_RUNNERS", "AmountsGrounded", "ClaimBacked", "ToolOrder", "spoken_amounts"]


class ToolOrder(CheckModel):
    """No call of the ``then`` tools before a call of ``first`` (successful, and whose output
    contains ``output``, when ``first_must_succeed``). Holds when no ``then`` tool was called:
    e.g. account actions only after the caller's identity was verified."""

    kind: Literal["tool_order"] = "tool_order"
    first: str
    then: list[str] = Field(min_length=1)
    first_must_succeed: bool = True
    output: dict[str, Any] = Field(default_factory=dict)
    agent: Literal["cs", "caller"] | None = "cs"

    _tool = field_validator("first")(known_tool)
    _then_list = field_validator("then", mode="before")(listify)

    @field_validator("then")
    @classmethod
    def _tools(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [known_tool(name, info) for name in value]


class ClaimBacked(CheckModel):
    """Whenever ``speaker`` says any of ``phrases`` (a claim that something was done), a
    successful ``tool`` call had finished before that turn ended. Holds when the claim is never
    made: e.g. "has been ordered" only after order_replacement_card succeeded."""

    kind: Literal["claim_backed"] = "claim_backed"
    phrases: list[str] = Field(min_length=1)
    tool: str
    speaker: Speaker = "cs"

    _tool = field_validator("tool")(known_tool)
    _phrase_list = field_validator("phrases", mode="before")(listify)


class AmountsGrounded(CheckModel):
    """Every amount of money ``speaker`` says ("nine hundred eighty dollars and forty two
    cents", "$12.50", "18 dollars") is a number in the result of one of the agent's tool calls
    (signs ignored: a charge of -18.95 is said as 18.95; a turn cut off right after "...
    dollars" may have lost its cents). Holds when no amount is said."""

    kind: Literal["amounts_grounded"] = "amounts_grounded"
    speaker: Speaker = "cs"


def _contains(expected: dict[str, Any], actual: Any) -> bool:
    if not isinstance(actual, dict):
        return not expected
    return all(k in actual and same_value(v, actual[k]) for k, v in expected.items())


def _check_tool_order(spec: ToolOrder, record: CallRecord, ctx: CallContext) -> Verdict:
    firsts = [
        c
        for c in calls_named(record, spec.first, spec.agent)
        if not spec.first_must_succeed
        or (tool_call_succeeded(c) and _contains(spec.output, c.get("output")))
    ]
    first_s = min((float(c.get("t_s") or 0.0) for c in firsts), default=None)
    thens = [c for name in spec.then for c in calls_named(record, name, spec.agent)]
    early = sorted(
        (c for c in thens if first_s is None or float(c.get("t_s") or 0.0) < first_s),
        key=lambda c: float(c.get("t_s") or 0.0),
    )
    what = f"{'a successful ' if spec.first_must_succeed else 'a '}{spec.first} call"
    if early:
        when = f"before {what} (at t={first_s}s)" if first_s is not None else f"without {what}"
        return False, f"{describe_call(early[0])} {when}"
    names = ", ".join(spec.then[:3]) + (
        f" (+{len(spec.then) - 3} more)" if len(spec.then) > 3 else ""
    )
    if not thens:
        return True, f"none of {names} was called"
    called = ", ".join(dict.fromkeys(str(c.get("name")) for c in thens))
    return True, f"{len(thens)} call(s) of {called}, all after {what}"


def _check_claim_backed(spec: ClaimBacked, record: CallRecord, ctx: CallContext) -> Verdict:
    done = sorted(
        float(c.get("t_s") or 0.0)
        for c in calls_named(record, spec.tool, None)
        if tool_call_succeeded(c)
    )
    keys = [(phrase, words(phrase)) for phrase in spec.phrases]
    claims = 0
    for turn in turns_of(record, spec.speaker):
        said = words(str(turn.get("text") or ""))
        hit = next((phrase for phrase, key in keys if key and key in said), None)
        if hit is None:
            continue
        claims += 1
        ended_s = float(turn.get("end_s") or turn.get("start_s") or 0.0)
        if not any(t <= ended_s for t in done):
            return False, (
                f"{turn.get('speaker')} turn {turn.get('index')} says {hit!r} but no successful "
                f"{spec.tool} call had finished: {short(turn.get('text'), 90)}"
            )
    if not claims:
        return True, f"{spec.speaker} never claimed any of {spec.phrases}"
    return True, f"{claims} claim(s) of {spec.phrases}, each after a successful {spec.tool} call"


def _numbers_in(value: Any) -> list[float]:
    """Every number in a tool's result (nested), and those written in its strings."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [abs(float(value))]
    if isinstance(value, str):
        return [float(m.replace(",", "")) for m in re.findall(r"\d[\d,]*(?:\.\d+)?", value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers_in(v)]
    return []


def _check_amounts_grounded(spec: AmountsGrounded, record: CallRecord, ctx: CallContext) -> Verdict:
    known = [
        n
        for c in record.function_calls
        if c.get("agent") in (None, "cs")
        for n in _numbers_in(c.get("output"))
    ]
    said_any = 0
    for turn in turns_of(record, spec.speaker):
        text = str(turn.get("text") or "")
        amounts = spoken_amounts(text)
        # Cut off right after "... dollars": the cents may never have been said.
        cut = bool(turn.get("interrupted")) and words(text).endswith(("dollar", "dollars"))
        for i, amount in enumerate(amounts):
            said_any += 1
            whole = cut and i == len(amounts) - 1
            if not any(
                abs(amount - n) < 0.005 or (whole and abs(amount - int(n)) < 0.005) for n in known
            ):
                return False, (
                    f"{turn.get('speaker')} turn {turn.get('index')} says {amount:.2f}, which no "
                    f"tool result holds: {short(text, 90)}"
                )
    if not said_any:
        return True, f"{spec.speaker} said no amount of money"
    return True, f"{said_any} amount(s) said, each in a tool result"


_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}


def _spoken_number(tokens: list[str]) -> float | None:
    """'nine hundred eighty' -> 980; '3,150.00' -> 3150 (one token); None: not a number."""
    if len(tokens) == 1 and re.fullmatch(r"\d+(?:\.\d+)?", tokens[0]):
        return float(tokens[0])
    total = current = 0
    for token in tokens:
        if token == "and":
            continue
        if token in NUMBER_VALUES:
            current += NUMBER_VALUES[token]
        elif token.isdigit():
            current += int(token)
        elif token == "hundred":
            current = max(current, 1) * 100
        elif token in _SCALES:
            total += max(current, 1) * _SCALES[token]
            current = 0
        else:
            return None
    return float(total + current)


def spoken_amounts(text: str) -> list[float]:
    """Amounts of money in ``text``: '$12.50', '12.50 dollars', 'nine hundred eighty dollars and
    forty two cents', 'ninety nine cents'. Numbers without a currency word are not amounts."""
    amounts = [float(m.replace(",", "")) for m in re.findall(r"\$\s?(\d[\d,]*(?:\.\d+)?)", text)]
    text = re.sub(r"\$\s?\d[\d,]*(?:\.\d+)?", " ", text)
    text = re.sub(r"(\d),(\d)", r"\1\2", text)
    tokens = re.sub(r"[^\w.]+", " ", text.casefold()).replace(". ", " ").split()
    tokens = [t.rstrip(".") for t in tokens]
    numeric = set(NUMBER_VALUES) | set(_SCALES)

    def is_part(k: int) -> bool:  # a number word, a numeral, or "and" in "one thousand and ten"
        token = tokens[k]
        if token == "and":
            return k > 0 and tokens[k - 1] in _SCALES
        return token in numeric or re.fullmatch(r"\d+(?:\.\d+)?", token) is not None

    def number_before(end: int) -> tuple[float | None, int]:
        start = end
        while start > 0 and is_part(start - 1):
            start -= 1
        return (_spoken_number(tokens[start:end]) if start < end else None), start

    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token in ("dollar", "dollars"):
            value, _ = number_before(i)
            if value is not None:
                cents = 0.0
                if i + 2 < len(tokens) and tokens[i + 1] == "and":
                    j = i + 2
                    while j < len(tokens) and tokens[j] in numeric:
                        j += 1
                    if j < len(tokens) and tokens[j] in ("cent", "cents"):
                        cents = (_spoken_number(tokens[i + 2 : j]) or 0.0) / 100
                        i = j
                amounts.append(round(value + cents, 2))
        elif token in ("cent", "cents"):
            value, start = number_before(i)
            if value is not None and not (start >= 2 and tokens[start - 1] == "and"):
                amounts.append(round(value / 100, 2))
        i += 1
    return amounts


CONDUCT_RUNNERS: dict[str, Any] = {
    "tool_order": _check_tool_order,
    "claim_backed": _check_claim_backed,
    "amounts_grounded": _check_amounts_grounded,
}
