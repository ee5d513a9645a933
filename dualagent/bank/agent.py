"""The First Bank agent's tools as python tool implementations, for the shipped ``bank`` spec.

``dualagent/data/agents/bank.yaml`` names these functions; each runs one banking tool on the
call's :class:`~dualagent.bank.state.BankState` through :func:`~dualagent.bank.tools.execute_tool`
(argument validation, the verify-first policy, errors as ``{"ok": false, ...}``).
"""

from __future__ import annotations

from typing import Any

from dualagent.bank.records import BankFixture, default_fixture
from dualagent.bank.state import BankState
from dualagent.bank.tools import execute_tool


def new_state(fixture: BankFixture | None = None) -> BankState:
    """The call's bank: the scenario's fixture, else the default one."""
    return BankState.from_fixture(fixture if fixture is not None else default_fixture())


def verify_customer(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "verify_customer", arguments)


def list_cards(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "list_cards", arguments)


def get_card_status(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "get_card_status", arguments)


def report_card_lost_or_stolen(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "report_card_lost_or_stolen", arguments)


def order_replacement_card(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "order_replacement_card", arguments)


def get_balance(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "get_balance", arguments)


def get_recent_transactions(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "get_recent_transactions", arguments)


def dispute_transaction(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "dispute_transaction", arguments)


def update_address(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "update_address", arguments)


def transfer_to_human(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "transfer_to_human", arguments)


def end_call(arguments: dict[str, Any], state: BankState) -> dict[str, Any]:
    return execute_tool(state, "end_call", arguments)
