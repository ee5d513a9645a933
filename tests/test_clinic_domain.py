"""Any domain (issue 14 item 4): the shipped clinic, scenarios naming their agent, the caller of a
non-bank agent, and checks that judge any agent's calls.

Everything runs for real: the clinic's tools on its state, the spec loader, the Toolbox, the
scenario loader, plan_call, the recorder writing call folders and load_call reading them back.
No brain is involved (the spec-driven scripted brains have their own tests).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from dualagent import datafiles
from dualagent.agent_spec import list_agents, load_agent
from dualagent.call.options import CallOptions
from dualagent.call.plan import plan_call
from dualagent.call.record import CallRecord, load_call
from dualagent.call.recording import CallRecorder
from dualagent.call.tools import Toolbox
from dualagent.clinic import TOOLS, ClinicState, default_clinic, new_state
from dualagent.errors import InputError
from dualagent.evaluation.checks import (
    DurationAtMost,
    EndReasonIn,
    SaidMatching,
    StateIs,
    ToolCalled,
    ToolNotCalled,
    TurnsAtMost,
    check_context,
    run_check,
)
from dualagent.evaluation.outcome import evaluate
from dualagent.realtime.local.profile import parse_profile
from dualagent.scenarios import ScenarioError, list_scenarios, load_scenario

CLINIC_SCENARIOS = [n for n in list_scenarios() if n.startswith("clinic_")]
MARY = {"full_name": "Mary Jones", "date_of_birth": "1980-05-14"}
SUSAN = {"full_name": "Susan Clark", "date_of_birth": "1962-07-21"}
DAVID = {"full_name": "David Miller", "date_of_birth": "1990-03-08"}


def call(state: ClinicState, tool: str, **arguments: Any) -> dict[str, Any]:
    return TOOLS[tool](arguments, state)


# ------------------------------------------------------------------------------ the clinic's tools


def test_find_patient_needs_the_name_and_date_of_birth_as_said() -> None:
    state = new_state()
    found = call(state, "find_patient", full_name="mary jones", date_of_birth="1980-05-14")
    assert (found["ok"], found["patient_id"], found["appointments"]) == (True, "P1", [])
    # The spoken forms a scripted agent fills in from speech.
    for said in ("May fourteenth nineteen eighty", "the 14th of May, 1980", "may 14 1980"):
        assert call(state, "find_patient", full_name="Mary Jones", date_of_birth=said)["ok"]
    wrong = call(state, "find_patient", full_name="Mary Jones", date_of_birth="1980-05-15")
    assert wrong == {
        "ok": False,
        "error": "I could not find a patient with that name and date of birth",
    }
    vague = call(state, "find_patient", full_name="Mary Jones", date_of_birth="in May")
    assert vague["ok"] is False and "the day, the month and the year" in vague["error"]
    susan = call(state, "find_patient", **SUSAN)
    assert susan["appointments"] == [
        {
            "appointment_id": "A-1",
            "clinician_name": "Doctor Lee",
            "appointment_day": "Tuesday",
            "appointment_time": "09:00",
        }
    ]
    assert state.snapshot()["verified_patients"] == ["P1", "P3"]


def test_find_slots_by_clinician_specialty_or_day() -> None:
    state = new_state()
    tuesday = call(state, "find_slots", day="tuesday please")
    # Clinician by clinician (in the clinic's order), then by time; Doctor Lee's 9:00 is taken.
    assert [(s["clinician"], s["time"]) for s in tuesday["slots"]] == [
        ("Doctor Lee", "14:00"),
        ("Nurse Green", "10:00"),
        ("Nurse Green", "11:00"),
    ]
    assert tuesday["day"] == "Tuesday" and tuesday["summary"] == "We have free times on Tuesday."
    lee = call(state, "find_slots", day="Thursday", clinician="Dr. Lee")
    assert [s["slot_id"] for s in lee["slots"]] == ["LEE-THU-1000", "LEE-THU-1500"]
    nurse = call(state, "find_slots", day="Thursday", specialty="a nurse")
    assert {s["clinician"] for s in nurse["slots"]} == {"Nurse Green"}
    friday = call(state, "find_slots", day="Friday")
    assert friday["slots"] == [] and friday["summary"] == "We have no free time on Friday."
    lee_friday = call(state, "find_slots", day="Friday", clinician="Doctor Lee")
    assert lee_friday["summary"] == (
        "Doctor Lee has no free time on Friday. Doctor Lee is free on Monday, Tuesday or Thursday."
    )
    nobody = call(state, "find_slots", day="Monday", clinician="Doctor Who")
    assert nobody["ok"] is False and "Doctor Lee, Doctor Brown and Nurse Green" in nobody["error"]


def test_book_a_free_slot_for_a_found_patient_and_never_twice() -> None:
    state = new_state()
    early = call(state, "book_appointment", patient_id="P1", slot_id="LEE-TUE-1400")
    assert early == {
        "ok": False,
        "error": "book_appointment: find the patient with find_patient first",
    }
    call(state, "find_patient", **MARY)
    booked = call(state, "book_appointment", patient_id="P1", slot_id="LEE-TUE-1400")
    assert booked == {
        "ok": True,
        "appointment_id": "A-5",  # after the default clinic's A-1..A-4
        "patient": "Mary Jones",
        "clinician": "Doctor Lee",
        "day": "Tuesday",
        "time": "14:00",
        "status": "booked",
    }
    snapshot = state.snapshot()
    assert snapshot["appointments"][-1]["slot_id"] == "LEE-TUE-1400"
    assert {s["slot_id"]: s["free"] for s in snapshot["slots"]}["LEE-TUE-1400"] is False
    # Double booking: the same slot for another patient, or the same patient again.
    call(state, "find_patient", **DAVID)
    taken = call(state, "book_appointment", patient_id="P4", slot_id="LEE-TUE-1400")
    assert taken == {"ok": False, "error": "Tuesday at 14:00 is already taken"}
    again = call(state, "book_appointment", patient_id="P1", slot_id="LEE-TUE-1400")
    assert again["ok"] is False and "already taken" in again["error"]
    also_taken = call(state, "book_appointment", patient_id="P4", slot_id="LEE-TUE-0900")
    assert also_taken["error"] == "Tuesday at 09:00 is already taken"
    unknown = call(state, "book_appointment", patient_id="P1", slot_id="LEE-SUN-0900")
    assert unknown["ok"] is False and "no slot 'LEE-SUN-0900'" in unknown["error"]
    assert len([a for a in state.snapshot()["appointments"] if a["status"] == "booked"]) == 5


def test_reschedule_moves_the_same_appointment_and_frees_the_old_slot() -> None:
    state = new_state()
    call(state, "find_patient", **DAVID)
    moved = call(
        state,
        "reschedule_appointment",
        patient_id="P4",
        appointment_id="A-2",
        slot_id="BROWN-WED-0900",
    )
    assert moved["ok"] is True and (moved["day"], moved["time"]) == ("Wednesday", "09:00")
    assert (moved["old_day"], moved["old_time"]) == ("Monday", "14:00")
    appointment = next(a for a in state.snapshot()["appointments"] if a["appointment_id"] == "A-2")
    assert appointment["rescheduled_from"] == {
        "slot_id": "BROWN-MON-1400",
        "day": "Monday",
        "time": "14:00",
    }
    assert [s["slot_id"] for s in call(state, "find_slots", day="Monday")["slots"]].count(
        "BROWN-MON-1400"
    ) == 1
    same = call(
        state,
        "reschedule_appointment",
        patient_id="P4",
        appointment_id="A-2",
        slot_id="BROWN-WED-0900",
    )
    assert same == {"ok": False, "error": "that is the time the appointment already has"}
    # Only the found patient's own appointments.
    other = call(
        state,
        "reschedule_appointment",
        patient_id="P4",
        appointment_id="A-1",
        slot_id="LEE-MON-0900",
    )
    assert other == {"ok": False, "error": "you have no appointment 'A-1'"}


def test_cancel_frees_the_slot_once() -> None:
    state = new_state()
    call(state, "find_patient", **SUSAN)
    cancelled = call(state, "cancel_appointment", patient_id="P3", appointment_id="A-1")
    assert cancelled["status"] == "cancelled" and cancelled["clinician"] == "Doctor Lee"
    assert state.snapshot()["appointments"][0]["status"] == "cancelled"
    assert "LEE-TUE-0900" in [s["slot_id"] for s in call(state, "find_slots", day="Tue")["slots"]]
    twice = call(state, "cancel_appointment", patient_id="P3", appointment_id="A-1")
    assert twice == {"ok": False, "error": "that appointment is already cancelled"}


def test_transfer_and_end_call_end_the_line() -> None:
    state = new_state()
    assert call(state, "transfer_to_human", reason="test results")["queue"] == "front desk"
    after = call(state, "find_slots", day="Monday")
    assert after == {
        "ok": False,
        "error": "find_slots: the call has ended (transferred_to_human)",
    }
    snapshot = state.snapshot()
    assert (snapshot["call_ended"], snapshot["ended_by"]) == ("transferred_to_human", "cs")
    assert snapshot["transfers"] == [{"reason": "test results", "queue": "front desk"}]


@pytest.mark.parametrize(
    ("tool", "arguments", "error"),
    [
        ("find_slots", None, "find_slots: arguments must be an object, got NoneType"),
        ("find_slots", ["Monday"], "find_slots: arguments must be an object, got list"),
        ("find_slots", {}, "find_slots needs day"),
        ("find_slots", {"day": 3.5}, "find_slots: day must be text, got float"),
        ("find_slots", {"day": True}, "find_slots: day must be text, got bool"),
        ("find_slots", {"day": "   "}, "find_slots needs day"),
        ("find_slots", {"day": "someday"}, "which day? We see patients Monday to Friday"),
        (
            "find_slots",
            {"day": "Monday", "doctor": "Lee"},
            "find_slots: unknown argument 'doctor'; valid: day, clinician, specialty",
        ),
        ("find_patient", {"full_name": "Mary Jones"}, "find_patient needs date_of_birth"),
        (
            "book_appointment",
            {"patient_id": {"id": "P1"}, "slot_id": "x"},
            "book_appointment: patient_id must be text, got dict",
        ),
        ("book_appointment", {"slot_id": "x"}, "book_appointment needs patient_id"),
        (
            "reschedule_appointment",
            {"patient_id": "P9", "appointment_id": "A-1", "slot_id": "x"},
            "reschedule_appointment: there is no patient 'P9'",
        ),
        (
            "cancel_appointment",
            {"patient_id": "P3"},
            "cancel_appointment needs appointment_id",
        ),
        ("transfer_to_human", {}, "transfer_to_human needs reason"),
        ("end_call", {"reason": ["bye"]}, "end_call: reason must be text, got list"),
    ],
)
def test_bad_arguments_are_error_results_never_exceptions(
    tool: str, arguments: Any, error: str
) -> None:
    state = new_state()
    before = state.snapshot()
    assert TOOLS[tool](arguments, state) == {"ok": False, "error": error}
    assert state.snapshot() == before  # a refused call changes nothing


def test_a_tool_without_a_clinic_state_answers_an_error() -> None:
    for name, tool in TOOLS.items():
        assert tool({"reason": "x"}, None) == {
            "ok": False,
            "error": f"{name}: the clinic's records are not available",
        }


def test_the_clinic_is_deterministic_and_its_snapshot_is_json() -> None:
    def session() -> dict[str, Any]:
        state = new_state()
        call(state, "find_patient", **MARY)
        call(state, "book_appointment", patient_id="P1", slot_id="GREEN-THU-1400")
        call(state, "book_appointment", patient_id="P1", slot_id="LEE-MON-0900")
        return state.snapshot()

    first = session()
    assert first == session()
    assert json.loads(json.dumps(first)) == first
    assert [a["appointment_id"] for a in first["appointments"]][-2:] == ["A-5", "A-6"]


def test_a_scenarios_state_replaces_the_default_lists_and_is_not_changed() -> None:
    data = {
        "patients": [{"patient_id": "X1", "full_name": "Ann Lee", "date_of_birth": "1990-01-01"}],
        "appointments": [{"appointment_id": "B-7", "patient_id": "X1", "slot_id": "LEE-MON-0900"}],
    }
    kept = json.dumps(data)
    state = new_state(data)
    assert [p.full_name for p in state.patients] == ["Ann Lee"]
    assert len(state.clinicians) == len(default_clinic()["clinicians"])
    call(state, "find_patient", full_name="Ann Lee", date_of_birth="1990-01-01")
    booked = call(state, "book_appointment", patient_id="X1", slot_id="LEE-MON-1000")
    assert booked["appointment_id"] == "A-8"  # the counter continues after B-7
    assert json.dumps(data) == kept


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"slots": [{"slot_id": "S", "clinician_id": "LEE", "day": "Funday", "time": "9:00"}]},
         "slots.0.day: 'Funday' is not a weekday"),
        ({"slots": [{"slot_id": "S", "clinician_id": "LEE", "day": "Monday", "time": "25:00"}]},
         "slots.0.time: '25:00' is not a time as HH:MM"),
        ({"appointments": [{"appointment_id": "A", "patient_id": "P9", "slot_id": "LEE-MON-0900"}]},
         "unknown patient 'P9'"),
        ({"rooms": []}, "rooms: unknown field"),
        (["not", "a", "mapping"], "a clinic's state must be a mapping, got list"),
    ],
)  # fmt: skip
def test_bad_clinic_data_is_one_line(data: Any, message: str) -> None:
    with pytest.raises(ValueError) as info:
        new_state(data)
    assert message in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------ the clinic spec


def test_the_clinic_spec_ships_with_its_tools() -> None:
    assert "clinic" in list_agents()
    spec = load_agent("clinic")
    assert (spec.name, spec.organisation, spec.local_model) == (
        "clinic",
        "Riverside Clinic",
        "local-agent",
    )
    assert [t.name for t in spec.tools] == list(TOOLS)
    assert spec.ending_tools() == {
        "transfer_to_human": "transferred_to_human",
        "end_call": "hang_up",
    }
    assert isinstance(spec.new_state(None), ClinicState)
    for tool in spec.tools:
        Draft202012Validator.check_schema(tool.parameters)
        assert tool.implementation == "python" and tool.function is TOOLS[tool.name]
        properties = tool.parameters["properties"]
        assert all(p.get("description") for p in properties.values()), tool.name
    say = {t.name: t.say for t in spec.tools}
    assert say["book_appointment"] == "You are booked with {clinician} on {day} at {time}."
    # Every field a say template reads is in the tool's answer.
    state = spec.new_state(None)
    call(state, "find_patient", **DAVID)
    answers = {
        "find_patient": call(state, "find_patient", **MARY),
        "find_slots": call(state, "find_slots", day="Monday"),
        "book_appointment": call(state, "book_appointment", patient_id="P1", slot_id="LEE-MON-0900"),
        "reschedule_appointment": call(
            state, "reschedule_appointment", patient_id="P1", appointment_id="A-5",
            slot_id="LEE-MON-1000",
        ),
        "cancel_appointment": call(state, "cancel_appointment", patient_id="P4", appointment_id="A-2"),
    }  # fmt: skip
    for name, answer in answers.items():
        assert answer["ok"] is True, answer
        say[name].format(**answer)


async def test_the_toolbox_runs_the_clinic_spec_on_its_state() -> None:
    spec = load_agent("clinic")
    toolbox = Toolbox(spec, spec.new_state({}))
    found = await toolbox("cs", "find_patient", json.dumps(MARY))
    assert found["patient_id"] == "P1"
    booked = await toolbox(
        "cs", "book_appointment", '{"patient_id": "P1", "slot_id": "GREEN-TUE-1000"}'
    )
    assert booked["ok"] is True and booked["clinician"] == "Nurse Green"
    bad = await toolbox("cs", "book_appointment", '{"patient_id": 7}')
    assert bad == {"ok": False, "error": "book_appointment needs slot_id"}
    snapshot = toolbox.snapshot()
    assert snapshot["appointments"][-1]["slot_id"] == "GREEN-TUE-1000"


# ------------------------------------------------------------------------------ clinic scenarios


def test_four_or_more_clinic_scenarios_ship() -> None:
    assert {
        "clinic_book_appointment",
        "clinic_reschedule",
        "clinic_cancel",
        "clinic_no_slot_on_friday",
    } <= set(CLINIC_SCENARIOS)


@pytest.mark.parametrize("name", CLINIC_SCENARIOS)
def test_clinic_scenarios_load_as_the_clinics(name: str) -> None:
    scenario = load_scenario(name)
    assert scenario.agent == "clinic" and scenario.agent_name == "clinic"
    assert not scenario.banking and scenario.agent_spec().name == "clinic"
    assert scenario.situation and scenario.facts and scenario.goal is not None
    assert scenario.intent and scenario.intent not in {"lost_card"}
    metadata = json.loads(json.dumps(scenario.metadata()))
    assert metadata["agent"] == "clinic"
    assert metadata["situation"] == scenario.situation and metadata["facts"] == scenario.facts
    assert "customer" not in metadata
    success, failure = scenario.check_plan()
    assert success and all(spec is not None for _, spec in success + failure)


# ------------------------------------------------------------------------------ the caller


def test_the_clinic_callers_profile_is_the_domain_contract(tmp_path: Path) -> None:
    plan = plan_call(
        CallOptions(scenario="clinic_book_appointment", route="text", output_dir=tmp_path)
    )
    instructions = plan.sessions["caller"].instructions or ""
    profile = parse_profile(instructions)
    assert set(profile) == {
        "role", "seed", "domain", "organisation", "persona", "goal", "situation", "facts",
    }  # fmt: skip
    scenario = load_scenario("clinic_book_appointment")
    assert profile["role"] == "caller" and profile["seed"] == plan.options.seed
    assert (profile["domain"], profile["organisation"]) == ("clinic", "Riverside Clinic")
    assert profile["goal"]["primary_goal"] == "Book an appointment with Doctor Lee on Tuesday"
    assert profile["situation"] == scenario.situation
    assert profile["facts"] == {
        "patient_name": "Mary Jones",
        "date_of_birth": "1980-05-14",
        "clinician": "Doctor Lee",
        "preferred_day": "Tuesday",
    }
    assert profile["persona"]["type"] == "typical"
    prose = instructions.split("## Agent profile")[0]
    assert "You are phoning Riverside Clinic" in prose and "Mary Jones" in prose
    assert scenario.situation in prose
    for banking in ("bank", "card", "First Bank", "customer"):
        assert banking.lower() not in prose.lower()
    # The recording says which agent, situation and facts.
    assert plan.metadata["scenario"]["agent"] == "clinic"
    assert plan.metadata["scenario"]["facts"]["patient_name"] == "Mary Jones"
    assert plan.intent == "book_appointment" and plan.models["cs"] == "local-agent"


def test_the_bank_callers_profile_is_unchanged(tmp_path: Path) -> None:
    plan = plan_call(CallOptions(scenario="lost_gold_card", route="text", output_dir=tmp_path))
    profile = parse_profile(plan.sessions["caller"].instructions)
    assert set(profile) == {"role", "seed", "intent", "persona", "goal", "facts"}
    assert profile["intent"] == "lost_card"
    assert profile["facts"]["full_name"] == "Nancy Wilson" and profile["facts"]["card_last4"]
    assert "First Bank" in (plan.sessions["caller"].instructions or "")


def test_intents_are_banking_only_for_the_bank(tmp_path: Path) -> None:
    plan = plan_call(
        CallOptions(
            scenario="clinic_cancel", intent="change of plans", route="text", output_dir=tmp_path
        )
    )
    assert plan.intent == "change of plans"
    with pytest.raises(InputError, match="invalid intent 'change of plans'; valid choices: lost"):
        plan_call(
            CallOptions(scenario="lost_gold_card", intent="change of plans", output_dir=tmp_path)
        )


# ------------------------------------------------------------------------------ judging a call


def record_clinic_call(
    folder: Path, name: str, slot_id: str, end_reason: str = "cs_ended_call"
) -> CallRecord:
    """A clinic call as the bridge records it: the real tools on the scenario's state, turns,
    the agent's final state, the scenario's metadata; then read back with load_call."""
    scenario = load_scenario("clinic_book_appointment")
    state = scenario.agent_spec().new_state(scenario.state)
    recorder = CallRecorder(folder, name, metadata={"scenario": scenario.metadata()})
    said = [
        ("cs", "Thank you for calling Riverside Clinic, this is Sam. How can I help you today?"),
        ("caller", "I'd like to book an appointment with Doctor Lee on Tuesday."),
        ("cs", "Could you tell me your full name and your date of birth?"),
        ("caller", "My name is Mary Jones, and my date of birth is May fourteenth nineteen eighty."),
    ]  # fmt: skip
    tools = [
        ("find_patient", {"full_name": "Mary Jones", "date_of_birth": "May 14 1980"}),
        ("find_slots", {"day": "Tuesday"}),
        ("book_appointment", {"patient_id": "P1", "slot_id": slot_id}),
    ]
    for i, (speaker, text) in enumerate(said):
        recorder.add_turn(
            {"speaker": speaker, "text": text, "heard": text, "start_s": 5.0 * i,
             "end_s": 5.0 * i + 4.0}
        )  # fmt: skip
    for i, (tool, arguments) in enumerate(tools):
        output = TOOLS[tool](arguments, state)
        recorder.add_function_call(
            {"call_id": f"c{i}", "agent": "cs", "name": tool, "arguments": arguments,
             "output": output, "ok": output.get("ok", False), "t_s": 25.0 + 5 * i}
        )  # fmt: skip
    booked = state.snapshot()["appointments"][-1]
    text = f"You are booked with {booked['clinician']} on {booked['day']} at two p m."
    recorder.add_turn(
        {"speaker": "cs", "text": text, "heard": text, "start_s": 45.0, "end_s": 49.0}
    )
    recorder.update_metadata(agent_state=state.snapshot(), turn_count=5, timeline_s=49.0)
    recorder.close(end_reason=end_reason)
    return load_call(folder / name)


def test_a_recorded_clinic_call_is_judged_by_its_scenarios_checks(tmp_path: Path) -> None:
    scenario = load_scenario("clinic_book_appointment")
    good = evaluate(record_clinic_call(tmp_path, "good", "LEE-TUE-1400"), scenario)
    assert (good.result, good.as_expected) == ("success", True), good.as_dict()
    evidence = {c.name: c.evidence for c in good.criteria}
    assert "appointments.4" in evidence["appointment booked with Doctor Lee on Tuesday"]
    assert "booked with Doctor Lee on Tuesday" in evidence["booking confirmed to the caller"]
    # Booked on Monday instead: the criterion fails and the failure condition holds.
    wrong = evaluate(record_clinic_call(tmp_path, "wrong", "LEE-MON-1000"), scenario)
    assert wrong.result == "failure" and wrong.as_expected is False
    assert wrong.unmet_criteria == [
        "appointment booked with Doctor Lee on Tuesday",
        "booking confirmed to the caller",
    ]
    assert wrong.failure_conditions_met == ["booked on another day"]


def test_generic_checks_on_a_recorded_folder(tmp_path: Path) -> None:
    record = record_clinic_call(tmp_path, "call", "LEE-TUE-1400")
    assert record.metadata["agent_state"]["appointments"][4]["status"] == "booked"

    def holds(spec: Any) -> bool:
        return run_check(spec, record).passed

    # state: an index, a wildcard, a count, a pattern, a choice, absence
    assert holds(StateIs(path="appointments.4.status", equals="Booked"))
    assert holds(StateIs(path="appointments.-1.clinician", equals="doctor lee"))
    assert not holds(StateIs(path="appointments.0.status", equals="cancelled"))
    assert holds(StateIs(path="appointments.*", contains={"patient_id": "P1", "day": "Tuesday"}))
    assert holds(StateIs(path="appointments.*.status", equals="booked", count=5))
    assert not holds(StateIs(path="appointments.*.status", equals="booked", count=4))
    assert holds(StateIs(path="slots.*.slot_id", matches="^GREEN-THU"))
    assert holds(StateIs(path="appointments.4.day", one_of=["Monday", "Tuesday"]))
    assert holds(StateIs(path="appointments.9", exists=False))
    assert not holds(StateIs(path="verified_patients.0", exists=False))
    assert holds(StateIs(path="verified_patients"))
    missing = run_check(StateIs(path="appointments.9.status", equals="booked"), record)
    assert not missing.passed and "appointments has 5 items" in missing.evidence
    typo = run_check(StateIs(path="appointmnets.0", exists=True), record)
    assert (
        "'appointmnets' is not one of: clinicians, patients, slots, appointments" in typo.evidence
    )
    # tools: arguments equal (by words) or matching a pattern; made in time; not made
    assert holds(ToolCalled(name="find_slots", arguments={"day": "tuesday"}))
    assert holds(ToolCalled(name="book_appointment", arguments_match={"slot_id": "^lee-tue-"}))
    assert not holds(ToolCalled(name="book_appointment", arguments_match={"slot_id": "-MON-"}))
    assert holds(ToolCalled(name="book_appointment", within_s=40))
    assert not holds(ToolCalled(name="book_appointment", within_s=30))
    assert holds(ToolNotCalled(name="cancel_appointment"))
    # said: a pattern in what the agent said (or the caller)
    assert holds(SaidMatching(pattern=r"booked with doctor (lee|brown)"))
    assert holds(SaidMatching(speaker="caller", pattern=r"nineteen eighty"))
    assert not holds(SaidMatching(speaker="caller", pattern=r"booked"))
    # end reason, turns, time
    assert holds(EndReasonIn(reasons=["cs_*"]))
    assert holds(TurnsAtMost(turns=5)) and not holds(TurnsAtMost(turns=4))
    assert holds(DurationAtMost(seconds=49)) and not holds(DurationAtMost(seconds=48.5))


def test_a_state_check_without_a_recorded_state_fails_saying_so() -> None:
    record = CallRecord(path=Path("call"))
    result = run_check(StateIs(path="appointments.0"), record)
    assert not result.passed and "no agent_state" in result.evidence


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"path": "a", "equals": 1, "exists": True}, "give one condition, not equals and exists"),
        ({"path": "a..b"}, "has an empty part"),
        ({"path": "a", "matches": "(unclosed"}, "is not a regular expression"),
        ({"path": "a", "exists": False, "count": 1}, "count does not apply"),
    ],
)
def test_bad_state_checks_are_refused(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
        StateIs.model_validate(data)


def test_tool_names_are_the_agents_own() -> None:
    # In Python, any shipped agent's tool; in a scenario, its agent's (the validation context).
    assert ToolCalled(name="book_appointment").name == "book_appointment"
    with pytest.raises(ValidationError, match=r"unknown tool 'fly'; valid tools: .*find_slots"):
        ToolCalled(name="fly")
    bank = check_context(load_agent("bank"))
    with pytest.raises(ValidationError, match="unknown tool 'book_appointment'"):
        ToolCalled.model_validate({"name": "book_appointment"}, context=bank)
    clinic = check_context(load_agent("clinic"))
    assert ToolNotCalled.model_validate({"name": "end_call"}, context=clinic)
    with pytest.raises(ValidationError, match="unknown tool 'verify_customer'"):
        ToolCalled.model_validate({"name": "verify_customer"}, context=clinic)


# ------------------------------------------------------------------------------ bad scenario files

GOAL = {
    "primary_goal": "Book an appointment",
    "success_criteria": ["booked"],
    "failure_conditions": ["transferred to human"],
}
CLINIC = {
    "agent": "clinic",
    "persona": "typical",
    "situation": "You need a check-up.",
    "facts": {"patient_name": "Mary Jones"},
    "goal": GOAL,
    "checks": {"booked": {"kind": "tool_called", "name": "book_appointment"}},
}


def write(tmp_path: Path, data: Any, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_valid_clinic_scenario_file_loads(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, CLINIC))
    assert scenario.agent_name == "clinic" and scenario.intent == "case"  # default: its name
    assert scenario.metadata()["facts"] == {"patient_name": "Mary Jones"}


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"agent": "dentist"}, "agent", "unknown agent 'dentist'; valid choices: bank, clinic"),
        ({"agent": 7}, "agent", "expected a shipped agent (bank, clinic) or a spec .yaml path"),
        ({"agent": "other.yaml"}, "agent", "agent file not found"),
        (
            {"checks": {"booked": {"kind": "tool_called", "name": "order_replacement_card"}}},
            "checks.booked.name",
            "unknown tool 'order_replacement_card'; valid tools: find_patient, find_slots",
        ),
        (
            {
                "checks": {
                    "booked": {
                        "kind": "any_of",
                        "checks": [{"kind": "card_status", "status": "active"}],
                    }
                }
            },
            "checks.booked.checks.0",
            "kind 'card_status' reads the bank's records; agent 'clinic' is not the bank",
        ),
        (
            {"goal": {**GOAL, "success_criteria": ["card replacement confirmed"]}, "checks": {}},
            "checks",
            "criterion 'card replacement confirmed' needs a check: its standard one does not fit",
        ),
        ({"facts": "Mary Jones"}, "facts", "Input should be a valid dictionary"),
        ({"facts": {"date of birth": "1980-05-14"}}, "facts", "use letters, digits and _"),
        ({"situation": ["a", "list"]}, "situation", "Input should be a valid string"),
        ({"state": ["not", "a", "mapping"]}, "state", "Input should be a valid dictionary"),
        (
            {
                "state": {
                    "slots": [
                        {"slot_id": "S", "clinician_id": "LEE", "day": "Funday", "time": "09:00"}
                    ]
                }
            },
            "state.slots.0.day",
            "'Funday' is not a weekday",
        ),
        ({"caller": {"customer_id": "CUST-1001"}}, "caller", "applies to the bank only"),
        ({"goal": None}, "goal", "missing (required: the built-in personas' goals are banking"),
        ({"intent": ""}, "intent", "an intent must not be empty"),
    ],
)
def test_bad_clinic_scenarios_are_refused_in_one_line(
    tmp_path: Path, change: dict[str, Any], field: str, reason: str
) -> None:
    data = {k: v for k, v in {**CLINIC, **change}.items() if v is not None}
    path = write(tmp_path, data)
    message = error_of(path)
    assert message.startswith(f"{path}: {field}: "), message
    assert reason in message, message


def test_bank_scenarios_keep_their_own_rules(tmp_path: Path) -> None:
    path = write(tmp_path, {"persona": "typical", "state": {"cards": []}})
    assert error_of(path) == (
        f"{path}: state: the bank's state is its records: give them under bank"
    )
    path = write(tmp_path, {"persona": "typical", "intent": "book_appointment"})
    assert error_of(path).startswith(f"{path}: intent: unknown intent 'book_appointment'")
    path = write(tmp_path, {"persona": "typical", "facts": {"full_name": "Someone Else"}})
    assert error_of(path).startswith(f"{path}: facts.full_name: ")
    extra = load_scenario(write(tmp_path, {"persona": "typical", "facts": {"pet": "Rex"}}))
    assert extra.caller_facts().as_dict()["pet"] == "Rex" and extra.agent_name == "bank"
    assert extra.banking and extra.agent_spec().name == "bank" and extra.intent == "lost_card"
    assert extra.metadata()["facts"] == {"pet": "Rex"} and "customer" in extra.metadata()


def test_an_agent_path_is_relative_to_the_scenario_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cases"
    folder.mkdir()
    spec = yaml.safe_load((datafiles.builtin_dir("agents") / "clinic.yaml").read_text())
    spec["name"] = "my_clinic"
    (folder / "my_clinic.yaml").write_text(yaml.safe_dump(spec))
    path = write(folder, {**CLINIC, "agent": "my_clinic.yaml"})
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    scenario = load_scenario(path)
    assert scenario.agent_name == "my_clinic" and not scenario.banking
    assert Path(scenario.agent or "") == (folder / "my_clinic.yaml").resolve()
    plan = plan_call(CallOptions(scenario=str(path), route="text", output_dir=tmp_path / "out"))
    assert plan.agent.name == "my_clinic"
    assert parse_profile(plan.sessions["caller"].instructions)["domain"] == "my_clinic"
