"""The bank's Realtime function tools: argument models, handlers, schemas and dispatch.

Each tool's arguments are a pydantic model; the JSON schemas sent to the Realtime server are
derived from those models, so schema and validation cannot drift. Refusals and bad arguments
come back as ``{"ok": false, "error": ...}`` for the model to read, never as exceptions.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dualagent.bank.records import (
    BLOCKED_STATUSES,
    PROVISIONAL_CREDIT_DAYS,
    AddressChange,
    Card,
    Dispute,
    ReplacementOrder,
    Transfer,
)
from dualagent.bank.state import MAX_VERIFICATION_ATTEMPTS, BankState, ToolError
from dualagent.errors import describe_validation_error

__all__ = [
    "CALLER_TOOLS",
    "CS_TOOLS",
    "EXPEDITED_DELIVERY",
    "STANDARD_DELIVERY",
    "execute_tool",
]

STANDARD_DELIVERY = "5-7 business days"
EXPEDITED_DELIVERY = "1-2 business days"


# --------------------------------------------------------------------------------------------
# Tool arguments (one pydantic model per tool = the single source of truth for the schema)
# --------------------------------------------------------------------------------------------


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_CustomerId = Field(min_length=1, description='Customer id from verify_customer, e.g. "CUST-1001"')
_CardId = Field(min_length=1, description='Card id, e.g. "CARD-4417" (or its last four digits)')
_Reason = Field(min_length=1, description="Short reason, in plain words")


class VerifyCustomerArgs(_Args):
    full_name: str = Field(min_length=1, description="The caller's full name as they said it")
    date_of_birth: str | None = Field(
        None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="Date of birth as YYYY-MM-DD"
    )
    card_last4: str | None = Field(
        None, pattern=r"^\d{4}$", description="Last four digits of any of the caller's cards"
    )

    @field_validator("date_of_birth")
    @classmethod
    def _real_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"date_of_birth '{value}' is not a real date") from None
        return value

    @model_validator(mode="after")
    def _second_factor(self) -> "VerifyCustomerArgs":
        if self.date_of_birth is None and self.card_last4 is None:
            raise ValueError("give date_of_birth or card_last4 (or both) along with full_name")
        return self


class CustomerArgs(_Args):
    customer_id: str = _CustomerId


class CardArgs(_Args):
    card_id: str = _CardId


class ReportCardArgs(_Args):
    card_id: str = _CardId
    reason: Literal["lost", "stolen"] = Field(description='"lost" or "stolen"')


class OrderReplacementArgs(_Args):
    card_id: str = _CardId
    delivery_address: str | None = Field(
        None, description="Where to send the new card; omit to use the address on file"
    )
    expedited: bool = Field(
        False, description=f"true = {EXPEDITED_DELIVERY}, false = {STANDARD_DELIVERY}"
    )


class GetBalanceArgs(_Args):
    customer_id: str = _CustomerId
    account_id: str | None = Field(None, description="One account id; omit for all accounts")


class RecentTransactionsArgs(_Args):
    customer_id: str = _CustomerId
    limit: int = Field(5, ge=1, le=50, description="How many transactions, newest first")


class DisputeArgs(_Args):
    transaction_id: str = Field(min_length=1, description='Transaction id, e.g. "T-1005"')
    reason: str = _Reason


class UpdateAddressArgs(_Args):
    customer_id: str = _CustomerId
    new_address: str = Field(
        min_length=5, description='Full new address, e.g. "5 Pine Road, Springfield"'
    )


class ReasonArgs(_Args):
    reason: str = _Reason


# --------------------------------------------------------------------------------------------
# Tool handlers: (state, args) -> output dict; refusals raise ToolError
# --------------------------------------------------------------------------------------------


def _normalise_name(name: str) -> str:
    return " ".join(name.replace(".", " ").replace(",", " ").split()).casefold()


def _card_view(card: Card) -> dict[str, Any]:
    return {"card_id": card.card_id, "kind": card.kind, "last4": card.last4, "status": card.status}


def _verify_customer(state: BankState, args: VerifyCustomerArgs) -> dict[str, Any]:
    if state.verification_locked:
        raise ToolError(f"verification locked after {MAX_VERIFICATION_ATTEMPTS} failed attempts")
    name = _normalise_name(args.full_name)
    for customer in state.customers:
        if _normalise_name(customer.full_name) != name:
            continue
        if args.date_of_birth is not None and args.date_of_birth != customer.date_of_birth:
            continue
        cards = state.cards_of(customer.customer_id)
        if args.card_last4 is not None and args.card_last4 not in {c.last4 for c in cards}:
            continue
        state.verified_customer_id = customer.customer_id
        return {
            "ok": True,
            "verified": True,
            "customer_id": customer.customer_id,
            "full_name": customer.full_name,
            "address": customer.address,
            "cards": [_card_view(c) for c in cards],
        }
    state.failed_verifications += 1
    attempts_left = max(0, MAX_VERIFICATION_ATTEMPTS - state.failed_verifications)
    # One vague reason on purpose: saying which detail was wrong would help an impostor.
    result: dict[str, Any] = {
        "ok": True,
        "verified": False,
        "reason": "no customer matches that name with those details",
        "attempts_left": attempts_left,
    }
    if attempts_left == 0:
        result["locked"] = True
        result["next_step"] = "verification is now locked; offer transfer_to_human"
    return result


def _list_cards(state: BankState, args: CustomerArgs) -> dict[str, Any]:
    customer = state._own_customer(args.customer_id)
    cards = state.cards_of(customer.customer_id)
    return {
        "ok": True,
        "customer_id": customer.customer_id,
        "cards": [_card_view(c) for c in cards],
    }


def _get_card_status(state: BankState, args: CardArgs) -> dict[str, Any]:
    card = state._own_card(args.card_id)
    return {"ok": True, **_card_view(card), "replaced_by": card.replaced_by}


def _report_card(state: BankState, args: ReportCardArgs) -> dict[str, Any]:
    card = state._own_card(args.card_id)
    if card.status in ("replaced", "closed"):
        raise ToolError(f"card {card.card_id} is already {card.status}; it cannot be used")
    already_blocked = card.status in BLOCKED_STATUSES
    card.status = "blocked_lost" if args.reason == "lost" else "blocked_stolen"
    return {
        "ok": True,
        **_card_view(card),
        "already_blocked": already_blocked,
        "message": f"{card.kind} ending {card.last4} is blocked; no new charges will go through",
    }


def _order_replacement(state: BankState, args: OrderReplacementArgs) -> dict[str, Any]:
    card = state._own_card(args.card_id)
    if card.replaced_by is not None:
        order = next(o for o in state.replacement_orders if o.card_id == card.card_id)
        raise ToolError(
            f"a replacement for card {card.card_id} was already ordered "
            f"(order {order.order_id}, new card ending {order.new_last4})"
        )
    # Never ship a new card while the old one still works: the block must come first.
    if card.status not in BLOCKED_STATUSES:
        raise ToolError(
            f"card {card.card_id} is {card.status}: report the card lost or stolen first"
        )
    customer = state._verified()
    last4 = state._new_last4(card.last4)
    new_card = Card(
        card_id=f"CARD-{last4}",
        kind=card.kind,
        product=card.product,
        last4=last4,
        customer_id=card.customer_id,
    )
    order = ReplacementOrder(
        order_id=f"RO-{len(state.replacement_orders) + 1:04d}",
        card_id=card.card_id,
        new_card_id=new_card.card_id,
        new_last4=last4,
        customer_id=customer.customer_id,
        delivery_address=args.delivery_address or customer.address,
        expedited=args.expedited,
        estimated_delivery_days=EXPEDITED_DELIVERY if args.expedited else STANDARD_DELIVERY,
    )
    card.replaced_by = new_card.card_id
    state.cards.append(new_card)
    state.replacement_orders.append(order)
    return {"ok": True, **order.model_dump(exclude={"customer_id"})}


def _get_balance(state: BankState, args: GetBalanceArgs) -> dict[str, Any]:
    customer = state._own_customer(args.customer_id)
    if args.account_id is not None:
        accounts = [state._own_account(args.account_id)]
    else:
        accounts = state.accounts_of(customer.customer_id)
    return {
        "ok": True,
        "customer_id": customer.customer_id,
        "accounts": [a.model_dump(exclude={"customer_id"}) for a in accounts],
    }


def _recent_transactions(state: BankState, args: RecentTransactionsArgs) -> dict[str, Any]:
    customer = state._own_customer(args.customer_id)
    own_accounts = {a.account_id for a in state.accounts_of(customer.customer_id)}
    txns = [t for t in state.transactions if t.account_id in own_accounts]
    txns.sort(key=lambda t: (t.date, t.transaction_id), reverse=True)
    return {
        "ok": True,
        "customer_id": customer.customer_id,
        "transactions": [t.model_dump() for t in txns[: args.limit]],
        "more_available": len(txns) > args.limit,
    }


def _dispute_transaction(state: BankState, args: DisputeArgs) -> dict[str, Any]:
    txn = state._own_transaction(args.transaction_id)
    if txn.status == "disputed":
        existing = next(d for d in state.disputes if d.transaction_id == txn.transaction_id)
        raise ToolError(
            f"transaction {txn.transaction_id} is already disputed (dispute {existing.dispute_id})"
        )
    if txn.status == "pending":
        raise ToolError(
            f"transaction {txn.transaction_id} is still pending; it can be disputed once it posts"
        )
    if txn.amount >= 0:
        raise ToolError(
            f"transaction {txn.transaction_id} is a credit; only charges can be disputed"
        )
    amount = round(-txn.amount, 2)
    dispute = Dispute(
        dispute_id=f"DSP-{len(state.disputes) + 1:04d}",
        transaction_id=txn.transaction_id,
        customer_id=state._verified().customer_id,
        account_id=txn.account_id,
        merchant=txn.merchant,
        amount=amount,
        reason=args.reason,
        provisional_credit_amount=amount,
    )
    txn.status = "disputed"
    state.disputes.append(dispute)
    return {
        "ok": True,
        **dispute.model_dump(exclude={"customer_id"}),
        "message": (
            f"Dispute {dispute.dispute_id} opened for ${amount:.2f} at {txn.merchant}. "
            f"A provisional credit of ${amount:.2f} will be applied within "
            f"{PROVISIONAL_CREDIT_DAYS} business days while we investigate."
        ),
    }


def _update_address(state: BankState, args: UpdateAddressArgs) -> dict[str, Any]:
    customer = state._own_customer(args.customer_id)
    new_address = " ".join(args.new_address.split())
    change = AddressChange(
        change_id=f"AC-{len(state.address_changes) + 1:04d}",
        customer_id=customer.customer_id,
        old_address=customer.address,
        new_address=new_address,
    )
    customer.address = new_address
    state.address_changes.append(change)
    return {"ok": True, **change.model_dump()}


# Keyword routing keeps the queue choice deterministic and explainable.
_QUEUES: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("fraud_team", ("fraud", "stolen", "unauthori", "dispute", "scam", "suspicious"), 3),
    ("card_services", ("card",), 5),
)
_DEFAULT_QUEUE = ("general_support", 8)


def _transfer_to_human(state: BankState, args: ReasonArgs) -> dict[str, Any]:
    reason = args.reason.casefold()
    queue, wait = next(
        ((q, w) for q, words, w in _QUEUES if any(word in reason for word in words)),
        _DEFAULT_QUEUE,
    )
    transfer = Transfer(
        transfer_id=f"TR-{len(state.transfers) + 1:04d}",
        customer_id=state.verified_customer_id,
        reason=args.reason,
        queue=queue,
        estimated_wait_minutes=wait,
    )
    state.transfers.append(transfer)
    return {
        "ok": True,
        "transferred": True,
        "transfer_id": transfer.transfer_id,
        "queue": queue,
        "estimated_wait_minutes": wait,
    }


def _end_call(state: BankState, args: ReasonArgs, agent: str) -> dict[str, Any]:
    if state.call_ended is None:  # first hang-up wins; a second end_call is harmless
        state.call_ended = args.reason
        state.ended_by = agent
    return {"ok": True, "ended": True}


# --------------------------------------------------------------------------------------------
# Registry, schemas and dispatch
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tool:
    name: str
    description: str
    args: type[_Args]
    handler: Callable[[BankState, Any], dict[str, Any]]
    needs_verification: bool = True


_CS_TOOL_LIST = (
    _Tool(
        "verify_customer",
        "Verify the caller's identity. Needs full_name plus date_of_birth (YYYY-MM-DD) and/or "
        f"card_last4. Call before any other account action. Locks after "
        f"{MAX_VERIFICATION_ATTEMPTS} failed attempts.",
        VerifyCustomerArgs,
        _verify_customer,
        needs_verification=False,
    ),
    _Tool(
        "list_cards",
        "List the verified customer's cards with their status.",
        CustomerArgs,
        _list_cards,
    ),
    _Tool(
        "get_card_status",
        "Get the current status of one of the verified customer's cards.",
        CardArgs,
        _get_card_status,
    ),
    _Tool(
        "report_card_lost_or_stolen",
        "Immediately block a card the customer has lost or had stolen.",
        ReportCardArgs,
        _report_card,
    ),
    _Tool(
        "order_replacement_card",
        "Order a replacement for a card that has been reported lost or stolen. Ships to the "
        "address on file unless delivery_address is given.",
        OrderReplacementArgs,
        _order_replacement,
    ),
    _Tool(
        "get_balance",
        "Get balances of the verified customer's accounts (all, or one account_id).",
        GetBalanceArgs,
        _get_balance,
    ),
    _Tool(
        "get_recent_transactions",
        "List the verified customer's most recent transactions, newest first.",
        RecentTransactionsArgs,
        _recent_transactions,
    ),
    _Tool(
        "dispute_transaction",
        "Dispute a posted charge the customer does not recognise; opens a dispute with a "
        "provisional credit.",
        DisputeArgs,
        _dispute_transaction,
    ),
    _Tool(
        "update_address",
        "Change the verified customer's mailing address on file.",
        UpdateAddressArgs,
        _update_address,
    ),
    _Tool(
        "transfer_to_human",
        "Transfer the caller to a human agent when you cannot help or the caller asks for one.",
        ReasonArgs,
        _transfer_to_human,
        needs_verification=False,
    ),
    _Tool(
        "end_call",
        "End the call after the caller's needs are handled and goodbyes are said.",
        ReasonArgs,
        lambda state, args: _end_call(state, args, "cs"),
        needs_verification=False,
    ),
)

_CALLER_TOOL_LIST = (
    _Tool(
        "end_call",
        "Hang up once your business is done and you have said goodbye.",
        ReasonArgs,
        lambda state, args: _end_call(state, args, "caller"),
        needs_verification=False,
    ),
)

_REGISTRY: dict[str, dict[str, _Tool]] = {
    "cs": {t.name: t for t in _CS_TOOL_LIST},
    "caller": {t.name: t for t in _CALLER_TOOL_LIST},
}


def _clean_schema(node: Any) -> Any:
    """Pydantic's JSON schema → plain JSON schema: no titles, Optional[X] becomes X."""
    if isinstance(node, list):
        return [_clean_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties":  # keys here are argument names, not keywords: keep them all
            out[key] = {name: _clean_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _clean_schema(value)
    branches = out.get("anyOf")
    if isinstance(branches, list):
        non_null = [b for b in branches if b.get("type") != "null"]
        if len(non_null) == 1 and len(non_null) < len(branches):
            del out["anyOf"]
            out = {**non_null[0], **out}
    if "default" in out and out["default"] is None:
        del out["default"]  # "omit it" is the way to say None to a model
    return out


def _tool_schema(tool: _Tool) -> dict[str, Any]:
    parameters = _clean_schema(tool.args.model_json_schema())
    parameters.setdefault("required", [])
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": parameters,
    }


CS_TOOLS: list[dict[str, Any]] = [_tool_schema(t) for t in _CS_TOOL_LIST]
CALLER_TOOLS: list[dict[str, Any]] = [_tool_schema(t) for t in _CALLER_TOOL_LIST]


def _parse_arguments(tool: _Tool, arguments: str | dict[str, Any] | None) -> _Args:
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        arguments = {}  # a tool without arguments may arrive as ""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError as exc:
            raise ToolError(f"{tool.name}: arguments are not valid JSON ({exc})") from None
    if not isinstance(arguments, dict):
        raise ToolError(
            f"{tool.name}: arguments must be a JSON object, got {type(arguments).__name__}"
        )
    try:
        # Strict: the schema promised types; "5" for an integer is a model bug worth surfacing.
        return tool.args.model_validate(arguments, strict=True)
    except ValidationError as exc:
        raise ToolError(describe_validation_error(exc, tool.name, model=tool.args)) from None


def execute_tool(
    state: BankState,
    name: str,
    arguments: str | dict[str, Any] | None,
    *,
    agent: Literal["cs", "caller"] = "cs",
) -> dict[str, Any]:
    """Run one tool call from `agent`'s session. Never raises: failures are {"ok": false, ...}."""
    tools = _REGISTRY.get(agent, {})
    tool = tools.get(name)
    if tool is None:
        return {"ok": False, "error": f"unknown tool '{name}'; valid tools: {', '.join(tools)}"}
    try:
        args = _parse_arguments(tool, arguments)
        if state.call_ended is not None and name != "end_call":
            raise ToolError(f"the call has already ended ({state.call_ended})")
        if tool.needs_verification:
            state._verified()
        return tool.handler(state, args)
    except ToolError as exc:
        return {"ok": False, "error": str(exc)}
    except Exception as exc:  # a bug here must not kill the call; report it to the model
        return {"ok": False, "error": f"{name}: internal error: {type(exc).__name__}: {exc}"}
