"""Checks and outcomes on hand-built call records (and one real text-route call)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import dualagent
from dualagent import bank
from dualagent.call.record import CallRecord, load_call
from dualagent.evaluation.checks import (
    STANDARD_CHECKS,
    AddressIs,
    AddressMentioned,
    AllOf,
    AnyOf,
    CallContext,
    CardStatusIs,
    DisputeOpened,
    EndReasonIn,
    NotCheck,
    NotTransferred,
    ReplacementOrdered,
    Said,
    ToolCalled,
    ToolNotCalled,
    TransferredToHuman,
    Verified,
    call_context,
    run_check,
)
from dualagent.evaluation.outcome import evaluate
from dualagent.personas import CallerGoal, load_persona
from dualagent.scenarios import load_scenario, scenario_from_dict

NANCY = {"full_name": "Nancy Wilson", "date_of_birth": "1958-03-14"}
GOLD = "CARD-4417"
HOME = "12 Oak Street, Springfield"


class Call:
    """Builds a record the way a call would: tools run on a real BankState, turns by hand."""

    def __init__(self, customer: dict[str, Any] | None = None) -> None:
        self.state = bank.BankState.from_fixture()
        self.calls: list[dict[str, Any]] = []
        self.turns: list[dict[str, Any]] = []
        self.metadata: dict[str, Any] = {
            "end_reason": "caller_hung_up",
            "scenario": {
                "intent": "lost_card",
                "customer": customer
                or {"full_name": "Nancy Wilson", "card_product": "gold", "card_last4": "4417"},
            },
        }

    def tool(self, name: str, agent: str = "cs", **arguments: Any) -> Call:
        output = bank.execute_tool(self.state, name, arguments, agent=agent)  # type: ignore[arg-type]
        self.calls.append(
            {
                "call_id": f"call_{len(self.calls)}",
                "agent": agent,
                "name": name,
                "arguments": arguments,
                "output": output,
                "ok": output.get("ok", False),
                "t_s": 10.0 * (len(self.calls) + 1),
                "turn_index": len(self.turns),
            }
        )
        return self

    def say(self, speaker: str, text: str, heard: str | None = None) -> Call:
        start = 5.0 * len(self.turns)
        self.turns.append(
            {
                "index": len(self.turns),
                "speaker": speaker,
                "text": text,
                "heard": text if heard is None else heard,
                "start_s": start,
                "end_s": start + 4.0,
                "interrupted": False,
            }
        )
        return self

    def record(self) -> CallRecord:
        return CallRecord(
            path=Path("call"),
            turns=self.turns,
            function_calls=self.calls,
            metadata={**self.metadata, "bank_state": self.state.snapshot()},
        )


def replaced_call(hang_up: bool = True) -> Call:
    """The happy path: verified, blocked, ordered to the address on file, all said aloud."""
    call = (
        Call()
        .say("caller", "Hi. I lost my gold card and I need a replacement, please.")
        .tool("verify_customer", **NANCY)
        .tool("report_card_lost_or_stolen", card_id=GOLD, reason="lost")
        .say(
            "cs",
            f"Your card is now blocked. I can send a replacement card to {HOME}. Is that right?",
        )
        .say("caller", "Yes, that's right.")
        .tool("order_replacement_card", card_id=GOLD)
        .say("cs", f"Your replacement card has been ordered and will arrive at {HOME}.")
        .say("cs", "Your old card is permanently blocked, so your account is protected.")
    )
    return call.tool("end_call", agent="caller", reason="completed") if hang_up else call


def check(spec: Any, record: CallRecord) -> bool:
    return run_check(spec, record).passed


# ------------------------------------------------------------------------------ tool checks


def test_tool_called_needs_a_successful_matching_call() -> None:
    record = replaced_call().record()
    assert check(ToolCalled(name="order_replacement_card"), record)
    assert check(
        ToolCalled(name="report_card_lost_or_stolen", arguments={"reason": "LOST"}), record
    )
    assert not check(
        ToolCalled(name="report_card_lost_or_stolen", arguments={"reason": "stolen"}), record
    )
    assert not check(ToolCalled(name="dispute_transaction"), record)
    assert check(ToolCalled(name="end_call", agent="caller"), record)
    assert not check(ToolCalled(name="end_call", agent="cs"), record)


def test_tool_called_must_succeed_and_output_match() -> None:
    # Ordering before blocking is refused by the bank: the call exists but failed.
    record = (
        Call()
        .tool("verify_customer", **NANCY)
        .tool("order_replacement_card", card_id=GOLD)
        .record()
    )
    assert not check(ToolCalled(name="order_replacement_card"), record)
    assert check(ToolCalled(name="order_replacement_card", must_succeed=False), record)
    assert check(ToolCalled(name="verify_customer", output={"verified": True}), record)
    assert not check(
        ToolCalled(name="verify_customer", output={"customer_id": "CUST-1002"}), record
    )


def test_tool_called_caller_s_card_argument() -> None:
    record = replaced_call().record()
    spec = ToolCalled(name="report_card_lost_or_stolen", arguments={"card_id": "caller's card"})
    assert check(spec, record)
    other = (
        Call()
        .tool("verify_customer", **NANCY)
        .tool("report_card_lost_or_stolen", card_id="CARD-9023", reason="lost")
        .record()
    )
    assert not check(spec, other)


def test_tool_not_called() -> None:
    record = replaced_call().record()
    assert check(ToolNotCalled(name="transfer_to_human"), record)
    assert not check(ToolNotCalled(name="order_replacement_card"), record)
    failed = Call().tool("order_replacement_card", card_id=GOLD).record()  # unverified: refused
    assert not check(ToolNotCalled(name="order_replacement_card"), failed)
    assert check(ToolNotCalled(name="order_replacement_card", successful_only=True), failed)


def test_unknown_tool_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="valid tools"):
        ToolCalled(name="order_card")


# ------------------------------------------------------------------------------ bank-state checks


def test_card_status_reads_the_bank_state() -> None:
    record = replaced_call().record()
    assert check(CardStatusIs(status=["blocked"]), record)
    assert check(CardStatusIs(status=["blocked_lost"]), record)
    assert not check(CardStatusIs(status=["blocked_stolen"]), record)
    assert check(CardStatusIs(card="CARD-9023", status=["active"]), record)
    assert check(CardStatusIs(card="9023", status=["active"]), record)
    assert not check(CardStatusIs(card="CARD-0000", status=["active"]), record)
    untouched = Call().tool("verify_customer", **NANCY).record()
    result = run_check(CardStatusIs(status=["blocked"]), untouched)
    assert not result.passed and "active" in result.evidence


def test_card_status_fails_on_a_tampered_state() -> None:
    record = replaced_call().record()
    tampered = copy.deepcopy(record)
    next(c for c in tampered.bank_state["cards"] if c["card_id"] == GOLD)["status"] = "active"
    assert check(CardStatusIs(status=["blocked"]), record)
    assert not check(CardStatusIs(status=["blocked"]), tampered)


def test_replacement_ordered() -> None:
    record = replaced_call().record()
    assert check(ReplacementOrdered(), record)
    assert check(ReplacementOrdered(delivery_address="on_file"), record)
    assert check(ReplacementOrdered(delivery_address="12 oak street springfield"), record)
    assert not check(ReplacementOrdered(delivery_address="5 Pine Road, Riverside"), record)
    assert not check(ReplacementOrdered(expedited=True), record)
    assert not check(ReplacementOrdered(card="CARD-9023"), record)
    no_order = Call().tool("verify_customer", **NANCY).record()
    assert not check(ReplacementOrdered(), no_order)


def test_replacement_for_the_wrong_card_does_not_count() -> None:
    record = (
        Call()
        .tool("verify_customer", **NANCY)
        .tool("report_card_lost_or_stolen", card_id="CARD-9023", reason="lost")
        .tool("order_replacement_card", card_id="CARD-9023")
        .record()
    )
    result = run_check(ReplacementOrdered(), record)
    assert not result.passed
    assert "CARD-9023" in result.evidence


def test_delivery_to_another_address_is_not_on_file() -> None:
    record = (
        Call()
        .tool("verify_customer", **NANCY)
        .tool("report_card_lost_or_stolen", card_id=GOLD, reason="lost")
        .tool("order_replacement_card", card_id=GOLD, delivery_address="99 Elsewhere Lane, Nowhere")
        .record()
    )
    assert check(ReplacementOrdered(), record)
    assert not check(ReplacementOrdered(delivery_address="on_file"), record)


def test_address_is_and_new_address_on_file() -> None:
    customer = {
        "full_name": "Nancy Wilson",
        "card_last4": "4417",
        "new_address": "5 Pine Road, Springfield",
    }
    moved = (
        Call(customer)
        .tool("verify_customer", **NANCY)
        .tool("update_address", customer_id="CUST-1001", new_address="five pine road springfield")
        .tool("report_card_lost_or_stolen", card_id=GOLD, reason="lost")
        .tool("order_replacement_card", card_id=GOLD)
        .record()
    )
    assert check(AddressIs(), moved)  # spoken numbers compare equal to digits
    assert check(AddressIs(address="5 Pine Rd, Springfield"), moved)
    assert check(ReplacementOrdered(delivery_address="on_file"), moved)
    stayed = Call(customer).tool("verify_customer", **NANCY).record()
    result = run_check(AddressIs(), stayed)
    assert not result.passed and HOME in result.evidence


def test_address_mentioned() -> None:
    record = replaced_call().record()
    assert check(AddressMentioned(), record)
    silent = copy.deepcopy(record)
    silent.turns = [t for t in silent.turns if t["speaker"] != "cs"]
    assert not check(AddressMentioned(), silent)
    spoken = copy.deepcopy(silent)
    spoken.turns.append(
        {"index": 9, "speaker": "cs", "text": "It goes to twelve Oak St. in Springfield."}
    )
    assert check(AddressMentioned(), spoken)
    assert not check(AddressMentioned(speaker="caller"), record)


def test_dispute_opened() -> None:
    record = (
        Call()
        .tool("verify_customer", **NANCY)
        .tool("dispute_transaction", transaction_id="T-1005", reason="not me")
        .record()
    )
    assert check(DisputeOpened(), record)
    assert check(DisputeOpened(merchant="electronics hub"), record)
    assert check(DisputeOpened(transaction_id="T-1005"), record)
    assert not check(DisputeOpened(transaction_id="T-1002"), record)
    assert not check(DisputeOpened(merchant="Corner Coffee House"), record)
    assert not check(DisputeOpened(), Call().tool("verify_customer", **NANCY).record())


def test_dispute_opened_defaults_to_the_caller_s_merchant() -> None:
    call = Call().tool("verify_customer", **NANCY)
    call.tool("dispute_transaction", transaction_id="T-1002", reason="not me")
    call.metadata["scenario"]["customer"]["disputed_merchant"] = "Electronics Hub Online"
    assert not check(DisputeOpened(), call.record())  # a dispute, but of the wrong charge


def test_transfer_checks() -> None:
    record = Call().tool("transfer_to_human", reason="caller asked for a human").record()
    assert check(TransferredToHuman(), record)
    assert not check(NotTransferred(), record)
    plain = replaced_call().record()
    assert not check(TransferredToHuman(), plain)
    assert check(NotTransferred(), plain)


def test_verified() -> None:
    assert check(Verified(), replaced_call().record())
    assert check(Verified(customer_id="CUST-1001"), replaced_call().record())
    assert not check(Verified(customer_id="CUST-1002"), replaced_call().record())
    wrong = Call().tool("verify_customer", full_name="Nancy Wilson", date_of_birth="1958-04-14")
    result = run_check(Verified(), wrong.record())
    assert not result.passed and "1 verify_customer attempt" in result.evidence


# ------------------------------------------------------------------------------ transcript checks


def test_said_is_case_and_punctuation_insensitive() -> None:
    record = replaced_call().record()
    assert check(Said(phrases=["HAS BEEN ORDERED"]), record)
    assert check(Said(phrases=["blocked so your account"]), record)  # comma ignored
    assert not check(Said(phrases=["expedited"]), record)
    assert not check(Said(speaker="caller", phrases=["ordered"]), record)
    assert check(Said(speaker="any", phrases=["ordered"]), record)


def test_said_can_read_what_was_heard() -> None:
    record = (
        Call().say("cs", "Your card has been ordered.", heard="your car has been order").record()
    )
    assert check(Said(phrases=["ordered"]), record)
    assert not check(Said(phrases=["ordered"], field="heard"), record)


def test_end_reason_in() -> None:
    record = replaced_call().record()
    assert check(EndReasonIn(reasons=["caller_hung_up"]), record)
    assert not check(EndReasonIn(reasons=["error", "*_disconnected"]), record)
    record.metadata["end_reason"] = "cs_disconnected"
    assert check(EndReasonIn(reasons=["error", "*_disconnected"]), record)


def test_composites() -> None:
    record = replaced_call().record()
    yes, no = Verified(), TransferredToHuman()
    assert check(AllOf(checks=[yes, yes]), record)
    assert not check(AllOf(checks=[yes, no]), record)
    assert check(AnyOf(checks=[no, yes]), record)
    assert not check(AnyOf(checks=[no, no]), record)
    assert check(NotCheck(check=no), record)
    assert not check(NotCheck(check=yes), record)
    result = run_check(AllOf(checks=[yes, no]), record)
    assert "transfer_to_human" in result.evidence  # the failing part is named


# ------------------------------------------------------------------------------ standard criteria


def standard(text: str, record: CallRecord) -> bool:
    return run_check(STANDARD_CHECKS[text], record, name=text).passed


def test_standard_replacement_confirmed_needs_order_and_words() -> None:
    assert standard("card replacement confirmed", replaced_call().record())
    unsaid = replaced_call().record()
    unsaid.turns = [t for t in unsaid.turns if "ordered" not in t["text"]]
    assert not standard("card replacement confirmed", unsaid)
    no_order = replaced_call().record()
    no_order.bank_state["replacement_orders"] = []
    assert not standard("card replacement confirmed", no_order)


def test_standard_delivery_address_confirmed() -> None:
    assert standard("delivery address confirmed", replaced_call().record())
    elsewhere = replaced_call().record()
    elsewhere.bank_state["replacement_orders"][0]["delivery_address"] = "1 Other Road, Far"
    assert not standard("delivery address confirmed", elsewhere)
    unsaid = replaced_call().record()
    unsaid.turns = [t for t in unsaid.turns if HOME not in t["text"]]
    assert not standard("delivery address confirmed", unsaid)


def test_standard_security_concerns_addressed() -> None:
    assert standard("security concerns addressed", replaced_call().record())
    quiet = replaced_call().record()
    quiet.turns = [t for t in quiet.turns if t["speaker"] != "cs"]
    assert not standard("security concerns addressed", quiet)
    unblocked = Call().tool("verify_customer", **NANCY).say("cs", "Your account is protected.")
    assert not standard("security concerns addressed", unblocked.record())


def test_standard_failure_conditions() -> None:
    good = replaced_call().record()
    assert not standard("transferred to human", good)
    assert not standard("call terminated", good)
    assert not standard("unable to verify identity", good)

    transferred = Call().tool("transfer_to_human", reason="caller asked").record()
    assert standard("transferred to human", transferred)
    assert standard("unable to verify identity", transferred)

    gave_up = Call().tool("end_call", agent="caller", reason="gave_up").record()
    assert standard("call terminated", gave_up)
    for reason in ("error", "stalled", "caller_disconnected", "cs_disconnected"):
        crashed = replaced_call().record()
        crashed.metadata["end_reason"] = reason
        assert standard("call terminated", crashed), reason


# ------------------------------------------------------------------------------ outcomes


GOAL = CallerGoal(
    primary_goal="Get my lost gold card replaced",
    success_criteria=["card replacement confirmed", "delivery address confirmed"],
    failure_conditions=["transferred to human", "call terminated", "unable to verify identity"],
)


def test_outcome_success() -> None:
    outcome = evaluate(replaced_call().record(), GOAL)
    assert outcome.result == "success"
    assert [c.name for c in outcome.criteria] == GOAL.success_criteria
    assert [f.name for f in outcome.failures] == GOAL.failure_conditions
    assert outcome.unmet_criteria == [] and outcome.failure_conditions_met == []
    assert outcome.as_expected is None


def test_outcome_incomplete_when_a_criterion_is_unmet() -> None:
    call = (
        Call()
        .tool("verify_customer", **NANCY)
        .tool("report_card_lost_or_stolen", card_id=GOLD, reason="lost")
    )
    outcome = evaluate(call.record(), GOAL)
    assert outcome.result == "incomplete"
    assert outcome.unmet_criteria == GOAL.success_criteria


def test_outcome_failure_beats_success() -> None:
    call = replaced_call(hang_up=False).tool("transfer_to_human", reason="caller asked")
    outcome = evaluate(call.record(), GOAL)
    assert all(c.passed for c in outcome.criteria)
    assert outcome.result == "failure"
    assert outcome.failure_conditions_met == ["transferred to human"]


def test_unknown_criterion_text_is_never_met() -> None:
    goal = GOAL.model_copy(update={"success_criteria": ["customer delighted"]})
    outcome = evaluate(replaced_call().record(), goal)
    assert outcome.result == "incomplete"
    assert "no check" in outcome.criteria[0].evidence


def test_goal_defaults_to_the_recorded_persona() -> None:
    record = replaced_call().record()
    record.metadata["persona"] = load_persona("typical").model_dump(mode="json")
    outcome = evaluate(record)
    assert outcome.result == "success"
    assert len(outcome.criteria) == 3  # includes "security concerns addressed"
    assert evaluate(record, load_persona("typical")).result == "success"


def test_as_dict_is_json_ready() -> None:
    data = evaluate(replaced_call().record(), GOAL).as_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["result"] == "success"
    assert set(data) >= {"criteria", "failures", "unmet_criteria", "failure_conditions_met"}


def test_scenario_expected_failure() -> None:
    scenario = scenario_from_dict(
        {
            "name": "wants_person",
            "persona": "frustrated",
            "intent": "human",
            "expected_outcome": "failure",
        }
    )
    record = Call().tool("transfer_to_human", reason="caller asked for a human agent").record()
    outcome = evaluate(record, scenario)
    assert outcome.result == "failure"
    assert outcome.expected_outcome == "failure" and outcome.as_expected is True
    assert outcome.scenario == "wants_person"
    assert evaluate(replaced_call().record(), scenario).as_expected is False


def test_scenario_explicit_check_and_context() -> None:
    scenario = scenario_from_dict(
        {
            "name": "stolen",
            "persona": "typical",
            "intent": "stolen_card",
            "goal": {
                "primary_goal": "Block my stolen card",
                "success_criteria": ["card blocked as stolen"],
            },
            "checks": {
                "card blocked as stolen": {"kind": "card_status", "status": "blocked_stolen"}
            },
        }
    )
    lost = replaced_call().record()
    assert evaluate(lost, scenario).result == "incomplete"  # blocked as lost, not stolen
    stolen = Call().tool("verify_customer", **NANCY)
    stolen.tool("report_card_lost_or_stolen", card_id=GOLD, reason="stolen")
    assert evaluate(stolen.record(), scenario).result == "success"
    ctx = call_context(stolen.record(), scenario)
    assert ctx == CallContext(intent="stolen_card", customer_id="CUST-1001", card_id=GOLD)


def test_context_finds_the_caller_by_name_and_card() -> None:
    customer = {"full_name": "Karen Davis", "card_product": "platinum", "card_last4": "5582"}
    ctx = call_context(Call(customer).record())
    assert (ctx.customer_id, ctx.card_id) == ("CUST-1002", "CARD-5582")
    debit = call_context(Call({"full_name": "Karen Davis", "card_product": "debit"}).record())
    assert debit.card_id == "CARD-3106"


def test_context_reads_recorded_scenario_metadata() -> None:
    scenario = load_scenario("address_change_before_replacement")
    call = Call()
    call.metadata["scenario"] = scenario.metadata()
    ctx = call_context(call.record())
    assert ctx == call_context(call.record(), scenario)
    assert (ctx.customer_id, ctx.card_id) == ("CUST-1002", "CARD-5582")
    assert ctx.new_address == "5 Pine Road, Riverside"


# ------------------------------------------------------------------------------ files


def test_load_call_reads_what_the_checks_look_at(tmp_path: Path) -> None:
    record = replaced_call().record()
    (tmp_path / "transcript.json").write_text(json.dumps({"turns": record.turns}))
    (tmp_path / "function_calls.json").write_text(json.dumps({"calls": record.function_calls}))
    metadata = {**record.metadata, "bank_state": record.bank_state}
    (tmp_path / "call_metadata.json").write_text(json.dumps(metadata))
    loaded = load_call(tmp_path)
    assert (loaded.turns, loaded.function_calls) == (record.turns, record.function_calls)
    assert loaded.bank_state == record.bank_state
    assert loaded.metadata["end_reason"] == "caller_hung_up"
    assert loaded.load_error is None
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_call(tmp_path / "missing")


async def test_real_text_call_is_evaluated(tmp_path: Path, local_server) -> None:
    result = await dualagent.simulate(route="text", output_dir=tmp_path, local_server=local_server)
    record = load_call(result.path)
    goal = load_persona("typical").goal
    outcome = evaluate(record, goal)
    data = outcome.as_dict()
    assert data["result"] in ("success", "failure", "incomplete")
    assert [c["name"] for c in data["criteria"]] == goal.success_criteria
    assert [f["name"] for f in data["failures"]] == goal.failure_conditions
    assert all(c["evidence"] for c in data["criteria"] + data["failures"])
    json.dumps(data)

    ordered = any(c["name"] == "order_replacement_card" and c["ok"] for c in record.function_calls)
    confirmed = next(c for c in outcome.criteria if c.name == "card replacement confirmed")
    assert confirmed.passed == ordered
    assert ordered, "the typical caller's default call orders a replacement"

    # Tampered copy: the order never happened (neither in the log nor in the bank).
    tampered = record.model_copy(deep=True)
    tampered.function_calls = [
        c for c in tampered.function_calls if c["name"] != "order_replacement_card"
    ]
    tampered.bank_state["replacement_orders"] = []
    tampered_outcome = evaluate(tampered, goal)
    tampered_confirmed = next(
        c for c in tampered_outcome.criteria if c.name == "card replacement confirmed"
    )
    assert not tampered_confirmed.passed
    assert tampered_outcome.result != "success"
