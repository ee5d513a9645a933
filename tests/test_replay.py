"""A recorded caller replayed against an agent (``--caller-backend replay:FOLDER``): the caller's
own audio, turn by turn, with real speech on the agent's side (Piper, PocketSphinx).

Must hold (issue 20): a scenario drafted from one of our recordings reproduces its goal and
facts, and replaying its caller audio against the same agent gives a recording whose caller
channel is the original's: the same samples, turn by turn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import dualagent
from dualagent.call.record import load_call
from dualagent.errors import InputError
from dualagent.real_call import caller_responses, load_real_call, read_caller_channel
from dualagent.realtime.transports import transport_name
from dualagent.scenario_from_call import draft_from_path, write_draft
from dualagent.scenarios import load_scenario

SCENARIO = "clinic_reschedule"
HANG_GUARD_S = 300


@pytest.fixture(scope="module")
def calls_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("replay")


@pytest.fixture(scope="module")
async def original(local_server, calls_dir: Path) -> Path:
    """A short recorded call: the agent greets, the caller asks, the agent asks who it is,
    the caller says (4 turns)."""
    result = await dualagent.simulate(
        scenario=SCENARIO,
        max_turns=4,
        seed=3,
        output_dir=calls_dir,
        conversation_id="original",
        local_server=local_server,
    )
    assert result.status == "completed", result.explain()
    return result.path


@pytest.fixture(scope="module")
async def replayed(local_server, original: Path, calls_dir: Path) -> Path:
    """The original caller's audio replayed against the same agent, with room to go on."""
    result = await dualagent.simulate(
        scenario=SCENARIO,
        caller_backend=f"replay:{original}",
        seed=3,
        output_dir=calls_dir,
        conversation_id="replayed",
        local_server=local_server,
        transport="memory",  # the agent in this process; the replayed caller needs no server
    )
    return result.path


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD_S)
async def test_the_replayed_call_has_the_original_callers_channel_turn_by_turn(
    original: Path, replayed: Path
) -> None:
    before = caller_responses(load_real_call(original))
    after = caller_responses(load_real_call(replayed))
    assert len(before) == 2  # the two caller turns of the 4-turn original
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert new.texts == old.texts
        assert [len(pcm) for pcm in new.pcm16] == [len(pcm) for pcm in old.pcm16]
        assert all(len(pcm) > 24_000 for pcm in old.pcm16)  # real speech, over half a second
        assert new.pcm16 == old.pcm16  # the same samples
    # Nothing else is on the replayed caller channel: its voiced samples are those turns'.
    channel = read_caller_channel(next(replayed.glob("caller_audio.*")))
    voiced = np.count_nonzero(channel)
    replayed_nonzero = sum(
        np.count_nonzero(np.frombuffer(pcm, np.int16)) for r in after for pcm in r.pcm16
    )
    assert voiced == replayed_nonzero


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD_S)
async def test_the_agent_answers_live_and_the_replayed_caller_hangs_up_when_its_turns_run_out(
    replayed: Path,
) -> None:
    record = load_call(replayed)
    assert record.status == "completed", record.error
    assert record.end_reason == "caller_hung_up"  # after its 2 turns it had nothing more to say
    assert record.metadata["models"]["caller"] == "local-replay"
    assert record.metadata["estimated_cost_usd"]["caller"] == 0.0
    assert record.metadata["replay"]["source"].endswith("original")
    assert record.metadata["line"]["name"] == "clean"  # the recorded audio carries its line
    assert record.metadata["transport"] == "memory"
    agent_turns = [t for t in record.turns if t["speaker"] == "cs"]
    assert len(agent_turns) >= 3  # greeting, question, and its answer to the caller's facts
    # The agent's speech is heard as a caller of the embedded server hears it.
    assert all(t["heard"] for t in agent_turns[:2]), agent_turns[:2]
    assert any(c["agent"] == "caller" and c["name"] == "end_call" for c in record.function_calls)


@pytest.mark.slow
@pytest.mark.timeout(HANG_GUARD_S)
async def test_a_scenario_drafted_from_the_recording_reproduces_its_goal_and_facts(
    original: Path, tmp_path: Path
) -> None:
    draft = draft_from_path(original)
    path = write_draft(draft, tmp_path / "drafted.yaml")
    drafted, source = load_scenario(path), load_scenario(SCENARIO)
    assert drafted.effective_goal == source.effective_goal
    assert drafted.facts == source.facts
    assert drafted.situation == source.situation
    assert drafted.agent_name == source.agent_name == "clinic"
    assert set(drafted.checks) == set(source.checks)
    # The rules heard what the caller said of them in these four turns.
    assert draft.heard_facts.get("doctor") == "Doctor Brown"
    assert draft.heard_facts.get("preferred_day") == "Wednesday"


def test_replay_urls_go_to_the_replay_transport() -> None:
    assert transport_name("replay:///tmp/some/call") == "replay"


def test_a_replay_of_something_that_is_not_a_call_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    with pytest.raises(InputError, match="no such folder or file"):
        dualagent.run(
            scenario=SCENARIO, caller_backend=f"replay:{tmp_path / 'nope'}", output_dir=tmp_path
        )
    transcript = tmp_path / "no_audio.json"
    transcript.write_text(json.dumps([{"speaker": "caller", "text": "Hello."}]))
    with pytest.raises(InputError, match="no caller audio"):
        dualagent.run(scenario=SCENARIO, caller_backend=f"replay:{transcript}", output_dir=tmp_path)
    with pytest.raises(InputError, match="use caller_backend"):
        dualagent.run(scenario=SCENARIO, cs_backend=f"replay:{transcript}", output_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["no_audio.json"]


def test_a_real_calls_audio_is_cut_per_caller_turn_from_the_left_channel_at_24_khz(
    tmp_path: Path,
) -> None:
    import soundfile as sf

    rate = 8000  # a phone line's recording, stereo: caller left, agent right
    seconds = np.arange(4 * rate) / rate
    left = np.where((seconds >= 1.0) & (seconds < 2.0), 0.5 * np.sin(2 * np.pi * 300 * seconds), 0)
    right = np.where(seconds >= 2.5, 0.5 * np.sin(2 * np.pi * 500 * seconds), 0)
    sf.write(tmp_path / "call.wav", np.stack([left, right], axis=1), rate, subtype="PCM_16")
    turns = [
        {"speaker": "caller", "text": "Hello, I lost my card.", "start_s": 1.0, "end_s": 2.0},
        {"speaker": "agent", "text": "I can help with that.", "start_s": 2.5, "end_s": 4.0},
    ]
    transcript = tmp_path / "call.json"
    transcript.write_text(json.dumps({"turns": turns, "audio": "call.wav"}))
    (response,) = caller_responses(load_real_call(transcript))
    assert response.texts == ["Hello, I lost my card."]
    (pcm,) = response.pcm16
    samples = np.frombuffer(pcm, np.int16)
    assert abs(len(samples) - 24_000) < 240  # one second at 24 kHz (resampling's edges aside)
    assert np.abs(samples).max() > 10_000  # the caller's tone, not the agent's silence


def test_the_service_never_replays_a_file_of_the_server(tmp_path: Path) -> None:
    from dualagent.service.calls import ParameterError, parse_call_parameters

    with pytest.raises(ParameterError, match="would read a file on the server") as info:
        parse_call_parameters([("caller_backend", "replay:/etc")], tmp_path)
    assert info.value.parameter == "caller_backend"
