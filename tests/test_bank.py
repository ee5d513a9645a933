"""Behaviour of the in-memory bank and its function tools, as the two agents experience it."""

import json

import pytest

from dualagent.bank import (
    CALLER_TOOLS,
    CS_TOOLS,
    BankFixture,
    BankState,
    default_fixture,
    execute_tool,
)

NANCY = {"full_name": "Nancy Wilson", "date_of_birth": "1958-03-14"}


@pytest.fixture
def state() -> BankState:
    return BankState.from_fixture(default_fixture())


@pytest.fixture
def verified(state: BankState) -> BankState:
    assert execute_tool(state, "verify_customer", json.dumps(NANCY))["verified"] is True
    return state


def call(state: BankState, name: str, **arguments: object) -> dict:
    # Arguments travel as a JSON string, exactly as the Realtime server delivers them.
    result = execute_tool(state, name, json.dumps(arguments))
    json.dumps(result)  # every output must be sendable back to the model
    return result


def card(state: BankState, card_id: str):
    return next(c for c in state.cards if c.card_id == card_id)


# --- the default fixture ------------------------------------------------------------------------


def test_default_fixture_has_the_default_caller_first() -> None:
    fixture = default_fixture()
    nancy = fixture.customers[0]
    assert len(fixture.customers) >= 3
    assert (nancy.full_name, nancy.date_of_birth) == ("Nancy Wilson", "1958-03-14")
    assert nancy.address == "12 Oak Street, Springfield"
    cards = {c.last4: c for c in fixture.cards if c.customer_id == nancy.customer_id}
    assert cards["4417"].product == "gold" and cards["4417"].status == "active"
    assert "9023" in cards
    kinds = {a.kind for a in fixture.accounts if a.customer_id == nancy.customer_id}
    assert {"checking", "savings"} <= kinds
    assert any(t.merchant == "Electronics Hub Online" for t in fixture.transactions)


def test_fixture_loads_from_plain_dict_and_rejects_dangling_references() -> None:
    data = default_fixture().model_dump()
    assert BankFixture.from_dict(data) == default_fixture()
    data["cards"][0]["customer_id"] = "CUST-9999"
    with pytest.raises(ValueError, match="CUST-9999"):
        BankFixture.from_dict(data)


# --- the main story: lost card ------------------------------------------------------------------


def test_full_lost_card_flow(state: BankState) -> None:
    verified = call(state, "verify_customer", **NANCY)
    assert verified["ok"] and verified["verified"]
    assert verified["customer_id"] == "CUST-1001"
    assert verified["address"] == "12 Oak Street, Springfield"
    assert {c["last4"] for c in verified["cards"]} == {"4417", "9023"}

    blocked = call(state, "report_card_lost_or_stolen", card_id="CARD-4417", reason="lost")
    assert blocked["ok"] and blocked["status"] == "blocked_lost"

    order = call(state, "order_replacement_card", card_id="CARD-4417")
    assert order["ok"]
    assert order["delivery_address"] == "12 Oak Street, Springfield"
    assert order["estimated_delivery_days"] == "5-7 business days"

    assert card(state, "CARD-4417").status == "blocked_lost"
    [recorded] = state.replacement_orders
    assert recorded.order_id == order["order_id"]
    assert recorded.card_id == "CARD-4417"
    assert recorded.delivery_address == "12 Oak Street, Springfield"
    assert card(state, recorded.new_card_id).status == "active"


def test_expedited_replacement_to_another_address(verified: BankState) -> None:
    call(verified, "report_card_lost_or_stolen", card_id="CARD-4417", reason="stolen")
    order = call(
        verified,
        "order_replacement_card",
        card_id="CARD-4417",
        delivery_address="3 Elm Lane, Shelbyville",
        expedited=True,
    )
    assert order["estimated_delivery_days"] == "1-2 business days"
    assert order["delivery_address"] == "3 Elm Lane, Shelbyville"
    assert card(verified, "CARD-4417").status == "blocked_stolen"


def test_replacement_before_blocking_is_refused(verified: BankState) -> None:
    result = call(verified, "order_replacement_card", card_id="CARD-4417")
    assert result["ok"] is False
    assert "report the card lost or stolen first" in result["error"]
    assert verified.replacement_orders == []


def test_second_replacement_for_same_card_is_refused(verified: BankState) -> None:
    call(verified, "report_card_lost_or_stolen", card_id="CARD-4417", reason="lost")
    first = call(verified, "order_replacement_card", card_id="CARD-4417")
    second = call(verified, "order_replacement_card", card_id="CARD-4417")
    assert second["ok"] is False and first["order_id"] in second["error"]
    assert len(verified.replacement_orders) == 1


def test_card_can_be_named_by_its_last_four_digits(verified: BankState) -> None:
    result = call(verified, "report_card_lost_or_stolen", card_id="4417", reason="lost")
    assert result["ok"] and result["card_id"] == "CARD-4417"


# --- verification -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"full_name": "  nancy   WILSON ", "date_of_birth": "1958-03-14"},
        {"full_name": "Nancy Wilson", "card_last4": "4417"},
        {"full_name": "Nancy Wilson", "date_of_birth": "1958-03-14", "card_last4": "9023"},
    ],
)
def test_verification_succeeds_with_name_and_a_second_factor(
    state: BankState, arguments: dict
) -> None:
    result = call(state, "verify_customer", **arguments)
    assert result["verified"] is True
    assert state.verified_customer_id == "CUST-1001"


def test_verification_failure_and_lockout_after_three_tries(state: BankState) -> None:
    wrong = {"full_name": "Nancy Wilson", "date_of_birth": "1960-01-01"}
    for attempts_left in (2, 1, 0):
        result = call(state, "verify_customer", **wrong)
        assert result["ok"] is True and result["verified"] is False
        assert result["attempts_left"] == attempts_left
        assert result["reason"]
    assert state.failed_verifications == 3

    # Even the right details are refused once locked.
    locked = call(state, "verify_customer", **NANCY)
    assert locked == {"ok": False, "error": "verification locked after 3 failed attempts"}
    assert state.verified_customer_id is None


def test_wrong_card_digits_fail_verification(state: BankState) -> None:
    result = call(state, "verify_customer", full_name="Nancy Wilson", card_last4="5582")
    assert result["verified"] is False and result["attempts_left"] == 2


def test_verification_needs_a_second_factor(state: BankState) -> None:
    result = call(state, "verify_customer", full_name="Nancy Wilson")
    assert result["ok"] is False
    assert "date_of_birth" in result["error"] and "card_last4" in result["error"]
    assert state.failed_verifications == 0  # a malformed call is not a failed attempt


def test_badly_formatted_date_of_birth_names_the_argument(state: BankState) -> None:
    result = call(state, "verify_customer", full_name="Nancy Wilson", date_of_birth="14/03/1958")
    assert result["ok"] is False and "date_of_birth" in result["error"]


# --- policy -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("list_cards", {"customer_id": "CUST-1001"}),
        ("get_card_status", {"card_id": "CARD-4417"}),
        ("report_card_lost_or_stolen", {"card_id": "CARD-4417", "reason": "lost"}),
        ("order_replacement_card", {"card_id": "CARD-4417"}),
        ("get_balance", {"customer_id": "CUST-1001"}),
        ("get_recent_transactions", {"customer_id": "CUST-1001"}),
        ("dispute_transaction", {"transaction_id": "T-1005", "reason": "not me"}),
        ("update_address", {"customer_id": "CUST-1001", "new_address": "1 New Road, Town"}),
    ],
)
def test_actions_are_refused_before_verification(
    state: BankState, name: str, arguments: dict
) -> None:
    before = state.snapshot()
    result = call(state, name, **arguments)
    assert result == {"ok": False, "error": "customer not verified: call verify_customer first"}
    assert state.snapshot() == before


def test_another_customers_data_is_refused(verified: BankState) -> None:
    result = call(verified, "report_card_lost_or_stolen", card_id="CARD-5582", reason="lost")
    assert result["ok"] is False
    assert result["error"] == "card CARD-5582 does not belong to the verified customer"
    assert card(verified, "CARD-5582").status == "active"

    assert call(verified, "get_balance", customer_id="CUST-1002")["ok"] is False
    other_account = call(
        verified, "get_balance", customer_id="CUST-1001", account_id="ACC-1002-CHK"
    )
    assert other_account["ok"] is False
    assert call(verified, "dispute_transaction", transaction_id="T-2001", reason="x")["ok"] is False


def test_unknown_card_lists_the_customers_cards(verified: BankState) -> None:
    result = call(verified, "get_card_status", card_id="CARD-0000")
    assert result["ok"] is False and "CARD-4417" in result["error"]


# --- bad calls ----------------------------------------------------------------------------------


def test_unknown_tool_lists_valid_tools(state: BankState) -> None:
    result = execute_tool(state, "freeze_everything", "{}")
    assert result["ok"] is False
    assert "freeze_everything" in result["error"]
    for schema in CS_TOOLS:
        assert schema["name"] in result["error"]


def test_invalid_json(state: BankState) -> None:
    result = execute_tool(state, "verify_customer", '{"full_name": "Nancy')
    assert result["ok"] is False
    assert result["error"].startswith("verify_customer: ")
    assert "JSON" in result["error"]


def test_arguments_must_be_an_object(state: BankState) -> None:
    result = execute_tool(state, "end_call", '["bye"]')
    assert result["ok"] is False and "JSON object" in result["error"]


def test_missing_argument_is_named(verified: BankState) -> None:
    result = call(verified, "report_card_lost_or_stolen", card_id="CARD-4417")
    assert result == {
        "ok": False,
        "error": "report_card_lost_or_stolen: reason: missing (required)",
    }


def test_wrong_type_is_named(verified: BankState) -> None:
    result = call(verified, "get_recent_transactions", customer_id="CUST-1001", limit="five")
    assert result["ok"] is False
    assert result["error"] == (
        "get_recent_transactions: limit: Input should be a valid integer (got 'five')"
    )

    result = call(verified, "report_card_lost_or_stolen", card_id="CARD-4417", reason="broken")
    assert result == {
        "ok": False,
        "error": "report_card_lost_or_stolen: reason: Input should be 'lost' or 'stolen' "
        "(got 'broken')",
    }


def test_unknown_argument_is_named(verified: BankState) -> None:
    result = call(verified, "list_cards", customer_id="CUST-1001", include_closed=True)
    assert result["ok"] is False
    assert result["error"] == (
        "list_cards: include_closed: unknown field (valid fields: customer_id)"
    )


def test_dict_arguments_are_accepted(verified: BankState) -> None:
    result = execute_tool(verified, "list_cards", {"customer_id": "CUST-1001"})
    assert result["ok"] is True and len(result["cards"]) == 2


def test_execute_tool_never_raises_on_junk(state: BankState) -> None:
    for arguments in ("", "null", "42", "{", '{"reason": null}', None):
        result = execute_tool(state, "end_call", arguments)  # type: ignore[arg-type]
        assert isinstance(result, dict) and "ok" in result


# --- other services -----------------------------------------------------------------------------


def test_address_update_changes_default_delivery_address(verified: BankState) -> None:
    change = call(
        verified, "update_address", customer_id="CUST-1001", new_address="5 Pine Road, Springfield"
    )
    assert change["ok"] and change["old_address"] == "12 Oak Street, Springfield"
    assert verified.customer("CUST-1001").address == "5 Pine Road, Springfield"
    assert len(verified.address_changes) == 1

    call(verified, "report_card_lost_or_stolen", card_id="CARD-4417", reason="lost")
    order = call(verified, "order_replacement_card", card_id="CARD-4417")
    assert order["delivery_address"] == "5 Pine Road, Springfield"


def test_balance_and_recent_transactions(verified: BankState) -> None:
    balances = call(verified, "get_balance", customer_id="CUST-1001")
    by_kind = {a["kind"]: a for a in balances["accounts"]}
    assert by_kind["checking"]["balance"] == 2450.75
    assert by_kind["checking"]["currency"] == "USD"

    one = call(verified, "get_balance", customer_id="CUST-1001", account_id="ACC-1001-SAV")
    assert [a["account_id"] for a in one["accounts"]] == ["ACC-1001-SAV"]

    recent = call(verified, "get_recent_transactions", customer_id="CUST-1001", limit=3)
    dates = [t["date"] for t in recent["transactions"]]
    assert len(dates) == 3 and dates == sorted(dates, reverse=True)
    default = call(verified, "get_recent_transactions", customer_id="CUST-1001")
    assert len(default["transactions"]) == 5


def test_dispute_marks_the_transaction(verified: BankState) -> None:
    result = call(
        verified, "dispute_transaction", transaction_id="T-1005", reason="I did not make it"
    )
    assert result["ok"] and result["dispute_id"]
    assert result["provisional_credit_amount"] == 342.99
    assert "provisional credit" in result["message"]
    txn = next(t for t in verified.transactions if t.transaction_id == "T-1005")
    assert txn.status == "disputed"
    assert verified.disputes[0].transaction_id == "T-1005"

    again = call(verified, "dispute_transaction", transaction_id="T-1005", reason="again")
    assert again["ok"] is False and "already disputed" in again["error"]


def test_pending_and_credit_transactions_cannot_be_disputed(verified: BankState) -> None:
    assert call(verified, "dispute_transaction", transaction_id="T-1006", reason="x")["ok"] is False
    assert call(verified, "dispute_transaction", transaction_id="T-1004", reason="x")["ok"] is False
    assert verified.disputes == []


def test_transfer_to_human_is_recorded_without_verification(state: BankState) -> None:
    result = call(state, "transfer_to_human", reason="caller suspects fraud")
    assert result["ok"] and result["transferred"]
    assert result["queue"] and result["estimated_wait_minutes"] > 0
    [transfer] = state.transfers
    assert transfer.reason == "caller suspects fraud" and transfer.customer_id is None


def test_end_call_is_recorded_and_stops_further_actions(verified: BankState) -> None:
    assert call(verified, "end_call", reason="resolved") == {"ok": True, "ended": True}
    assert verified.call_ended == "resolved" and verified.ended_by == "cs"
    after = call(verified, "list_cards", customer_id="CUST-1001")
    assert after["ok"] is False and "ended" in after["error"]
    # A second hang-up is harmless and keeps the first reason.
    assert call(verified, "end_call", reason="again")["ended"] is True
    assert verified.call_ended == "resolved"


def test_caller_may_only_hang_up(state: BankState) -> None:
    assert [t["name"] for t in CALLER_TOOLS] == ["end_call"]
    refused = execute_tool(state, "verify_customer", json.dumps(NANCY), agent="caller")
    assert refused["ok"] is False and "valid tools: end_call" in refused["error"]
    assert execute_tool(state, "end_call", '{"reason": "bye"}', agent="caller")["ended"]
    assert state.ended_by == "caller"


# --- schemas and determinism --------------------------------------------------------------------


def _walk(node: object):
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key == "properties":
                for sub in value.values():
                    yield from _walk(sub)
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


@pytest.mark.parametrize("tool", CS_TOOLS + CALLER_TOOLS, ids=lambda t: t["name"])
def test_tool_schemas_are_plain_json_schema(tool: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert set(tool) == {"type", "name", "description", "parameters"}
    assert tool["type"] == "function" and tool["description"]
    params = tool["parameters"]
    jsonschema.Draft202012Validator.check_schema(params)
    assert params["type"] == "object"
    assert params["additionalProperties"] is False
    assert set(params["required"]) <= set(params["properties"])
    for node in _walk(params):
        assert "title" not in node and "anyOf" not in node and "$ref" not in node
    for name, prop in params["properties"].items():
        assert prop.get("type") in {"string", "integer", "boolean"}, name
        assert prop.get("description"), name


def test_schema_and_validation_agree(verified: BankState) -> None:
    # Every required argument in the schema is rejected when missing.
    for tool in CS_TOOLS:
        for required in tool["parameters"]["required"]:
            result = execute_tool(verified, tool["name"], "{}")
            assert result["error"].startswith(f"{tool['name']}: ")
            assert f" {required}: missing (required)" in result["error"]


def test_cs_tools_cover_the_banking_services() -> None:
    assert {t["name"] for t in CS_TOOLS} >= {
        "verify_customer",
        "list_cards",
        "get_card_status",
        "report_card_lost_or_stolen",
        "order_replacement_card",
        "get_balance",
        "get_recent_transactions",
        "dispute_transaction",
        "update_address",
        "transfer_to_human",
        "end_call",
    }


def _script(state: BankState) -> list[dict]:
    steps = [
        ("verify_customer", {"full_name": "Nancy Wilson", "card_last4": "1111"}),
        ("verify_customer", NANCY),
        ("report_card_lost_or_stolen", {"card_id": "CARD-4417", "reason": "stolen"}),
        ("update_address", {"customer_id": "CUST-1001", "new_address": "9 Birch Way, Springfield"}),
        ("order_replacement_card", {"card_id": "CARD-4417", "expedited": True}),
        ("report_card_lost_or_stolen", {"card_id": "CARD-9023", "reason": "lost"}),
        ("order_replacement_card", {"card_id": "CARD-9023"}),
        ("dispute_transaction", {"transaction_id": "T-1005", "reason": "not mine"}),
        ("transfer_to_human", {"reason": "wants to talk to a person"}),
        ("end_call", {"reason": "done"}),
    ]
    return [execute_tool(state, name, json.dumps(args)) for name, args in steps]


def test_same_calls_give_identical_snapshots() -> None:
    first, second = (BankState.from_fixture(default_fixture()) for _ in range(2))
    assert _script(first) == _script(second)
    snapshot = first.snapshot()
    assert snapshot == second.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    new_ids = {o["new_card_id"] for o in snapshot["replacement_orders"]}
    assert len(new_ids) == 2 and not new_ids & {"CARD-4417", "CARD-9023"}


def test_state_does_not_mutate_its_fixture() -> None:
    fixture = default_fixture()
    state = BankState.from_fixture(fixture)
    _script(state)
    assert fixture == default_fixture()
