"""The official ``openai`` SDK talks to the embedded server, and every event is valid GA.

Events the SDK yields from ``conn.recv()`` are built without validation, so each raw server
message is validated here against the SDK's GA server-event union, in pydantic strict mode and
without unknown fields anywhere in the tree.
"""

import base64
import json
from typing import Any

import numpy as np
import openai
import pydantic
import pytest
from openai.types.realtime import RealtimeClientEvent, RealtimeServerEvent

from dualagent.bank import CS_TOOLS
from dualagent.call.core import CallCore, CallSettings
from dualagent.realtime import protocol as p
from dualagent.realtime.local.engines import get_tts
from dualagent.realtime.local.session import LocalSession
from dualagent.realtime.server_events import ServerEventBase

SERVER_EVENTS = pydantic.TypeAdapter(RealtimeServerEvent)
CLIENT_EVENTS = pydantic.TypeAdapter(RealtimeClientEvent)

# Fields the hosted service sends that the SDK's models do not declare.
HOSTED_EXTRAS = {"$.session.id", "$.session.object"}

NANCY_SAYS = (
    "I lost my card. My name is Nancy Wilson and my date of birth is "
    "March fourteenth nineteen fifty eight"
)


def _unknown_fields(model: Any, path: str = "$") -> list[str]:
    found = []
    if isinstance(model, pydantic.BaseModel):
        found += [f"{path}.{key}" for key in model.model_extra or {}]
        for name in type(model).model_fields:
            found += _unknown_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list | tuple):
        for i, value in enumerate(model):
            found += _unknown_fields(value, f"{path}[{i}]")
    elif isinstance(model, dict):
        for key, value in model.items():
            found += _unknown_fields(value, f"{path}.{key}")
    return found


def validate_server_event(raw: dict[str, Any]) -> Any:
    """The SDK model for ``raw``; fails the test when it is not a valid GA server event."""
    try:
        model = SERVER_EVENTS.validate_python(raw, strict=True)
    except pydantic.ValidationError as exc:
        pytest.fail(f"{raw.get('type')} is not a valid GA server event: {exc}\n{raw}")
    unknown = set(_unknown_fields(model)) - HOSTED_EXTRAS
    assert not unknown, f"{raw['type']} has fields the GA protocol does not define: {unknown}"
    assert model.type == raw["type"]
    return model


async def collect(conn: Any, until: str, limit: int = 2000) -> list[dict[str, Any]]:
    """Raw server events (validated) up to and including the first of type ``until``."""
    events = []
    for _ in range(limit):
        raw = json.loads(await conn.recv_bytes())
        validate_server_event(raw)
        events.append(raw)
        if raw["type"] == until:
            return events
    pytest.fail(f"no {until} in {limit} events")


def sdk_client(server) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="test", websocket_base_url=server.base_url)


@pytest.mark.slow
async def test_sdk_speech_session_with_every_event_valid(local_server) -> None:
    speech = b"".join(
        get_tts().synthesize(
            "Hello. I lost my debit card yesterday, and I need a replacement card.",
            voice=None,
            speed=1.0,
        )
    )
    async with sdk_client(local_server).realtime.connect(model="local-cs") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "output_modalities": ["audio"],
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "turn_detection": None,
                    },
                    "output": {"voice": "alloy"},
                },
                "instructions": "You are a helpful bank agent.",
            }
        )
        await conn.input_audio_buffer.append(audio=base64.b64encode(speech).decode())
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        events = await collect(conn, "response.done")

        kinds = [e["type"] for e in events]
        assert kinds[:3] == ["session.created", "conversation.created", "session.updated"]
        updated = conn.parse_event(json.dumps(events[2]))
        assert updated.session.instructions == "You are a helpful bank agent."
        assert updated.session.audio.output.voice == "alloy"

        heard = next(e for e in events if e["type"].endswith("input_audio_transcription.completed"))
        assert "card" in heard["transcript"]

        audio = [e for e in events if e["type"] == "response.output_audio.delta"]
        assert p.pcm16_duration_s(sum(len(base64.b64decode(e["delta"])) for e in audio)) > 2.0
        [said] = [e for e in events if e["type"] == "response.output_audio_transcript.done"]
        assert "lost your card" in said["transcript"]  # it understood what it heard
        done = conn.parse_event(json.dumps(events[-1]))
        assert done.response.status == "completed"
        assert done.response.output[0].content[0].transcript == said["transcript"]


async def test_sdk_function_call_round_trip_with_every_event_valid(local_server) -> None:
    async with sdk_client(local_server).realtime.connect(model="local-cs") as conn:
        await conn.session.update(
            session={"type": "realtime", "output_modalities": ["text"], "tools": CS_TOOLS}
        )
        await conn.conversation.item.create(
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": NANCY_SAYS}],
            }
        )
        await conn.response.create()
        first = await collect(conn, "response.done")
        calls = [
            e["item"]
            for e in first
            if e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call"
        ]
        assert [c["name"] for c in calls] == ["verify_customer"]
        assert json.loads(calls[0]["arguments"]) == {
            "full_name": "Nancy Wilson",
            "date_of_birth": "1958-03-14",
        }
        args_done = next(e for e in first if e["type"] == "response.function_call_arguments.done")
        assert args_done["call_id"] == calls[0]["call_id"]

        output = {"ok": True, "verified": True, "customer_id": "cust_001", "first_name": "Nancy"}
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": calls[0]["call_id"],
                "output": json.dumps(output),
            }
        )
        await conn.response.create()
        second = await collect(conn, "response.done")
        added = next(e for e in second if e["type"] == "conversation.item.added")
        assert added["item"]["type"] == "function_call_output"
        [text] = [e["text"] for e in second if e["type"] == "response.output_text.done"]
        assert "verified" in text.lower()
        assert second[-1]["response"]["status"] == "completed"


def wire(actions: list[Any]) -> list[dict[str, Any]]:
    """The server events among ``actions``, as the JSON objects the server sends."""
    return [json.loads(json.dumps(a.dump())) for a in actions if isinstance(a, ServerEventBase)]


def test_every_session_core_event_is_valid_ga() -> None:
    """Events that are hard to provoke over the wire: errors, cancelled and failed responses."""
    session = LocalSession("sess_sdk")
    events: list[Any] = wire(session.start())

    def send(event: dict[str, Any]) -> None:
        events.extend(wire(session.handle_raw(json.dumps(event))))

    send({"type": "nonsense", "event_id": "evt_1"})
    send({"type": "input_audio_buffer.append"})
    send({"type": "input_audio_buffer.commit"})
    send({"type": "response.cancel"})
    send(p.SessionUpdate(session=p.session_config(voice="verse", tools=CS_TOOLS)).dump())
    send({"type": "input_audio_buffer.append", "audio": p.encode_audio(b"\0\0" * 4800)})
    send({"type": "input_audio_buffer.clear"})
    send({"type": "input_audio_buffer.append", "audio": p.encode_audio(b"\0\0" * 4800)})
    send({"type": "input_audio_buffer.commit"})
    committed = next(e for e in events if e["type"] == "input_audio_buffer.committed")
    events += wire(session.transcription_done(committed["item_id"], "hello", 0.2))
    send(p.ConversationItemCreate(item=p.text_message("hi")).dump())
    send({"type": "response.create", "response": {"metadata": {"client_event_id": "evt_r"}}})
    send({"type": "response.create"})
    item_id, more = session.begin_message()
    events += wire(more)
    events += wire(session.message_text(item_id, "Hello."))
    events += wire(session.message_audio(item_id, b"\0\0" * 4800))
    events += wire(session.end_message(item_id))
    events += wire(session.function_call("end_call", {"reason": "done"}))
    events += wire(session.response_finished())
    send({"type": "conversation.item.truncate", "item_id": item_id, "audio_end_ms": 100})
    send({"type": "conversation.item.delete", "item_id": item_id})
    send({"type": "response.create", "response": {"output_modalities": ["text"]}})
    text_id, more = session.begin_message()
    events += wire(more + session.message_text(text_id, "Hi."))
    send({"type": "response.cancel"})
    send({"type": "response.create"})
    events += wire(session.response_failed("engine broke"))
    # Semantic VAD, then the server VAD interrupting an answer (response.done: turn_detected).
    send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": {}}}}})
    semantic = {"type": "semantic_vad", "eagerness": "low"}
    send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": semantic}}}})
    send({"type": "response.create"})
    tone = (np.sin(np.arange(4800 * 3) / 5) * 8000).astype("<i2").tobytes()
    send({"type": "input_audio_buffer.append", "audio": p.encode_audio(tone)})
    send(
        {"type": "conversation.item.create", "item": {"id": item_id, **p.text_message("x").dump()}}
    )
    send(
        {
            "type": "conversation.item.create",
            "previous_item_id": "nope",
            "item": {"type": "message", "role": "user", "content": []},
        }
    )
    send({"type": "session.update", "session": {"type": "realtime", "model": "gpt-realtime"}})
    unknown_model = LocalSession("sess_sdk2", model="gpt-realtime")
    events += wire(unknown_model.start())
    events += wire(unknown_model.handle_raw(json.dumps({"type": "response.create"})))

    raw_events = events
    kinds = {e["type"] for e in raw_events}
    assert {
        "error",
        "response.done",
        "conversation.item.truncated",
        "conversation.item.deleted",
    } <= kinds
    statuses = [e["response"]["status"] for e in raw_events if e["type"] == "response.done"]
    assert statuses == ["completed", "cancelled", "failed", "cancelled"]
    created = next(e for e in raw_events if e["type"] == "response.created")
    assert created["response"]["metadata"] == {"client_event_id": "evt_r"}
    for raw in raw_events:
        validate_server_event(json.loads(json.dumps(raw)))


def test_events_the_bridge_sends_are_valid_ga_client_events() -> None:
    """What CallCore sends (session.update, audio, items, responses) validates as SDK GA events."""
    sessions = {
        agent: p.session_config(instructions=f"{agent} here", voice="alloy", tools=CS_TOOLS)
        for agent in ("caller", "cs")
    }
    sent = [effect.event for effect in CallCore(CallSettings()).start(sessions, 0.0)]
    sent += [
        {"type": "input_audio_buffer.append", "audio": p.encode_audio(b"\0\0" * 10)},
        p.InputAudioBufferCommit().dump(),
        p.ConversationItemCreate(item=p.text_message("hello")).dump(),
        p.ConversationItemCreate(item=p.function_output("call_1", {"ok": True})).dump(),
        p.ResponseCancel().dump(),
        # A barge-in: the structured flag, plus the prose note for a hosted model.
        p.ResponseCreate(
            response=p.ResponseParams(
                instructions="caller here\n\nYou are cutting in.",
                metadata={p.BARGE_IN_METADATA_KEY: "1"},
            )
        ).dump(),
    ]
    for event in sent:
        model = CLIENT_EVENTS.validate_python(json.loads(json.dumps(event)), strict=True)
        assert not _unknown_fields(model), event
    update = sent[0]
    assert update["type"] == "session.update"
    assert update["session"]["audio"]["input"]["turn_detection"] is None


@pytest.mark.slow
async def test_sdk_client_streaming_a_microphone_gets_answers_from_server_vad(
    local_server,
) -> None:
    """A client that only streams audio (no commit, no response.create) and never sets
    turn_detection: the server finds the speech, transcribes it and answers, as the hosted
    service does with its default server VAD."""
    speech = b"".join(
        get_tts().synthesize("I lost my debit card yesterday.", voice=None, speed=1.0)
    )
    quiet = b"\x00\x00" * p.SAMPLE_RATE_HZ  # one second
    stream = quiet[: len(quiet) // 2] + speech + quiet
    chunk = 2 * p.SAMPLE_RATE_HZ // 10  # 100 ms, as a microphone sends
    async with sdk_client(local_server).realtime.connect(model="local-cs") as conn:
        await conn.session.update(
            session={"type": "realtime", "instructions": "You are a helpful bank agent."}
        )
        for start in range(0, len(stream), chunk):
            piece = base64.b64encode(stream[start : start + chunk]).decode()
            await conn.input_audio_buffer.append(audio=piece)
        events = await collect(conn, "response.done")

    kinds = [e["type"] for e in events]
    started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
    stopped = next(e for e in events if e["type"] == "input_audio_buffer.speech_stopped")
    speech_ms = p.pcm16_duration_s(speech) * 1000
    assert 450 <= started["audio_start_ms"] <= 900  # Piper starts with a short lead-in
    assert 500 + speech_ms - 600 <= stopped["audio_end_ms"] <= 500 + speech_ms + 100
    assert kinds.index("input_audio_buffer.committed") > kinds.index(stopped["type"])
    heard = next(e for e in events if e["type"].endswith("input_audio_transcription.completed"))
    assert heard["item_id"] == started["item_id"] and "card" in heard["transcript"]
    [said] = [e for e in events if e["type"] == "response.output_audio_transcript.done"]
    assert "card" in said["transcript"]
    assert events[-1]["response"]["status"] == "completed"
