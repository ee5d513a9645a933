"""The agent under test takes its own turns (server VAD) and keeps its own session: real calls
on the embedded server, real speech, read back from the recording."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

import dualagent
from dualagent.agent_spec import AgentSpec, TurnDetection, load_agent
from dualagent.agents import agent_instructions
from dualagent.call.agent_line import on_frame, turn_detection_of, vad_silence_s

OVERLAP_S = 0.4  # the agent talks this long over the caller after its VAD hears it


def vad_agent(**turn_detection: Any) -> AgentSpec:
    """The shipped bank agent, with its own turn detection."""
    detection = TurnDetection(type="server_vad", **turn_detection)
    return load_agent("bank").model_copy(update={"turn_detection": detection})


def events_of(folder: Path) -> list[dict[str, Any]]:
    return json.loads((folder / "session_events.json").read_text())["events"]


def cs_events(events: list[dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    return [e for e in events if e["agent"] == "cs" and e["direction"] == direction]


def speech_starts(events: list[dict[str, Any]]) -> list[float]:
    """Where the agent's VAD heard speech begin, in seconds of its input (= timeline time)."""
    return [
        e["event"]["audio_start_ms"] / 1000
        for e in cs_events(events, "received")
        if e["type"] == "input_audio_buffer.speech_started"
    ]


def assert_answers_by_itself(events: list[dict[str, Any]]) -> None:
    """Nothing committed for the agent, and a response asked of it only to go on after its
    tools (as clients of VAD sessions do); its VAD started the others."""
    sent = cs_events(events, "sent")
    assert "input_audio_buffer.commit" not in [e["type"] for e in sent]
    asked = 0
    for before, event in itertools.pairwise(sent):
        if event["type"] == "response.create":
            asked += 1
            item = before["event"].get("item", {})
            assert before["type"] == "conversation.item.create"
            assert item.get("type") == "function_call_output", before
    created = [e for e in cs_events(events, "received") if e["type"] == "response.created"]
    assert len(created) > asked


def assert_one_timeline(result: dualagent.CallResult) -> None:
    """Three audio files on the call's timeline."""
    stereo, rate = sf.read(result.path / "stereo_recording.wav")
    assert stereo.shape[1] == 2
    assert abs(len(stereo) / rate - result.metadata["timeline_s"]) < 0.01
    for name in ("caller_audio.wav", "cs_audio.wav"):
        assert sf.info(result.path / name).frames == len(stereo)


def test_the_pause_an_agents_vad_waits_for() -> None:
    assert vad_silence_s({"type": "server_vad"}) == 0.5
    assert vad_silence_s({"type": "server_vad", "silence_duration_ms": 800}) == 0.8
    assert vad_silence_s({"type": "semantic_vad", "eagerness": "high"}) == 0.3
    session = {"audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    assert turn_detection_of(session) == {"type": "server_vad"}
    assert turn_detection_of({"turn_detection": {"type": "semantic_vad"}}) is not None  # beta
    assert turn_detection_of({"audio": {"input": {"turn_detection": None}}}) is None
    assert [on_frame(t) for t in (1.0, 1.0001, 1.234)] == [1.0, 1.01, 1.24]


@pytest.mark.slow
async def test_an_agent_with_server_vad_answers_the_caller_by_itself(
    local_server, tmp_path
) -> None:
    result = await dualagent.simulate(
        "typical",
        agent=vad_agent(),
        seed=0,
        output_dir=tmp_path,
        conversation_id="server_vad",
        local_server=local_server,
    )
    assert result.status == "completed", result.metadata.get("error")
    assert result.end_reason == "caller_hung_up"
    metadata = result.metadata
    assert metadata["turn_taking"] == {"agent": "server_vad", "first_speaker": "caller"}
    assert metadata["outcome"]["result"] == "success"
    assert {"verify_customer", "order_replacement_card"} <= {
        c["name"] for c in result.function_calls
    }
    events = events_of(result.path)
    assert_answers_by_itself(events)
    assert_one_timeline(result)

    turns = result.turns
    caller_turns = [t for t in turns if t["speaker"] == "caller"]
    assert turns[0]["speaker"] == "caller" and len(caller_turns) >= 4
    # The line into the agent is the caller's track: its VAD heard each caller turn begin where
    # the recording has it (plus the voice's own lead-in), so its positions are timeline times.
    starts = speech_starts(events)
    for turn in caller_turns:
        assert any(0 <= s - turn["start_s"] <= 0.2 for s in starts), (turn, starts)
    # What the agent heard is its own transcription of what its VAD committed.
    assert all(t["heard"] for t in caller_turns)
    overlap = [
        len(set(t["text"].lower().split()) & set(t["heard"].split())) / len(t["text"].split())
        for t in caller_turns
    ]
    assert np.mean(overlap) > 0.5
    # It answers once its VAD has heard the pause it waits for, and the latency recorded is the
    # gap a listener hears: end of the caller's words to the agent's first audio.
    for before, turn in itertools.pairwise(turns):
        if before["speaker"] == "caller" and turn["speaker"] == "cs" and not turn["interrupted"]:
            gap = turn["start_s"] - before["end_s"]
            assert gap >= 0.5
            assert turn["response_latency_s"] == pytest.approx(gap, abs=0.002)


@pytest.mark.slow
async def test_a_caller_cutting_in_is_heard_by_the_agents_vad_which_stops_it(
    local_server, tmp_path
) -> None:
    persona = dualagent.load_persona("hurried").model_copy(deep=True)
    persona.personality.tendency_to_interrupt = 1.0
    result = await dualagent.simulate(
        persona,
        agent=vad_agent(),
        seed=1,
        max_turns=8,
        output_dir=tmp_path,
        conversation_id="vad_barge",
        local_server=local_server,
    )
    assert result.status == "completed", result.metadata.get("error")
    turns = result.turns
    interrupted = [t for t in turns if t["interrupted"]]
    assert interrupted and all(t["speaker"] == "cs" for t in interrupted)
    assert result.metadata["metrics"]["interruptions"] == len(interrupted)
    events = events_of(result.path)
    assert_answers_by_itself(events)
    sent = [e["type"] for e in cs_events(events, "sent")]
    assert "response.cancel" not in sent  # never us: its own VAD
    assert sent.count("conversation.item.truncate") == len(interrupted)
    starts = speech_starts(events)
    by_index = {t["index"]: t for t in turns}
    for turn in interrupted:
        # Its VAD heard the caller while it talked, and it stopped 0.4 s after that point.
        heard = [s for s in starts if turn["start_s"] < s < turn["end_s"]]
        assert heard, (turn, starts)
        assert turn["end_s"] <= heard[0] + OVERLAP_S + 0.002
        caller = by_index[turn["index"] + 1]
        assert caller["speaker"] == "caller"
        assert 0 <= heard[0] - caller["start_s"] <= 0.2  # the caller's voice, over the agent
        said, planned = turn["text"].split(), turn["planned_text"].split()
        assert said == planned[: len(said)]
    # Whenever it was still answering when its VAD heard the caller, it cancelled that response
    # itself (turn_detected), and the recording says so on the turn. (Whether its server is
    # still generating at that moment depends on the machine's speed, so no count is asserted.)
    active: str | None = None
    stopped: set[str] = set()
    for event in cs_events(events, "received"):
        kind, body = event["type"], event["event"]
        if kind == "response.created":
            active = body["response"]["id"]
        elif kind == "input_audio_buffer.speech_started" and active is not None:
            stopped.add(active)
        elif kind == "response.done":
            response = body["response"]
            if response["id"] in stopped and response["output"]:
                assert response["status"] == "cancelled"
                assert response["status_details"]["reason"] == "turn_detected"
                [turn] = [t for t in turns if t["response_id"] == response["id"]]
                assert turn["interrupted"] and turn["response_reason"] == "turn_detected"
            active = None
    stereo, rate = sf.read(result.path / "stereo_recording.wav")
    both = (np.abs(stereo[:, 0]) > 1e-3) & (np.abs(stereo[:, 1]) > 1e-3)
    assert both.sum() / rate > 0.1  # both voices at once, as on a phone line


# -------------------------------------------------------------------------- a kept session

KEPT_VAD = {"type": "server_vad", "silence_duration_ms": 700}


@contextlib.asynccontextmanager
async def deployed_agent(upstream_url: str, session: dict[str, Any]):
    """A deployed agent in front of the embedded server: each connection's session is
    configured by the deployment (its first ``session.update``) before anything else reaches
    it; then the line is passed through both ways, as a telephony gateway does."""

    async def handle(client: ServerConnection) -> None:
        query = client.request.path.partition("?")[2] if client.request else ""
        async with connect(f"{upstream_url}?{query}", max_size=None) as server:
            update = {"type": "session.update", "event_id": "evt_deploy", "session": session}
            await server.send(json.dumps(update))

            async def pump(source: Any, sink: Any) -> None:
                with contextlib.suppress(websockets.ConnectionClosed):
                    async for message in source:
                        await sink.send(message)

            tasks = [
                asyncio.create_task(pump(server, client)),
                asyncio.create_task(pump(client, server)),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async with serve(handle, "127.0.0.1", 0, max_size=None) as gateway:
        port = next(iter(gateway.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/v1/realtime"


@pytest.mark.slow
async def test_a_kept_agent_session_keeps_its_instructions_and_vad(local_server, tmp_path) -> None:
    spec = load_agent("bank")  # our spec says: no turn detection; the deployment says VAD
    instructions = "Deployed build 7.\n" + agent_instructions(spec, seed=3)
    deployed = {
        "type": "realtime",
        "instructions": instructions,
        "audio": {
            "input": {"turn_detection": KEPT_VAD, "transcription": {"model": "whisper-1"}},
            "output": {"voice": "alloy"},
        },
        "tools": spec.session_tools(),
    }
    async with deployed_agent(local_server.url, deployed) as url:
        result = await dualagent.simulate(
            "typical",
            agent=spec,
            agent_session="keep",
            cs_backend=url,
            seed=3,
            max_turns=4,
            output_dir=tmp_path,
            conversation_id="kept",
            local_server=local_server,
        )
    assert result.status == "completed", result.metadata.get("error")
    events = events_of(result.path)
    # We configured the caller only; the agent's session was never touched.
    assert "session.update" not in [e["type"] for e in cs_events(events, "sent")]
    assert next(e["type"] for e in events if e["agent"] == "caller") == "session.update"
    # The server's own account of the session holds the deployment's instructions and VAD...
    reports = [
        e["event"]["session"]
        for e in cs_events(events, "received")
        if e["type"] in ("session.created", "session.updated")
    ]
    assert reports[-1]["instructions"] == instructions
    assert turn_detection_of(reports[-1])["silence_duration_ms"] == 700
    # ...and so does the recording, marking every setting as the server's.
    metadata = result.metadata
    assert metadata["agent_session"] == "keep"
    effective = metadata["agent_effective_session"]
    assert effective["reported_by"] == "session.updated"
    assert effective["session"]["instructions"] == instructions
    assert set(effective["source"].values()) == {"server"}
    assert effective["source"]["audio.input.turn_detection.silence_duration_ms"] == "server"
    # The kept VAD took the turns: the caller spoke first, nothing was committed for the agent,
    # and it answered only after the kept pause (700 ms, not the 500 ms default).
    assert metadata["turn_taking"] == {"agent": "server_vad", "first_speaker": "caller"}
    assert_answers_by_itself(events)
    turns = result.turns
    assert turns[0]["speaker"] == "caller" and any(t["speaker"] == "cs" for t in turns)
    for before, turn in itertools.pairwise(turns):
        if before["speaker"] == "caller" and turn["speaker"] == "cs":
            assert turn["start_s"] - before["end_s"] >= 0.7
    assert all(t["heard"] for t in turns if t["speaker"] == "caller")


@pytest.mark.slow
async def test_our_agent_session_is_reported_as_ours(local_server, tmp_path) -> None:
    """The default: our session.update, our settings marked ours, the server's defaults its."""
    result = await dualagent.simulate(
        "typical",
        seed=2,
        max_turns=2,
        output_dir=tmp_path,
        conversation_id="ours",
        local_server=local_server,
    )
    metadata = result.metadata
    assert metadata["agent_session"] == "ours"
    assert metadata["turn_taking"] == {"agent": "bridge", "first_speaker": "cs"}
    effective = metadata["agent_effective_session"]
    assert effective["reported_by"] == "session.updated"
    source = effective["source"]
    assert source["instructions"] == source["audio.input.turn_detection"] == "ours"
    assert source["tools"] == source["audio.output.voice"] == "ours"
    assert effective["session"]["audio"]["input"]["turn_detection"] is None


def test_the_transcript_stays_in_utterance_order(tmp_path) -> None:
    """An agent's cut-into utterance ends (waiting for where its VAD stops it) after the
    caller's words that cut in: it is still written before them."""
    from dualagent.call.recording import CallRecorder

    with CallRecorder(tmp_path, "order") as recorder:
        for index in (0, 2, 1, 3):
            recorder.add_turn({"index": index, "speaker": "cs", "text": str(index)})
        assert [t["index"] for t in recorder.turns] == [0, 1, 2, 3]
