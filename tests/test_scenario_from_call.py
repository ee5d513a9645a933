"""`dualagent scenario-from-call`: a recorded call or a real call's transcript becomes a scenario
draft that loads back (goal, facts, persona settings, the checks the call failed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dualagent
from dualagent.cli import main
from dualagent.scenario_from_call import (
    draft_from_path,
    draft_scenario,
    infer_facts,
    llm_reading,
    load_real_call,
    write_draft,
)
from dualagent.scenarios import load_scenario
from tests.chat_stub import ChatStub, StubReply

# A real call as a user would export it: speaker turns with times, no recording of ours.
REAL_CALL = {
    "agent": "clinic",
    "turns": [
        {"speaker": "agent", "text": "Riverside Clinic, how can I help?", "start_s": 0.0, "end_s": 2.0},
        {"speaker": "caller", "text": "Hi, I'd like to book Doctor Lee on Tuesday, please.",
         "start_s": 2.5, "end_s": 5.0},
        {"speaker": "agent", "text": "Of course. May I have your full name and date of birth?",
         "start_s": 5.6, "end_s": 9.0},
        {"speaker": "caller", "text": "My name is Mary Jones, and I was born on the fourteenth "
         "of April nineteen fifty eight.", "start_s": 8.2, "end_s": 13.0},
        {"speaker": "agent", "text": "Thank you. And a phone number?", "start_s": 13.5,
         "end_s": 15.0},
        {"speaker": "caller", "text": "It's five five five, one two three, four five six seven.",
         "start_s": 15.4, "end_s": 18.0},
    ],
}  # fmt: skip


@pytest.fixture
def real_call(tmp_path: Path) -> Path:
    path = tmp_path / "real_call.json"
    path.write_text(json.dumps(REAL_CALL))
    return path


def test_facts_said_in_words_are_read_as_values() -> None:
    facts = infer_facts(
        [
            "My name is David Miller, and my date of birth is March eighth nineteen ninety.",
            "The last four digits are four four two one.",
            "There is a charge of $45.99 I don't know.",
            "You can reach me at mary.jones@example.com.",
        ]
    )
    assert facts == {
        "name": "David Miller",
        "date_of_birth": "1990-03-08",
        "card_last4": "4421",
        "amount": "45.99",
        "email": "mary.jones@example.com",
    }


def test_a_real_calls_transcript_becomes_a_scenario_that_loads(real_call: Path, tmp_path) -> None:
    draft = draft_from_path(real_call)
    path = write_draft(draft, tmp_path / "drafted.yaml")
    scenario = load_scenario(path)
    assert scenario.agent_name == "clinic"
    assert scenario.effective_goal.primary_goal == (
        "Hi, I'd like to book Doctor Lee on Tuesday, please."
    )
    assert scenario.facts == {
        "doctor": "Doctor Lee",
        "preferred_day": "Tuesday",
        "name": "Mary Jones",
        "date_of_birth": "1958-04-14",
        "phone_number": "5551234567",
    }
    personality = scenario.resolve_persona().personality
    # The caller started before the agent's second turn ended: one of its two later turns.
    assert personality.tendency_to_interrupt == 0.5
    assert personality.patience_level == 8
    assert draft.failed_checks == []


async def test_a_language_model_reads_goal_situation_and_facts(real_call: Path) -> None:
    answer = {
        "primary_goal": "Book an appointment with Doctor Lee on Tuesday",
        "situation": "You need to see Doctor Lee this week.",
        "facts": {"patient name": "Mary Jones", "date_of_birth": "1958-04-14"},
    }
    async with ChatStub(lambda request: StubReply(text=json.dumps(answer))) as stub:
        call = load_real_call(real_call)
        reading = await llm_reading(f"{stub.base_url}#stub-model", call)
    assert "Mary Jones, and I was born" in json.dumps(stub.requests[0])  # it read the call
    draft = draft_scenario(call, reading=reading)
    goal = draft.data["persona"]["goal"]
    assert goal["primary_goal"] == "Book an appointment with Doctor Lee on Tuesday"
    assert draft.data["situation"] == "You need to see Doctor Lee this week."
    assert draft.data["facts"] == {"patient_name": "Mary Jones", "date_of_birth": "1958-04-14"}


async def test_a_failed_bank_call_keeps_its_caller_and_lists_the_checks_it_failed(
    local_server, tmp_path: Path
) -> None:
    result = await dualagent.simulate(
        scenario="cannot_verify_identity",
        route="text",
        output_dir=tmp_path,
        conversation_id="failed",
        local_server=local_server,
    )
    assert result.outcome == "failure", result.explain()
    draft = draft_from_path(result.path)
    outcome = result.metadata["outcome"]
    expected = [c["name"] for c in outcome["criteria"] if not c["passed"]]
    expected += [c["name"] for c in outcome["failures"] if c["passed"]]
    assert draft.failed_checks == expected and expected
    drafted = load_scenario(write_draft(draft, tmp_path / "failed.yaml"))
    source = load_scenario("cannot_verify_identity")
    assert drafted.effective_goal == source.effective_goal
    assert drafted.caller_facts() == source.caller_facts()  # the wrong date of birth too
    assert drafted.intent == source.intent
    assert drafted.expected_outcome == "failure"


def test_the_command_writes_the_draft_and_says_what_it_found(
    real_call: Path, tmp_path: Path, capsys
) -> None:
    output = tmp_path / "out.yaml"
    assert main(["scenario-from-call", str(real_call), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "name=Mary Jones" in printed and "date_of_birth=1958-04-14" in printed
    assert load_scenario(output).name == "from_real_call"


@pytest.mark.parametrize(
    ("turns", "output", "needle"),
    [
        (None, "out.yaml", "no such folder or file"),
        ([{"speaker": "robot", "text": "hi"}], "out.yaml", "'robot' is not a speaker"),
        ([{"speaker": "agent", "text": "hi"}], "out.yaml", "no caller turns"),
        ([{"speaker": "caller", "text": "hi", "start_s": "soon"}], "out.yaml", "'soon'"),
        ({"turns": "none"}, "out.yaml", "expected a list of turns"),
        ([{"speaker": "caller", "text": "hi"}], "out.txt", "expected a .yaml file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_is_written(
    turns, output: str, needle: str, tmp_path: Path, capsys
) -> None:
    source = tmp_path / "call.json"
    if turns is not None:
        source.write_text(json.dumps(turns))
    code = main(["scenario-from-call", str(source), "--output", str(tmp_path / output)])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in error and len(error.splitlines()) == 1, error
    assert not (tmp_path / output).exists()


def test_an_existing_output_is_kept_unless_forced(real_call: Path, tmp_path: Path, capsys) -> None:
    output = tmp_path / "mine.yaml"
    output.write_text("# my edits\n")
    assert main(["scenario-from-call", str(real_call), "-o", str(output)]) == 2
    assert "--force" in capsys.readouterr().err
    assert output.read_text() == "# my edits\n"
    assert main(["scenario-from-call", str(real_call), "-o", str(output), "--force"]) == 0
    assert load_scenario(output).agent_name == "clinic"


async def test_the_command_with_llm_asks_the_endpoint_and_says_so_when_it_is_down(
    real_call: Path, tmp_path: Path, capsys
) -> None:
    import asyncio

    answer = {"primary_goal": "See Doctor Lee on Tuesday", "situation": "", "facts": {}}
    output = tmp_path / "llm.yaml"
    async with ChatStub(lambda request: StubReply(text=json.dumps(answer))) as stub:
        argv = ["scenario-from-call", str(real_call), "-o", str(output)]
        code = await asyncio.to_thread(main, [*argv, "--llm", f"{stub.base_url}#stub"])
    assert code == 0
    assert load_scenario(output).effective_goal.primary_goal == "See Doctor Lee on Tuesday"
    capsys.readouterr()
    down = tmp_path / "down.yaml"
    argv = ["scenario-from-call", str(real_call), "-o", str(down)]
    code = await asyncio.to_thread(main, [*argv, "--llm", f"{stub.base_url}#stub"])  # closed
    error = capsys.readouterr().err.strip()
    assert code == 2 and "--llm" in error and len(error.splitlines()) == 1, error
    assert not down.exists()
