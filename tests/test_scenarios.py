"""Scenario files: every shipped scenario validates; bad files fail with file, field and reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import dualagent
from dualagent.agents import INTENTS
from dualagent.call.record import load_call
from dualagent.evaluation.checks import STANDARD_CHECKS, StandardCheck
from dualagent.personas import CallerType
from dualagent.scenarios import (
    Scenario,
    ScenarioError,
    list_scenarios,
    load_scenario,
    scenario_from_dict,
)

REQUIRED = {
    "lost_gold_card",
    "stolen_card_dispute",
    "balance_and_transactions",
    "address_change_before_replacement",
    "cannot_verify_identity",
    "demands_human",
    "hurried_interrupter",
    "elderly_needs_repetition",
}


def test_the_required_scenarios_ship() -> None:
    assert set(list_scenarios()) >= REQUIRED


@pytest.mark.parametrize("name", list_scenarios())
def test_every_shipped_scenario_loads_and_resolves(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.name == name
    assert scenario.description
    persona = scenario.resolve_persona()
    success, failure = scenario.check_plan()
    assert [t for t, _ in success] == persona.goal.success_criteria
    assert [t for t, _ in failure] == persona.goal.failure_conditions
    assert success, "a scenario without success criteria cannot succeed meaningfully"
    assert 1 <= scenario.turn_limit <= 200
    metadata = json.loads(json.dumps(scenario.metadata()))
    assert metadata["agent"] == scenario.agent_name
    if not scenario.banking:  # another domain: its caller's situation and facts, no bank
        assert scenario.situation and scenario.facts and scenario.goal is not None
        assert (metadata["situation"], metadata["facts"]) == (scenario.situation, scenario.facts)
        assert "customer" not in metadata
        return
    assert scenario.intent in INTENTS
    facts = scenario.caller_facts()
    fixture = scenario.bank_fixture()
    assert scenario.customer_id() in {c.customer_id for c in fixture.customers}
    assert facts.full_name in {c.full_name for c in fixture.customers}


def test_bank_scenarios_phone_the_bank_and_clinic_ones_the_clinic() -> None:
    agents = {name: load_scenario(name).agent_name for name in list_scenarios()}
    assert {a for n, a in agents.items() if n.startswith("clinic_")} == {"clinic"}
    assert {a for n, a in agents.items() if not n.startswith("clinic_")} == {"bank"}


def test_shipped_scenarios_cover_the_four_caller_types() -> None:
    types = {load_scenario(n).resolve_persona().personality.type for n in list_scenarios()}
    assert {
        CallerType.TYPICAL,
        CallerType.FRUSTRATED,
        CallerType.ELDERLY,
        CallerType.HURRIED,
    } <= types


def test_expected_failures_are_declared() -> None:
    assert load_scenario("cannot_verify_identity").expected_outcome == "failure"
    assert load_scenario("demands_human").expected_outcome == "failure"
    assert load_scenario("demands_human").intent == "human"
    assert load_scenario("lost_gold_card").expected_outcome == "success"


def test_caller_overrides_reach_the_facts() -> None:
    wrong = load_scenario("cannot_verify_identity")
    facts = wrong.caller_facts()
    assert facts.date_of_birth == wrong.caller.wrong_date_of_birth != "1958-03-14"
    assert facts.knows_card_last4 is False
    moved = load_scenario("address_change_before_replacement").caller_facts()
    assert (moved.full_name, moved.card_product) == ("Karen Davis", "platinum")
    assert moved.new_address == "5 Pine Road, Riverside"
    assert load_scenario("stolen_card_dispute").caller_facts().disputed_merchant


def test_goal_override_and_inline_persona() -> None:
    stolen = load_scenario("stolen_card_dispute")
    assert stolen.resolve_persona().name == "frustrated"
    assert "unknown charge disputed" in stolen.effective_goal.success_criteria
    inline = load_scenario("balance_and_transactions").resolve_persona()
    assert inline.name == "careful_retiree" and inline.personality.type == CallerType.CUSTOM


def test_line_conditions() -> None:
    assert load_scenario("lost_card_telephone_line").line.name == "telephone"  # type: ignore[union-attr]
    assert load_scenario("elderly_needs_repetition").line.name == "clean"  # type: ignore[union-attr]
    noisy = load_scenario("hurried_interrupter").line
    assert noisy is not None and noisy.name == "noisy" and noisy.snr_db == 20


def test_criteria_without_explicit_checks_use_the_standard_ones() -> None:
    scenario = load_scenario("lost_gold_card")
    success, failure = scenario.check_plan()
    for text, spec in success + failure:
        assert isinstance(spec, StandardCheck) and spec.criterion == text
        assert text in STANDARD_CHECKS


def test_a_path_works_and_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    path = tmp_path / "my_case.yaml"
    path.write_text(yaml.safe_dump({"persona": "typical", "intent": "balance"}))
    scenario = load_scenario(path)
    assert scenario.name == "my_case" and scenario.intent == "balance"


def test_scenario_is_a_pydantic_model() -> None:
    assert isinstance(scenario_from_dict({"name": "x", "persona": "elderly"}), Scenario)


# ------------------------------------------------------------------------------ errors


def write(tmp_path: Path, data: Any, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


def test_unknown_scenario_name_lists_the_choices() -> None:
    with pytest.raises(
        ScenarioError, match=r"unknown scenario 'nope'; valid choices: .*lost_gold_card"
    ):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario("/no/such/file.yaml")


def test_bad_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "persona: [typical\nintent: lost_card\n")
    message = error_of(path)
    assert message.startswith(f"{path}: ") and "not valid YAML" in message


def test_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    assert error_of(path) == f"{path}: (root): expected a mapping, got list"


def test_unknown_persona(tmp_path: Path) -> None:
    path = write(tmp_path, {"persona": "angry"})
    message = error_of(path)
    assert message.startswith(f"{path}: persona: unknown persona 'angry'; valid choices: ")
    assert "typical" in message and "elderly" in message


def test_bad_inline_persona_names_the_persona_field(tmp_path: Path) -> None:
    persona = yaml.safe_load(
        (Path(__file__).parents[1] / "dualagent/data/personas/typical.yaml").read_text()
    )
    persona["personality"]["patience_level"] = 42
    message = error_of(write(tmp_path, {"persona": persona}))
    assert ": persona: personality.patience_level: " in message and "10" in message


def test_unknown_check_kind(tmp_path: Path) -> None:
    data = {
        "persona": "typical",
        "checks": {"card replacement confirmed": {"kind": "magic", "name": "x"}},
    }
    path = write(tmp_path, data)
    message = error_of(path)
    assert message.startswith(f"{path}: checks.card replacement confirmed: ")
    assert "'magic'" in message and "tool_called" in message and "card_status" in message


def test_bad_check_fields(tmp_path: Path) -> None:
    data = {
        "persona": "typical",
        "checks": {"card replacement confirmed": {"kind": "card_status", "status": "lost"}},
    }
    message = error_of(write(tmp_path, data))
    assert ": checks.card replacement confirmed.status: " in message  # no union tag in the path
    assert "unknown card status 'lost'" in message
    data["checks"] = {"card replacement confirmed": {"kind": "tool_called", "name": "order_card"}}
    assert "unknown tool 'order_card'; valid tools: " in error_of(write(tmp_path, data))


def test_nested_check_errors_name_the_path(tmp_path: Path) -> None:
    inner = {"kind": "all_of", "checks": [{"kind": "verified"}, {"kind": "said"}]}
    data = {"persona": "typical", "checks": {"card replacement confirmed": inner}}
    message = error_of(write(tmp_path, data))
    assert ": checks.card replacement confirmed.checks.1.phrases: missing (required)" in message
    data["checks"] = {"card replacement confirmed": {"name": "verify_customer"}}
    message = error_of(write(tmp_path, data))
    assert (
        ": checks.card replacement confirmed: missing kind; valid choices: tool_called" in message
    )


def test_a_criterion_named_like_a_check_kind_keeps_its_name(tmp_path: Path) -> None:
    goal = {"primary_goal": "x", "success_criteria": ["verified", "said"]}
    checks = {"verified": {"kind": "said"}, "said": {"kind": "verified", "customer_id": 7}}
    message = error_of(write(tmp_path, {"persona": "typical", "goal": goal, "checks": checks}))
    assert ": checks.verified.phrases: missing (required)" in message
    assert "; checks.said.customer_id: Input should be a valid string (got 7)" in message


def test_unknown_standard_criterion(tmp_path: Path) -> None:
    data = {
        "persona": "typical",
        "checks": {"card replacement confirmed": "customer delighted"},
    }
    message = error_of(write(tmp_path, data))
    assert "no standard check for 'customer delighted'; standard criteria: " in message


def test_criterion_without_a_check(tmp_path: Path) -> None:
    goal = {"primary_goal": "x", "success_criteria": ["customer delighted"]}
    message = error_of(write(tmp_path, {"persona": "typical", "goal": goal}))
    assert ": checks: no check for criterion 'customer delighted'" in message
    assert "card replacement confirmed" in message  # the standard choices


def test_check_for_a_text_the_goal_does_not_have(tmp_path: Path) -> None:
    data = {"persona": "typical", "checks": {"typo confirmed": {"kind": "verified"}}}
    message = error_of(write(tmp_path, data))
    assert ": checks.typo confirmed: not one of the goal's success_criteria" in message


@pytest.mark.parametrize(
    ("data", "field", "reason"),
    [
        ({"intent": "refund"}, "intent", "unknown intent 'refund'; valid choices: lost_card"),
        ({"caller": {"customer_id": "CUST-9"}}, "caller.customer_id", "unknown customer 'CUST-9'"),
        ({"caller": {"card_product": "black"}}, "caller.card_product", "no 'black' card; valid"),
        (
            {"caller": {"wrong_date_of_birth": "14/03/1958"}},
            "caller.wrong_date_of_birth",
            "YYYY-MM-DD",
        ),
        (
            {"caller": {"shoe_size": 9}},
            "caller.shoe_size",
            "unknown field (valid fields: customer_id, card_product, knows_card_last4",
        ),
        ({"line": "underwater"}, "line.name", "'clean', 'telephone' or 'noisy'"),
        ({"line": "noisy"}, "line", "needs snr_db"),
        ({"line": {"name": "clean", "snr_db": 10}}, "line", "only to the noisy line"),
        ({"max_turns": 0}, "max_turns", "greater than or equal to 1"),
        ({"duration_s": 5000}, "duration_s", "less than or equal to 1800"),
        ({"expected_outcome": "great"}, "expected_outcome", "'success', 'failure' or 'incomplete'"),
        ({"bank": {"customers": []}}, "bank.customers", "at least one customer"),
        ({"name": "has space"}, "name", "letters, digits"),
    ],
)
def test_field_errors(tmp_path: Path, data: dict[str, Any], field: str, reason: str) -> None:
    path = write(tmp_path, {"persona": "typical", **data})
    message = error_of(path)
    assert message.startswith(f"{path}: {field}: "), message
    assert reason in message


def test_bad_bank_fixture_reference(tmp_path: Path) -> None:
    bank = {
        "customers": [
            {
                "customer_id": "C1",
                "full_name": "Ann Lee",
                "date_of_birth": "1990-01-01",
                "address": "1 Road, Town",
                "phone": "555",
            }
        ],
        "cards": [
            {
                "card_id": "K1",
                "kind": "debit card",
                "product": "debit",
                "last4": "1234",
                "customer_id": "C9",
            }
        ],
    }
    message = error_of(write(tmp_path, {"persona": "typical", "bank": bank}))
    assert ": bank: " in message and "K1 refers to unknown customer C9" in message


def test_custom_bank_fixture(tmp_path: Path) -> None:
    bank = {
        "customers": [
            {
                "customer_id": "C1",
                "full_name": "Ann Lee",
                "date_of_birth": "1990-01-01",
                "address": "1 Road, Town",
                "phone": "555",
            }
        ],
        "cards": [
            {
                "card_id": "K1",
                "kind": "debit card",
                "product": "debit",
                "last4": "1234",
                "customer_id": "C1",
            }
        ],
    }
    scenario = load_scenario(
        write(tmp_path, {"persona": "typical", "bank": bank, "caller": {"card_product": "debit"}})
    )
    facts = scenario.caller_facts()
    assert (facts.full_name, facts.card_last4, scenario.customer_id()) == ("Ann Lee", "1234", "C1")


# ------------------------------------------------------------------------------ end to end


BANK_SCENARIOS = [n for n in list_scenarios() if load_scenario(n).banking]


@pytest.mark.parametrize("name", BANK_SCENARIOS)
async def test_every_shipped_scenario_reaches_its_expected_outcome(
    name: str, local_server, tmp_path: Path
) -> None:
    scenario = load_scenario(name)
    result = await dualagent.simulate(
        scenario=name, route="text", local_server=local_server, output_dir=tmp_path
    )
    record = load_call(result.path)
    outcome = record.outcome_details
    unmet = [c for c in outcome.get("criteria", []) if not c["passed"]]
    met = [f for f in outcome.get("failures", []) if f["passed"]]
    why = json.dumps({"unmet criteria": unmet, "failure conditions met": met}, indent=1)
    assert record.status == "completed", record.error
    assert outcome["scenario"] == name
    assert (outcome["result"], outcome["expected_outcome"]) == (
        scenario.expected_outcome,
        scenario.expected_outcome,
    ), why
    assert outcome["as_expected"] is True
