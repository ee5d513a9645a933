"""The bank's own checks: the caller's card, replacement orders, addresses, disputes and
verification, read from the final bank snapshot (``bank_state``), and who the caller is there.

They judge calls of the banking agent only (the kinds in
:data:`dualagent.evaluation.checks.BANK_KINDS`); the check language and its other kinds are in
:mod:`dualagent.evaluation.checks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, get_args

from dualagent import bank
from dualagent.call.record import CallRecord
from dualagent.evaluation.check_base import Verdict, calls_named, tool_call_succeeded, turns_of
from dualagent.text import NUMBER_VALUES, words

if TYPE_CHECKING:
    from dualagent.evaluation.checks import (
        AddressIs,
        AddressMentioned,
        CardStatusIs,
        DisputeOpened,
        ReplacementOrdered,
        Verified,
    )
    from dualagent.scenarios import Scenario

__all__ = [
    "BANK_RUNNERS",
    "CALLERS_CARD",
    "CARD_STATUSES",
    "ON_FILE",
    "STATUS_ALIASES",
    "CallContext",
    "call_context",
    "find_card",
]

CALLERS_CARD = "caller's card"
# As a delivery address: the address on file at the end of the call, or the caller's new one.
ON_FILE = "on_file"
CARD_STATUSES: tuple[str, ...] = get_args(bank.CardStatus)
STATUS_ALIASES: dict[str, tuple[str, ...]] = {"blocked": bank.BLOCKED_STATUSES}


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
    A call of another agent than the bank has no customer or card: only its intent.
    """
    meta_scenario = record.metadata.get("scenario") or {}
    if scenario is not None and not scenario.banking:
        return CallContext(intent=scenario.intent)
    if scenario is None and meta_scenario.get("agent") not in (None, "bank"):
        return CallContext(intent=meta_scenario.get("intent"))
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


def find_card(state: dict[str, Any], ref: str, ctx: CallContext) -> dict[str, Any] | None:
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
    card = find_card(record.bank_state, spec.card, ctx)
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
    card = find_card(state, spec.card, ctx)
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
        card = find_card(record.bank_state, spec.card, ctx)
        orders = _orders_for(record.bank_state, card.get("card_id") if card else None)
        if not orders:
            return False, "no replacement order, so no delivery address to mention"
        address = orders[0].get("delivery_address")
    street = _address_key(str(address).split(",")[0])
    for turn in turns_of(record, spec.speaker):
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


def _check_verified(spec: Verified, record: CallRecord, ctx: CallContext) -> Verdict:
    calls = calls_named(record, "verify_customer", "cs")
    for call in calls:
        output = call.get("output") or {}
        if not (tool_call_succeeded(call) and output.get("verified") is True):
            continue
        if spec.customer_id and output.get("customer_id") != spec.customer_id:
            continue
        return True, f"verified as {output.get('customer_id')} at t={call.get('t_s')}s"
    tried = len(calls)
    return False, f"not verified ({tried} verify_customer attempt{'s' if tried != 1 else ''})"


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


BANK_RUNNERS: dict[str, Any] = {
    "card_status": _check_card_status,
    "replacement_ordered": _check_replacement_ordered,
    "address_is": _check_address_is,
    "address_mentioned": _check_address_mentioned,
    "dispute_opened": _check_dispute_opened,
    "verified": _check_verified,
}
