"""The check language: declarative tests of a recorded call, and how each one runs.

A persona's goal (or a scenario) lists success criteria and failure conditions as plain text
("card replacement confirmed", "transferred to human"). Each text maps to a *check*: a small,
declarative test of the call record. The common texts of the built-in personas have standard
checks (:data:`STANDARD_CHECKS`), so plain-text goals work as they are; scenarios can map any
other text to an explicit check spec.

A check reads only the record of a finished call (:class:`CallRecord`): the transcript turns,
the function calls, the final bank snapshot and the call metadata. Bank facts (card status,
replacement orders, disputes, addresses) come from the bank snapshot, which is the truth about
what the agent did; "was it said" facts come from the transcript's ``text`` (what the speaker
actually said). Every check returns a :class:`CheckResult` with evidence, so a failed check
says why.

How the checks of a goal or scenario combine into the call's outcome is
:mod:`dualagent.evaluation.outcome`.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from dualagent import bank
from dualagent.call.record import CallRecord
from dualagent.text import NUMBER_VALUES, words

if TYPE_CHECKING:
    from dualagent.scenarios import Scenario

__all__ = [
    "CALLERS_CARD",
    "CHECK_KINDS",
    "ON_FILE",
    "STANDARD_CHECKS",
    "AddressIs",
    "AddressMentioned",
    "AllOf",
    "AnyOf",
    "CallContext",
    "CallRecord",
    "CardStatusIs",
    "CheckResult",
    "CheckSpec",
    "DisputeOpened",
    "EndReasonIn",
    "NotCheck",
    "NotTransferred",
    "ReplacementOrdered",
    "Said",
    "StandardCheck",
    "ToolCalled",
    "ToolNotCalled",
    "TransferredToHuman",
    "Verified",
    "call_context",
    "normalize_criterion",
    "run_check",
    "tool_call_succeeded",
]

CALLERS_CARD = "caller's card"
# As a delivery address: the address on file at the end of the call, or the caller's new one.
ON_FILE = "on_file"
CARD_STATUSES: tuple[str, ...] = get_args(bank.CardStatus)
STATUS_ALIASES: dict[str, tuple[str, ...]] = {"blocked": bank.BLOCKED_STATUSES}
TOOL_NAMES = tuple(dict.fromkeys(t["name"] for t in bank.CS_TOOLS + bank.CALLER_TOOLS))

Speaker = Literal["cs", "caller", "any"]


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


class CheckResult(BaseModel):
    """One check's verdict: ``passed`` = the check's condition holds."""

    name: str
    passed: bool
    evidence: str


# --------------------------------------------------------------------------------------------
# Check specs (what scenario YAML files hold under `checks:`)
# --------------------------------------------------------------------------------------------


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _known_tool(name: str) -> str:
    if name not in TOOL_NAMES:
        raise ValueError(f"unknown tool {name!r}; valid tools: {', '.join(TOOL_NAMES)}")
    return name


def _listify(value: Any) -> Any:
    """A single string where a list is expected is a list of one."""
    return [value] if isinstance(value, str) else value


class ToolCalled(_Spec):
    """A call of tool ``name`` whose arguments (and output) contain the given values."""

    kind: Literal["tool_called"] = "tool_called"
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    output: dict[str, Any] = Field(default_factory=dict)
    must_succeed: bool = True
    agent: Literal["cs", "caller"] | None = None

    _tool = field_validator("name")(_known_tool)


class ToolNotCalled(_Spec):
    """No call of tool ``name`` (only successful ones count when ``successful_only``)."""

    kind: Literal["tool_not_called"] = "tool_not_called"
    name: str
    successful_only: bool = False
    agent: Literal["cs", "caller"] | None = None

    _tool = field_validator("name")(_known_tool)


class CardStatusIs(_Spec):
    """The card's status in the final bank state is one of ``status`` ("blocked" = either block)."""

    kind: Literal["card_status"] = "card_status"
    card: str = Field(CALLERS_CARD, description='card id, last four digits or "caller\'s card"')
    status: list[str] = Field(min_length=1)

    _status_list = field_validator("status", mode="before")(_listify)

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

    _phrase_list = field_validator("phrases", mode="before")(_listify)


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
    | EndReasonIn
    | Verified
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
    "end_reason_in", "verified", "all_of", "any_of", "not", "standard",
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
}


# --------------------------------------------------------------------------------------------
# Who the caller is, in this record
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallContext:
    """The caller's identity in the bank data, and what they came with."""

    intent: str | None = None
    customer_id: str | None = None
    card_id: str | None = None
    new_address: str | None = None
    disputed_merchant: str | None = None


def call_context(record: CallRecord, scenario: Scenario | None = None) -> CallContext:
    """Resolve the caller's customer and card in the record's bank state.

    Facts come from the scenario when given, else from ``metadata["scenario"]`` (what
    ``simulate`` records); the customer is matched by id, then by full name, then the first.
    """
    meta_scenario = record.metadata.get("scenario") or {}
    facts: dict[str, Any] = dict(meta_scenario.get("customer") or {})
    facts.setdefault("customer_id", meta_scenario.get("customer_id"))
    intent = meta_scenario.get("intent")
    if scenario is not None:
        facts = {**facts, **scenario.caller_facts().as_dict()}
        facts["customer_id"] = scenario.customer_id()
        intent = scenario.intent
    customer = _find_customer(record.bank_state, facts)
    customer_id = customer.get("customer_id") if customer else facts.get("customer_id")
    card = _find_original_card(record.bank_state, customer_id, facts)
    return CallContext(
        intent=intent,
        customer_id=customer_id,
        card_id=card.get("card_id") if card else None,
        new_address=facts.get("new_address"),
        disputed_merchant=facts.get("disputed_merchant"),
    )


def _find_customer(state: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any] | None:
    customers = state.get("customers") or []
    by_id = [c for c in customers if c.get("customer_id") == facts.get("customer_id")]
    name = words(str(facts.get("full_name", "")))
    by_name = [c for c in customers if name and words(str(c.get("full_name", ""))) == name]
    return next(iter(by_id + by_name + customers), None)


def _find_original_card(
    state: dict[str, Any], customer_id: str | None, facts: dict[str, Any]
) -> dict[str, Any] | None:
    new_ids = {o.get("new_card_id") for o in state.get("replacement_orders") or []}
    cards = [
        c
        for c in state.get("cards") or []
        if c.get("customer_id") == customer_id and c.get("card_id") not in new_ids
    ]
    by_last4 = [
        c for c in cards if facts.get("card_last4") and c.get("last4") == facts["card_last4"]
    ]
    by_product = [c for c in cards if c.get("product") == facts.get("card_product")]
    return next(iter(by_last4 + by_product + cards), None)


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


Verdict = tuple[bool, str]


def tool_call_succeeded(call: dict[str, Any]) -> bool:
    """A recorded function call succeeded: neither the call nor its output says ``ok: false``."""
    output = call.get("output")
    output_ok = not isinstance(output, dict) or output.get("ok", True) is not False
    return call.get("ok", True) is not False and output_ok


def _same(expected: Any, actual: Any, ctx: CallContext, state: dict[str, Any]) -> bool:
    if isinstance(expected, str) and expected == CALLERS_CARD:
        card = _card(state, CALLERS_CARD, ctx)
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


def _calls_named(record: CallRecord, name: str, agent: str | None) -> list[dict[str, Any]]:
    return [
        c
        for c in record.function_calls
        if c.get("name") == name and agent in (None, c.get("agent"))
    ]


def _describe_call(call: dict[str, Any]) -> str:
    status = "ok" if tool_call_succeeded(call) else "failed"
    return f"{call.get('agent', '?')}:{call.get('name')}({_short(call.get('arguments'))}) {status} at t={call.get('t_s')}s"


def _check_tool_called(spec: ToolCalled, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = _calls_named(record, spec.name, spec.agent)
    state = record.bank_state
    for call in calls:
        if spec.must_succeed and not tool_call_succeeded(call):
            continue
        if _contains(spec.arguments, call.get("arguments"), ctx, state) and _contains(
            spec.output, call.get("output"), ctx, state
        ):
            return True, _describe_call(call)
    if not calls:
        called = ", ".join(c.get("name", "?") for c in record.function_calls) or "none"
        return False, f"no {spec.name} call (tools called: {called})"
    return False, f"no matching {spec.name} call among: " + "; ".join(map(_describe_call, calls))


def _check_tool_not_called(spec: ToolNotCalled, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = _calls_named(record, spec.name, spec.agent)
    if spec.successful_only:
        calls = [c for c in calls if tool_call_succeeded(c)]
    if calls:
        return False, f"{spec.name} was called: " + "; ".join(map(_describe_call, calls))
    return True, f"no {'successful ' if spec.successful_only else ''}{spec.name} call"


def _card(state: dict[str, Any], ref: str, ctx: CallContext) -> dict[str, Any] | None:
    cards = state.get("cards") or []
    if words(ref) in (words(CALLERS_CARD), "caller", "callers card"):
        return next((c for c in cards if c.get("card_id") == ctx.card_id), None)
    exact = [c for c in cards if c.get("card_id") == ref]
    own = [c for c in cards if c.get("last4") == ref and c.get("customer_id") == ctx.customer_id]
    return next(iter(exact + own + [c for c in cards if c.get("last4") == ref]), None)


def _no_card(ref: str, ctx: CallContext) -> str:
    if words(ref) in (words(CALLERS_CARD), "caller", "callers card"):
        return f"the caller's card is not in the bank state (customer {ctx.customer_id})"
    return f"card {ref!r} is not in the bank state"


def _check_card_status(spec: CardStatusIs, record: CallRecord, ctx: CallContext) -> Verdict:
    card = _card(record.bank_state, spec.card, ctx)
    if card is None:
        return False, _no_card(spec.card, ctx)
    wanted = {s for status in spec.status for s in STATUS_ALIASES.get(status, (status,))}
    status = card.get("status")
    verb = "is" if status in wanted else "is not"
    return status in wanted, f"{card.get('card_id')} is {status} ({verb} {'/'.join(spec.status)})"


def _orders_for(state: dict[str, Any], card_id: str | None) -> list[dict[str, Any]]:
    return [o for o in state.get("replacement_orders") or [] if o.get("card_id") == card_id]


def _customer_address(state: dict[str, Any], customer_id: str | None) -> str | None:
    customer = next(
        (c for c in state.get("customers") or [] if c.get("customer_id") == customer_id), None
    )
    return customer.get("address") if customer else None


def _check_replacement_ordered(
    spec: ReplacementOrdered, record: CallRecord, ctx: CallContext
) -> Verdict:
    state = record.bank_state
    card = _card(state, spec.card, ctx)
    if card is None:
        return False, _no_card(spec.card, ctx)
    orders = _orders_for(state, card.get("card_id"))
    if not orders:
        others = [o.get("card_id") for o in state.get("replacement_orders") or []]
        return (
            False,
            f"no replacement order for {card.get('card_id')} (orders for: {others or 'none'})",
        )
    order = orders[0]  # the bank refuses a second replacement for the same card
    where = f"order {order.get('order_id')} for {order.get('card_id')} to {order.get('delivery_address')!r}"
    expected = _expected_delivery(spec.delivery_address, state, ctx)
    if expected and _address_key(order.get("delivery_address", "")) not in expected:
        return False, f"{where}; expected {' or '.join(sorted(map(repr, expected)))}"
    if spec.expedited is not None and bool(order.get("expedited")) != spec.expedited:
        return False, f"{where}; expedited={order.get('expedited')}, expected {spec.expedited}"
    return True, where


def _expected_delivery(
    address: str | None, state: dict[str, Any], ctx: CallContext
) -> set[str] | None:
    if address is None:
        return None
    if address != ON_FILE:
        return {_address_key(address)}
    candidates = [_customer_address(state, ctx.customer_id), ctx.new_address]
    return {_address_key(a) for a in candidates if a}


def _check_address_is(spec: AddressIs, record: CallRecord, ctx: CallContext) -> Verdict:
    customer_id = spec.customer_id or ctx.customer_id
    expected = spec.address or ctx.new_address
    actual = _customer_address(record.bank_state, customer_id)
    if actual is None:
        return False, f"customer {customer_id} is not in the bank state"
    if not expected:
        return False, "no expected address (give `address`, or set the caller's new_address)"
    same = _address_key(actual) == _address_key(expected)
    return same, f"address of {customer_id} is {actual!r} (expected {expected!r})"


def _check_address_mentioned(
    spec: AddressMentioned, record: CallRecord, ctx: CallContext
) -> Verdict:
    address: str | None = spec.address
    if spec.address == "delivery":
        card = _card(record.bank_state, spec.card, ctx)
        orders = _orders_for(record.bank_state, card.get("card_id") if card else None)
        if not orders:
            return False, "no replacement order, so no delivery address to mention"
        address = orders[0].get("delivery_address")
    street = _address_key(str(address).split(",")[0])
    for turn in _turns_of(record, spec.speaker):
        if street and f" {street} " in f" {_address_key(str(turn.get('text') or ''))} ":
            return True, f"{turn.get('speaker')} turn {turn.get('index')} mentions {address!r}"
    return False, f"{spec.speaker} never mentioned {address!r}"


def _check_dispute_opened(spec: DisputeOpened, record: CallRecord, ctx: CallContext) -> Verdict:
    disputes = record.bank_state.get("disputes") or []
    merchant = spec.merchant or (None if spec.transaction_id else ctx.disputed_merchant)
    for dispute in disputes:
        if spec.transaction_id and dispute.get("transaction_id") != spec.transaction_id:
            continue
        if merchant and words(merchant) not in words(str(dispute.get("merchant", ""))):
            continue
        return True, (
            f"dispute {dispute.get('dispute_id')} on {dispute.get('transaction_id')} "
            f"({dispute.get('merchant')}, {dispute.get('amount')})"
        )
    wanted = spec.transaction_id or merchant or "any transaction"
    found = [f"{d.get('transaction_id')} ({d.get('merchant')})" for d in disputes] or ["none"]
    return False, f"no dispute for {wanted} (disputes: {', '.join(found)})"


def _transfers(record: CallRecord) -> list[dict[str, Any]]:
    return [c for c in _calls_named(record, "transfer_to_human", None) if tool_call_succeeded(c)]


def _check_transferred(spec: TransferredToHuman, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = _transfers(record)
    if calls:
        queue = (calls[0].get("output") or {}).get("queue")
        return True, f"{_describe_call(calls[0])} (queue {queue})"
    return False, "no successful transfer_to_human call"


def _check_not_transferred(spec: NotTransferred, record: CallRecord, ctx: CallContext) -> Verdict:
    passed, evidence = _check_transferred(TransferredToHuman(), record, ctx)
    return not passed, evidence


def _turns_of(record: CallRecord, speaker: str) -> list[dict[str, Any]]:
    return [t for t in record.turns if speaker == "any" or t.get("speaker") == speaker]


def _check_said(spec: Said, record: CallRecord, ctx: CallContext) -> Verdict:
    keys = [(phrase, words(phrase)) for phrase in spec.phrases]
    for turn in _turns_of(record, spec.speaker):
        said = words(str(turn.get(spec.field) or ""))
        hit = next((phrase for phrase, key in keys if key and key in said), None)
        if hit is not None:
            return True, (
                f"{turn.get('speaker')} turn {turn.get('index')} says {hit!r}: "
                f"{_short(turn.get(spec.field), 90)}"
            )
    return False, f"{spec.speaker} never said any of {spec.phrases}"


def _check_end_reason(spec: EndReasonIn, record: CallRecord, ctx: CallContext) -> Verdict:
    reason = record.metadata.get("end_reason")
    hit = reason is not None and any(fnmatch.fnmatchcase(reason, p) for p in spec.reasons)
    return hit, f"end_reason is {reason!r} ({'in' if hit else 'not in'} {spec.reasons})"


def _check_verified(spec: Verified, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = _calls_named(record, "verify_customer", "cs")
    for call in calls:
        output = call.get("output") or {}
        if not (tool_call_succeeded(call) and output.get("verified") is True):
            continue
        if spec.customer_id and output.get("customer_id") != spec.customer_id:
            continue
        return True, f"verified as {output.get('customer_id')} at t={call.get('t_s')}s"
    tried = len(calls)
    return False, f"not verified ({tried} verify_customer attempt{'s' if tried != 1 else ''})"


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
    "card_status": _check_card_status,
    "replacement_ordered": _check_replacement_ordered,
    "address_is": _check_address_is,
    "address_mentioned": _check_address_mentioned,
    "dispute_opened": _check_dispute_opened,
    "transferred_to_human": _check_transferred,
    "not_transferred": _check_not_transferred,
    "said": _check_said,
    "end_reason_in": _check_end_reason,
    "verified": _check_verified,
    "all_of": _check_all_of,
    "any_of": _check_any_of,
    "not": _check_not,
    "standard": _check_standard,
}
assert set(_CHECKS) == set(CHECK_KINDS)


# --------------------------------------------------------------------------------------------
# Text normalisation
# --------------------------------------------------------------------------------------------

_STREET_WORDS = {"st": "street", "rd": "road", "ave": "avenue", "av": "avenue", "dr": "drive",
                 "ln": "lane", "blvd": "boulevard", "apt": "apartment"}  # fmt: skip


def _address_key(address: str) -> str:
    """Addresses compare by words, with spoken numbers as digits and street abbreviations spelled."""
    out: list[str] = []
    for token in words(address).split():
        token = _STREET_WORDS.get(token, token)
        value = NUMBER_VALUES.get(token)
        if value is not None and out and out[-1].isdigit():
            previous = int(out[-1])
            if previous % 10 == 0 and 20 <= previous <= 90 and value < 10:
                out[-1] = str(previous + value)  # "forty eight" -> 48
            else:
                out[-1] += str(value)  # "one two" -> 12
            continue
        out.append(str(value) if value is not None else token)
    return " ".join(out)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
