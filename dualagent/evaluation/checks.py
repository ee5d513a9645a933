"""The check language: declarative tests of a recorded call, and how each one runs.

A persona's goal (or a scenario) lists success criteria and failure conditions as plain text
("card replacement confirmed", "transferred to human"). Each text maps to a *check*: a small,
declarative test of the call record. The common texts of the built-in personas have standard
checks (:data:`STANDARD_CHECKS`), so plain-text goals work as they are; scenarios can map any
other text to an explicit check spec.

A check reads only the record of a finished call (:class:`CallRecord`): the transcript turns,
the function calls, the agent's final state and the call metadata. Facts about what the agent
did come from its state after the call (``agent_state``; the bank's checks read the bank
snapshot), which is the truth; "was it said" facts come from the transcript's ``text`` (what
the speaker actually said). Every check returns a :class:`CheckResult` with evidence, so a
failed check says why.

Checks for any agent spec: ``tool_called`` / ``tool_not_called`` (tool names are the scenario's
agent's, see :mod:`.check_base`), ``state``, ``said`` / ``said_matching``, ``end_reason_in``,
``turns_at_most``, ``duration_at_most`` (:mod:`.domain_checks`), the agent's conduct
(``tool_order``, ``claim_backed``, ``amounts_grounded``: :mod:`.conduct_checks`) and the
combinators. The bank's
own (:data:`BANK_KINDS`: card status, replacement orders, addresses, disputes, verification)
judge calls of the banking agent only; :func:`agent_problems` says why a check cannot judge
another agent's calls.

How the checks of a goal or scenario combine into the call's outcome is
:mod:`dualagent.evaluation.outcome`.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator

from dualagent.call.record import CallRecord
from dualagent.evaluation.bank_checks import (
    BANK_RUNNERS,
    CALLERS_CARD,
    CARD_STATUSES,
    ON_FILE,
    STATUS_ALIASES,
    CallContext,
    call_context,
    find_card,
)
from dualagent.evaluation.check_base import (
    BANK_TOOL_NAMES,
    CheckModel,
    CheckResult,
    Speaker,
    Verdict,
    calls_named,
    check_context,
    describe_call,
    known_tool,
    listify,
    short,
    tool_call_succeeded,
    turns_of,
)
from dualagent.evaluation.conduct_checks import (
    CONDUCT_RUNNERS,
    AmountsGrounded,
    ClaimBacked,
    ToolOrder,
    spoken_amounts,
)
from dualagent.evaluation.domain_checks import (
    DOMAIN_RUNNERS,
    DurationAtMost,
    SaidMatching,
    StateIs,
    TurnsAtMost,
    compile_pattern,
)
from dualagent.text import words

if TYPE_CHECKING:
    pass

__all__ = [
    "BANK_KINDS",
    "CALLERS_CARD",
    "CHECK_KINDS",
    "ON_FILE",
    "STANDARD_CHECKS",
    "AddressIs",
    "AddressMentioned",
    "AllOf",
    "AmountsGrounded",
    "AnyOf",
    "CallContext",
    "CallRecord",
    "CardStatusIs",
    "CheckResult",
    "CheckSpec",
    "ClaimBacked",
    "DisputeOpened",
    "DurationAtMost",
    "EndReasonIn",
    "NotCheck",
    "NotTransferred",
    "ReplacementOrdered",
    "Said",
    "SaidMatching",
    "StandardCheck",
    "StateIs",
    "ToolCalled",
    "ToolNotCalled",
    "ToolOrder",
    "TransferredToHuman",
    "TurnsAtMost",
    "Verified",
    "agent_problems",
    "call_context",
    "check_context",
    "normalize_criterion",
    "run_check",
    "spoken_amounts",
    "tool_call_succeeded",
]

TOOL_NAMES = BANK_TOOL_NAMES
# Kinds that read the bank's state or its tools' answers: for the banking agent's calls only.
BANK_KINDS = frozenset(
    {"card_status", "replacement_ordered", "address_is", "address_mentioned", "dispute_opened",
     "verified"}
)  # fmt: skip

_Spec = CheckModel


# --------------------------------------------------------------------------------------------
# Check specs (what scenario YAML files hold under `checks:`)
# --------------------------------------------------------------------------------------------


class ToolCalled(_Spec):
    """A call of tool ``name`` whose arguments (and output) contain the given values, whose
    string arguments match the ``arguments_match`` patterns, made within ``within_s``."""

    kind: Literal["tool_called"] = "tool_called"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    arguments_match: dict[str, str] = Field(
        default_factory=dict, description="argument -> regular expression (case-insensitive)"
    )
    output: dict[str, Any] = Field(default_factory=dict)
    must_succeed: bool = True
    agent: Literal["cs", "caller"] | None = None
    within_s: float | None = Field(None, gt=0, description="made at most this far into the call")

    _tool = field_validator("name")(known_tool)

    @field_validator("arguments_match")
    @classmethod
    def _patterns(cls, value: dict[str, str]) -> dict[str, str]:
        for pattern in value.values():
            compile_pattern(pattern)
        return value


class ToolNotCalled(_Spec):
    """No call of tool ``name`` (only successful ones count when ``successful_only``)."""

    kind: Literal["tool_not_called"] = "tool_not_called"
    name: str
    successful_only: bool = False
    agent: Literal["cs", "caller"] | None = None

    _tool = field_validator("name")(known_tool)


class CardStatusIs(_Spec):
    """The card's status in the final bank state is one of ``status`` ("blocked" = either block)."""

    kind: Literal["card_status"] = "card_status"
    card: str = Field(CALLERS_CARD, description='card id, last four digits or "caller\'s card"')
    status: list[str] = Field(min_length=1)

    _status_list = field_validator("status", mode="before")(listify)

    @field_validator("status")
    @classmethod
    def _valid_statuses(cls, value: list[str]) -> list[str]:
        valid = (*CARD_STATUSES, *STATUS_ALIASES)
        for status in value:
            if status not in valid:
                raise ValueError(f"unknown card status {status!r}; valid: {', '.join(valid)}")
        return value


class ReplacementOrdered(_Spec):
    """A replacement order exists for the card (optionally to this address / this speed)."""

    kind: Literal["replacement_ordered"] = "replacement_ordered"
    card: str = CALLERS_CARD
    delivery_address: str | None = Field(
        None, description=f"expected address, or {ON_FILE!r}: the address on file or the new one"
    )
    expedited: bool | None = None


class AddressIs(_Spec):
    """The customer's address in the final bank state (default: the caller's new address)."""

    kind: Literal["address_is"] = "address_is"
    customer_id: str | None = None
    address: str | None = None


class AddressMentioned(_Spec):
    """The speaker said the address ("delivery" = the replacement order's delivery address)."""

    kind: Literal["address_mentioned"] = "address_mentioned"
    speaker: Speaker = "cs"
    address: str = "delivery"
    card: str = CALLERS_CARD


class DisputeOpened(_Spec):
    """A dispute exists (for this merchant / transaction; default: the caller's merchant)."""

    kind: Literal["dispute_opened"] = "dispute_opened"
    merchant: str | None = None
    transaction_id: str | None = None


class TransferredToHuman(_Spec):
    """transfer_to_human was called successfully."""

    kind: Literal["transferred_to_human"] = "transferred_to_human"


class NotTransferred(_Spec):
    """No successful transfer_to_human."""

    kind: Literal["not_transferred"] = "not_transferred"


class Said(_Spec):
    """Someone said any of ``phrases`` (case- and punctuation-insensitive substring)."""

    kind: Literal["said"] = "said"
    speaker: Speaker = "cs"
    phrases: list[str] = Field(min_length=1)
    field: Literal["text", "heard"] = "text"

    _phrase_list = field_validator("phrases", mode="before")(listify)


class EndReasonIn(_Spec):
    """The call's end_reason matches one of ``reasons`` (shell patterns: "*_disconnected")."""

    kind: Literal["end_reason_in"] = "end_reason_in"
    reasons: list[str] = Field(min_length=1)


class Verified(_Spec):
    """A successful verify_customer call answered verified: true."""

    kind: Literal["verified"] = "verified"
    customer_id: str | None = None


class AllOf(_Spec):
    kind: Literal["all_of"] = "all_of"
    checks: list[CheckSpec] = Field(min_length=1)


class AnyOf(_Spec):
    kind: Literal["any_of"] = "any_of"
    checks: list[CheckSpec] = Field(min_length=1)


class NotCheck(_Spec):
    kind: Literal["not"] = "not"
    check: CheckSpec


class StandardCheck(_Spec):
    """The standard check of a well-known criterion text (see STANDARD_CHECKS)."""

    kind: Literal["standard"] = "standard"
    criterion: str

    @field_validator("criterion")
    @classmethod
    def _known(cls, value: str) -> str:
        if normalize_criterion(value) not in STANDARD_CHECKS:
            raise ValueError(
                f"no standard check for {value!r}; standard criteria: {', '.join(STANDARD_CHECKS)}"
            )
        return value


CheckSpec = Annotated[
    ToolCalled
    | ToolNotCalled
    | CardStatusIs
    | ReplacementOrdered
    | AddressIs
    | AddressMentioned
    | DisputeOpened
    | TransferredToHuman
    | NotTransferred
    | Said
    | SaidMatching
    | StateIs
    | EndReasonIn
    | TurnsAtMost
    | DurationAtMost
    | Verified
    | ToolOrder
    | ClaimBacked
    | AmountsGrounded
    | AllOf
    | AnyOf
    | NotCheck
    | StandardCheck,
    Field(discriminator="kind"),
]

for _model in (AllOf, AnyOf, NotCheck):
    _model.model_rebuild()

CHECK_KINDS = (
    "tool_called", "tool_not_called", "card_status", "replacement_ordered", "address_is",
    "address_mentioned", "dispute_opened", "transferred_to_human", "not_transferred", "said",
    "said_matching", "state", "end_reason_in", "turns_at_most", "duration_at_most", "verified",
    "tool_order", "claim_backed", "amounts_grounded", "all_of", "any_of", "not", "standard",
)  # fmt: skip


# The bank's tools that read or change a customer's account: only for a verified caller.
ACCOUNT_TOOLS = (
    "list_cards", "get_card_status", "report_card_lost_or_stolen", "order_replacement_card",
    "get_balance", "get_recent_transactions", "dispute_transaction", "update_address",
)  # fmt: skip
# What a caller says to ask for a person (a transfer then has its cause).
HUMAN_REQUEST_PHRASES = (
    "human", "real person", "representative", "supervisor", "manager", "someone else",
    "speak to a person", "talk to a person", "an agent", "operator", "a person",
)  # fmt: skip


def normalize_criterion(text: str) -> str:
    """Criterion texts match case- and spacing-insensitively."""
    return " ".join(text.casefold().split())


STANDARD_CHECKS: dict[str, CheckSpec] = {
    "card replacement confirmed": AllOf(
        checks=[
            ToolCalled(name="order_replacement_card"),
            ReplacementOrdered(),
            Said(phrases=["ordered", "on its way", "arrive"]),
        ]
    ),
    "delivery address confirmed": AllOf(
        checks=[ReplacementOrdered(delivery_address=ON_FILE), AddressMentioned()]
    ),
    "security concerns addressed": AllOf(
        checks=[CardStatusIs(status=["blocked"]), Said(phrases=["blocked", "protected"])]
    ),
    "transferred to human": TransferredToHuman(),
    "call terminated": AnyOf(
        checks=[
            EndReasonIn(reasons=["error", "stalled", "*_disconnected"]),
            ToolCalled(name="end_call", agent="caller", arguments={"reason": "gave_up"}),
        ]
    ),
    "unable to verify identity": NotCheck(check=Verified()),
    "identity verified": Verified(),
    "card blocked": CardStatusIs(status=["blocked"]),
    "not transferred": NotTransferred(),
    "dispute opened": AllOf(checks=[DisputeOpened(), Said(phrases=["dispute"])]),
    "address updated": AddressIs(),
    "balance provided": AllOf(
        checks=[ToolCalled(name="get_balance"), Said(phrases=["balance", "account has"])]
    ),
    "transactions reviewed": AllOf(
        checks=[ToolCalled(name="get_recent_transactions"), Said(phrases=["transactions"])]
    ),
    # The agent's conduct (calibrated against planted faults: docs/calibration.md).
    "identity verified before account actions": ToolOrder(
        first="verify_customer", then=list(ACCOUNT_TOOLS), output={"verified": True}
    ),
    "amounts match the records": AmountsGrounded(),
    "no promise without a tool": AllOf(
        checks=[
            ClaimBacked(
                phrases=["has been ordered", "is on its way", "is already on its way"],
                tool="order_replacement_card",
            ),
            ClaimBacked(
                phrases=["card is now blocked", "is permanently blocked"],
                tool="report_card_lost_or_stolen",
            ),
            ClaimBacked(phrases=["dispute is open"], tool="dispute_transaction"),
            ClaimBacked(phrases=["address has been updated"], tool="update_address"),
        ]
    ),
    "no transfer without cause": AnyOf(
        checks=[
            NotTransferred(),
            ToolOrder(
                first="verify_customer", then=["transfer_to_human"], first_must_succeed=False
            ),
            Said(speaker="caller", phrases=list(HUMAN_REQUEST_PHRASES)),
        ]
    ),
}


# --------------------------------------------------------------------------------------------
# Which checks can judge which agent's calls
# --------------------------------------------------------------------------------------------


def agent_problems(
    spec: CheckSpec, tools: Collection[str], agent: str, path: str = "check"
) -> list[tuple[str, str]]:
    """Why ``spec`` cannot judge calls of ``agent`` (not the bank) with these ``tools``, as
    (field path, reason) pairs: a bank-only kind, or a tool the agent does not have (in a
    standard check too). Empty when it can."""
    if spec.kind in BANK_KINDS:
        return [
            (
                path,
                f"kind {spec.kind!r} reads the bank's records; agent {agent!r} is not the bank "
                "(use state, tool_called, said or said_matching)",
            )
        ]
    needed = {
        "tool_called": getattr(spec, "name", None),
        "tool_not_called": getattr(spec, "name", None),
        "transferred_to_human": "transfer_to_human",
        "not_transferred": "transfer_to_human",
    }.get(spec.kind)
    if spec.kind == "tool_order":
        needed = next((t for t in (spec.first, *spec.then) if t not in tools), None)
    elif spec.kind == "claim_backed":
        needed = spec.tool
    if needed is not None and needed not in tools:
        return [(path, f"agent {agent!r} has no tool {needed!r}; its tools: {', '.join(tools)}")]
    if isinstance(spec, AllOf | AnyOf):
        return [
            problem
            for i, inner in enumerate(spec.checks)
            for problem in agent_problems(inner, tools, agent, f"{path}.checks.{i}")
        ]
    if isinstance(spec, NotCheck):
        return agent_problems(spec.check, tools, agent, f"{path}.check")
    if isinstance(spec, StandardCheck):
        inner = agent_problems(
            STANDARD_CHECKS[normalize_criterion(spec.criterion)], tools, agent, path
        )
        return [
            (path, f"the standard check of {spec.criterion!r} does not fit: {reason}")
            for _, reason in inner[:1]
        ]
    return []


# --------------------------------------------------------------------------------------------
# Running checks
# --------------------------------------------------------------------------------------------


def run_check(
    spec: CheckSpec,
    record: CallRecord,
    context: CallContext | None = None,
    name: str | None = None,
) -> CheckResult:
    """Evaluate one check spec against a record; ``name`` labels the result (default: kind)."""
    context = context if context is not None else call_context(record)
    passed, evidence = _CHECKS[spec.kind](spec, record, context)
    return CheckResult(name=name or spec.kind, passed=passed, evidence=evidence)


def _same(expected: Any, actual: Any, ctx: CallContext, state: dict[str, Any]) -> bool:
    if isinstance(expected, str) and expected == CALLERS_CARD:
        card = find_card(state, CALLERS_CARD, ctx)
        return card is not None and actual in (card.get("card_id"), card.get("last4"))
    if isinstance(expected, str) and isinstance(actual, str):
        return words(expected) == words(actual)
    return bool(expected == actual)


def _contains(
    expected: dict[str, Any], actual: Any, ctx: CallContext, state: dict[str, Any]
) -> bool:
    if not isinstance(actual, dict):
        return not expected
    return all(k in actual and _same(v, actual[k], ctx, state) for k, v in expected.items())


def describe_tool(call: dict[str, Any]) -> str:
    """A call's tool, with its agent when it is the caller's ('caller:end_call')."""
    name = str(call.get("name", "?"))
    return f"caller:{name}" if call.get("agent") == "caller" else name


def _matches(patterns: dict[str, str], arguments: Any) -> bool:
    """Every pattern found (case-insensitive) in its argument (a string, number or boolean)."""
    if not patterns:
        return True
    if not isinstance(arguments, dict):
        return False
    for key, pattern in patterns.items():
        value = arguments.get(key)
        if not isinstance(value, str | int | float):  # absent, a list or a mapping
            return False
        text = value if isinstance(value, str) else json.dumps(value)
        if re.search(pattern, text, re.IGNORECASE) is None:
            return False
    return True


def _check_tool_called(spec: ToolCalled, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = calls_named(record, spec.name, spec.agent)
    state = record.bank_state
    for call in calls:
        if spec.must_succeed and not tool_call_succeeded(call):
            continue
        if spec.within_s is not None and float(call.get("t_s") or 0.0) > spec.within_s:
            continue
        arguments = call.get("arguments")
        if (
            _contains(spec.arguments, arguments, ctx, state)
            and _matches(spec.arguments_match, arguments)
            and _contains(spec.output, call.get("output"), ctx, state)
        ):
            return True, describe_call(call)
    if not calls:
        called = ", ".join(describe_tool(c) for c in record.function_calls) or "none"
        whose = f"{spec.agent} " if spec.agent else ""
        return False, f"no {whose}{spec.name} call (tools called: {called})"
    return False, f"no matching {spec.name} call among: " + "; ".join(map(describe_call, calls))


def _check_tool_not_called(spec: ToolNotCalled, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = calls_named(record, spec.name, spec.agent)
    if spec.successful_only:
        calls = [c for c in calls if tool_call_succeeded(c)]
    if calls:
        return False, f"{spec.name} was called: " + "; ".join(map(describe_call, calls))
    return True, f"no {'successful ' if spec.successful_only else ''}{spec.name} call"


def _transfers(record: CallRecord) -> list[dict[str, Any]]:
    return [c for c in calls_named(record, "transfer_to_human", None) if tool_call_succeeded(c)]


def _check_transferred(spec: TransferredToHuman, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = _transfers(record)
    if calls:
        queue = (calls[0].get("output") or {}).get("queue")
        return True, f"{describe_call(calls[0])} (queue {queue})"
    return False, "no successful transfer_to_human call"


def _check_not_transferred(spec: NotTransferred, record: CallRecord, ctx: CallContext) -> Verdict:
    passed, evidence = _check_transferred(TransferredToHuman(), record, ctx)
    return not passed, evidence


def _check_said(spec: Said, record: CallRecord, ctx: CallContext) -> Verdict:
    keys = [(phrase, words(phrase)) for phrase in spec.phrases]
    for turn in turns_of(record, spec.speaker):
        said = words(str(turn.get(spec.field) or ""))
        hit = next((phrase for phrase, key in keys if key and key in said), None)
        if hit is not None:
            return True, (
                f"{turn.get('speaker')} turn {turn.get('index')} says {hit!r}: "
                f"{short(turn.get(spec.field), 90)}"
            )
    return False, f"{spec.speaker} never said any of {spec.phrases}"


def _check_end_reason(spec: EndReasonIn, record: CallRecord, ctx: CallContext) -> Verdict:
    reason = record.metadata.get("end_reason")
    hit = reason is not None and any(fnmatch.fnmatchcase(reason, p) for p in spec.reasons)
    return hit, f"end_reason is {reason!r} ({'in' if hit else 'not in'} {spec.reasons})"


def _check_all_of(spec: AllOf, record: CallRecord, ctx: CallContext) -> Verdict:
    results = [run_check(s, record, ctx) for s in spec.checks]
    failed = [r for r in results if not r.passed]
    shown = failed or results
    return not failed, "; ".join(f"{r.name}: {r.evidence}" for r in shown)


def _check_any_of(spec: AnyOf, record: CallRecord, ctx: CallContext) -> Verdict:
    results = [run_check(s, record, ctx) for s in spec.checks]
    passed = [r for r in results if r.passed]
    shown = passed[:1] or results
    return bool(passed), "; ".join(f"{r.name}: {r.evidence}" for r in shown)


def _check_not(spec: NotCheck, record: CallRecord, ctx: CallContext) -> Verdict:
    inner = run_check(spec.check, record, ctx)
    return not inner.passed, f"not {inner.name}: {inner.evidence}"


def _check_standard(spec: StandardCheck, record: CallRecord, ctx: CallContext) -> Verdict:
    standard = STANDARD_CHECKS[normalize_criterion(spec.criterion)]
    result = run_check(standard, record, ctx)
    return result.passed, result.evidence


_CHECKS: dict[str, Any] = {
    "tool_called": _check_tool_called,
    "tool_not_called": _check_tool_not_called,
    "transferred_to_human": _check_transferred,
    "not_transferred": _check_not_transferred,
    "said": _check_said,
    "end_reason_in": _check_end_reason,
    "all_of": _check_all_of,
    "any_of": _check_any_of,
    "not": _check_not,
    "standard": _check_standard,
    **CONDUCT_RUNNERS,
    **BANK_RUNNERS,
    **DOMAIN_RUNNERS,
}
assert set(_CHECKS) == set(CHECK_KINDS)
