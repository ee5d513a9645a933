"""The caller's mood: a persona's starting point and sensitivities, moved by what happens in
the call, in the transcript after every utterance, and acted on by the scripted callers."""

import json

import pytest

import dualagent
from dualagent.mood import (
    EVENTS,
    MoodEvent,
    MoodProfile,
    MoodState,
    agent_events,
    apply,
    parse_state_line,
    state_line,
    update,
)
from dualagent.personas import load_persona, persona_from_dict
from dualagent.realtime.local.brains.base import BrainInput
from dualagent.realtime.local.brains.caller import CallerBrain
from dualagent.realtime.local.brains.domain_caller import DomainCallerBrain

SETBACKS = ["agent_turn", "asked_to_repeat", "agent_turn", "hold"]


def _run(persona: str, kinds: list[str]) -> MoodState:
    profile = load_persona(persona).personality.mood_profile()
    state, _ = apply(profile.start(), [MoodEvent(k) for k in kinds], profile)
    return state


def test_a_frustrated_caller_loses_patience_faster_than_a_typical_one() -> None:
    lost = {
        name: load_persona(name).personality.mood_profile().start_patience
        - _run(name, SETBACKS).patience
        for name in ("typical", "frustrated", "elderly", "hurried")
    }
    assert lost["frustrated"] > lost["hurried"] > lost["typical"] > lost["elderly"] > 0


def test_progress_and_a_resolution_give_patience_back_and_calm_the_caller() -> None:
    profile = MoodProfile(start_patience=0.5, start_frustration=0.5)
    state, reason = update(profile.start(), MoodEvent("resolution"), profile)
    assert state.patience > 0.5 and state.frustration < 0.5
    assert reason.startswith("resolution: patience +")


def test_patience_that_ran_out_stays_out_and_is_clipped_at_zero() -> None:
    profile = MoodProfile(start_patience=0.1, sensitivity=2.0)
    state, _ = apply(profile.start(), [MoodEvent("transfer"), MoodEvent("progress")], profile)
    assert state.ran_out and 0.0 <= state.patience < 0.1


def test_a_long_gap_costs_patience_per_second_past_the_threshold() -> None:
    profile = MoodProfile()
    short, _ = update(profile.start(), MoodEvent("long_gap", 4.0), profile)
    long, _ = update(profile.start(), MoodEvent("long_gap", 15.0), profile)
    assert short.patience == profile.start_patience > long.patience


def test_bad_values_name_the_value_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'waiting'.*asked_to_repeat"):
        MoodEvent("waiting")
    with pytest.raises(ValueError, match=r"start_patience.*1\.5"):
        MoodProfile(start_patience=1.5)
    assert set(EVENTS) >= {"asked_to_repeat", "transfer", "agent_cut_in", "resolution"}


def test_the_agents_words_carry_events() -> None:
    assert agent_events("Sorry, could you repeat that? Please hold.") == [
        "asked_to_repeat",
        "hold",
    ]
    assert agent_events("Your new card has been ordered.") == ["resolution"]
    assert agent_events("Thank you for calling.") == []


def test_the_state_line_reads_back() -> None:
    line = state_line(MoodState(0.25, 0.8), ["asked_to_repeat", "agent_turn"])
    assert parse_state_line("You are a caller." + line) == {
        "patience": 0.25,
        "frustration": 0.8,
        "events": ["asked_to_repeat", "agent_turn"],
        "patience_ran_out": False,
    }
    assert parse_state_line("You are a caller.") is None


def test_the_persona_yaml_sets_the_start_and_a_persona_without_it_gets_defaults() -> None:
    frustrated = load_persona("frustrated").personality.mood_profile()
    assert frustrated.start_frustration > 0 and frustrated.sensitivity > 1
    data = load_persona("typical").model_dump(mode="json")
    del data["personality"]["mood"]
    data["personality"]["patience_level"] = 4
    custom = persona_from_dict(data).personality.mood_profile()
    assert custom == MoodProfile(start_patience=0.4)


def _given(profile: dict, mood: MoodState, heard: str = "Can I have your full name?") -> BrainInput:
    from dualagent.realtime.local.session import ConversationEntry

    return BrainInput(
        instructions="",
        profile=profile,
        tools=["end_call"],
        conversation=[ConversationEntry("item_1", "user", text=heard)],
        response_instructions="You are a caller." + state_line(mood, ["asked_to_repeat"]),
    )


@pytest.mark.parametrize("brain_class", [CallerBrain, DomainCallerBrain])
def test_a_scripted_caller_out_of_patience_hangs_up(brain_class) -> None:
    profile = {"persona": {"type": "typical"}, "facts": {"full_name": "Ann Lee"}, "seed": 0}
    brain = brain_class(profile)
    reply = brain.respond(_given(profile, MoodState(0.0, 0.9, ran_out=True)))
    assert [name for name, _ in reply.tool_calls] == ["end_call"]
    assert "patience" in reply.text


@pytest.mark.parametrize("brain_class", [CallerBrain, DomainCallerBrain])
def test_a_frustrated_caller_out_of_patience_asks_for_a_person_first(brain_class) -> None:
    profile = {"persona": {"type": "frustrated"}, "facts": {"full_name": "Ann Lee"}, "seed": 0}
    brain = brain_class(profile)
    first = brain.respond(_given(profile, MoodState(0.0, 0.9, ran_out=True)))
    assert "real person" in first.text and not first.tool_calls
    second = brain.respond(_given(profile, MoodState(0.0, 1.0, ran_out=True), "Please hold."))
    assert [name for name, _ in second.tool_calls] == ["end_call"]


def test_frustration_shows_in_the_scripted_callers_words() -> None:
    profile = {"persona": {"type": "typical"}, "facts": {"full_name": "Ann Lee"}, "seed": 0}
    calm = CallerBrain(profile).respond(_given(profile, MoodState(0.8, 0.1)))
    sharp = CallerBrain(profile).respond(_given(profile, MoodState(0.3, 0.9)))
    assert "Ann Lee" in calm.text and "Ann Lee" in sharp.text
    assert sharp.text != calm.text and sharp.text.endswith(calm.text[1:])


async def _text_call(local_server, tmp_path, caller_type: str, seed: int, name: str):
    return await dualagent.simulate(
        caller_type,
        route="text",
        seed=seed,
        output_dir=tmp_path,
        conversation_id=name,
        local_server=local_server,
    )


async def test_the_same_seed_gives_the_same_mood_trajectory(local_server, tmp_path) -> None:
    runs = [await _text_call(local_server, tmp_path, "frustrated", 4, f"m{i}") for i in (1, 2)]
    trajectories = [[t["mood"] for t in run.turns] for run in runs]
    assert trajectories[0] == trajectories[1]
    # The state after every utterance is in the transcript, with the events that moved it.
    turns = json.loads((runs[0].path / "transcript.json").read_text())["turns"]
    assert all({"patience", "frustration", "events", "reasons"} <= t["mood"].keys() for t in turns)
    assert any(t["mood"]["events"] for t in turns)
    start = load_persona("frustrated").personality.mood_profile().start_patience
    assert turns[-1]["mood"]["patience"] < start


async def test_the_caller_is_sent_its_state_with_each_response(local_server, tmp_path) -> None:
    result = await _text_call(local_server, tmp_path, "typical", 0, "state")
    events = json.loads((result.path / "session_events.json").read_text())["events"]
    asked = [
        e["event"]
        for e in events
        if e["agent"] == "caller" and e["direction"] == "sent" and e["type"] == "response.create"
    ]
    assert asked
    for request in asked:
        state = parse_state_line(request["response"]["instructions"])
        assert state is not None
        patience = float(request["response"]["metadata"]["dualagent_patience"])
        assert patience == pytest.approx(state["patience"], abs=0.005)
