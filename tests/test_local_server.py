"""The embedded Realtime server over real websockets on 127.0.0.1, with real speech engines."""

import asyncio
import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import jiwer
import pytest
import websockets

from dualagent.realtime import client
from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.client import RealtimeConnection, RealtimeConnectionError
from dualagent.realtime.local import engines
from dualagent.realtime.local.server import LocalRealtimeServer

TIMEOUT_S = 20.0


async def connect(server, model: str = "local-cs") -> RealtimeConnection:
    conn = await RealtimeConnection.connect(f"{server.url}?model={model}")
    first = await asyncio.wait_for(conn.recv(), TIMEOUT_S)
    assert first["type"] == "session.created"
    assert first["session"]["model"] == model
    assert (await asyncio.wait_for(conn.recv(), TIMEOUT_S))["type"] == "conversation.created"
    return conn


async def events_until(
    conn: RealtimeConnection,
    stop: Callable[[dict[str, Any]], bool],
    timeout_s: float = TIMEOUT_S,
) -> list[dict[str, Any]]:
    """Server events up to and including the first one ``stop`` accepts."""
    events = []
    async with asyncio.timeout(timeout_s):
        while True:
            event = await conn.recv()
            events.append(event)
            if stop(event):
                return events


async def manual_turns(conn: RealtimeConnection) -> None:
    """Turn server VAD off (it is on in a new session, as hosted): the test commits itself."""
    off = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    await conn.send({"type": "session.update", "session": off})
    await events_until(conn, of_type("session.updated"))


def _words(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c == " ").split())


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event["type"] == kind


async def test_a_model_without_a_brain_is_refused_with_the_valid_names(local_server) -> None:
    conn = await connect(local_server, "gpt-realtime")
    async with conn:
        error = await asyncio.wait_for(conn.recv_event(), TIMEOUT_S)
        assert isinstance(error, ev.ErrorEvent)
        assert (error.error.code, error.error.param) == ("invalid_value", "model")
        assert "'gpt-realtime'" in (error.error.message or "")
        assert "'local-caller', 'local-cs'" in (error.error.message or "")
        await conn.send(p.ResponseCreate())
        refused = await asyncio.wait_for(conn.recv_event(), TIMEOUT_S)
        assert isinstance(refused, ev.ErrorEvent) and refused.error.param == "model"


@pytest.mark.slow
async def test_speech_round_trip_between_two_sessions(local_server) -> None:
    speaker = await connect(local_server, "local-cs")
    listener = await connect(local_server, "local-caller")
    async with speaker, listener:
        await manual_turns(listener)
        await speaker.send(p.SessionUpdate(session=p.session_config(voice="marin")))
        await events_until(speaker, of_type("session.updated"))
        await speaker.send(p.ResponseCreate())
        spoken = await events_until(speaker, of_type("response.done"))
        assert spoken[-1]["response"]["status"] == "completed"

        deltas = [e["delta"] for e in spoken if e["type"] == "response.output_audio.delta"]
        assert len(deltas) > 5
        assert p.pcm16_duration_s(sum(p.b64_decoded_size(d) for d in deltas)) > 2.0
        [said] = [
            e["transcript"] for e in spoken if e["type"] == "response.output_audio_transcript.done"
        ]
        assert said.startswith("Thank you for calling First Bank")

        for delta in deltas:  # exactly what the bridge does on the audio route
            await listener.send({"type": "input_audio_buffer.append", "audio": delta})
        await listener.send(p.InputAudioBufferCommit())
        heard = await events_until(
            listener, of_type("conversation.item.input_audio_transcription.completed")
        )
        committed = next(e for e in heard if e["type"] == "input_audio_buffer.committed")
        transcript = heard[-1]["transcript"].lower()
        assert heard[-1]["item_id"] == committed["item_id"]
        # Recognition is imperfect ("first spank"), so allow one of the key words to be missed.
        keywords = [word for word in ("thank", "calling", "bank") if word in transcript]
        assert len(keywords) >= 2, transcript
        assert jiwer.wer(_words(said), transcript) < 0.5, transcript


async def test_text_route_gives_text_without_audio(local_server) -> None:
    async with await connect(local_server, "local-cs") as conn:
        await conn.send(p.SessionUpdate(session=p.session_config(output_modalities=["text"])))
        await events_until(conn, of_type("session.updated"))
        await conn.send(
            p.ConversationItemCreate(item=p.text_message("Hi, I need some help please."))
        )
        await conn.send(p.ResponseCreate())
        events = await events_until(conn, of_type("response.done"))
        names = [e["type"] for e in events]
        assert "conversation.item.added" in names
        assert not [n for n in names if "audio" in n], names
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        [done] = [e["text"] for e in events if e["type"] == "response.output_text.done"]
        assert text == done
        assert "First Bank" in done
        response = events[-1]["response"]
        assert response["status"] == "completed"
        assert response["output"][0]["content"][0]["type"] == "output_text"


async def test_bad_events_get_errors_and_the_connection_stays_usable(local_server) -> None:
    async with await connect(local_server) as conn:
        ws = conn._ws  # send raw frames the typed client would never produce
        await ws.send("{not json")
        [bad_json] = await events_until(conn, of_type("error"))
        assert bad_json["error"]["code"] == "invalid_json"

        await ws.send(json.dumps({"type": "response.teleport", "event_id": "evt_unknown"}))
        [unknown] = await events_until(conn, of_type("error"))
        assert unknown["error"]["code"] == "invalid_value"
        assert unknown["error"]["event_id"] == "evt_unknown"
        assert "response.create" in unknown["error"]["message"]

        await ws.send(json.dumps({"type": "input_audio_buffer.append", "event_id": "evt_missing"}))
        [missing] = await events_until(conn, of_type("error"))
        assert missing["error"]["code"] == "missing_required_parameter"
        assert missing["error"]["param"] == "audio"
        assert missing["error"]["event_id"] == "evt_missing"

        await conn.send({"type": "input_audio_buffer.commit", "event_id": "evt_empty"})
        [empty] = await events_until(conn, of_type("error"))
        assert empty["error"]["code"] == "input_audio_buffer_commit_empty"
        assert empty["error"]["event_id"] == "evt_empty"

        await conn.send({"type": "response.cancel"})
        [cancel] = await events_until(conn, of_type("error"))
        assert cancel["error"]["code"] == "response_cancel_not_active"

        # Still usable: a good event gets its normal answer.
        await conn.send(p.SessionUpdate(session=p.session_config(instructions="Still here.")))
        [updated] = await events_until(conn, of_type("session.updated"))
        assert updated["session"]["instructions"] == "Still here."
        assert not conn.closed


async def test_cancel_over_the_wire_ends_the_response(local_server) -> None:
    async with await connect(local_server) as conn:
        await conn.send(p.ResponseCreate())
        await conn.send({"type": "response.create", "event_id": "evt_second"})
        await conn.send(p.ResponseCancel())
        events = await events_until(conn, of_type("response.done"))
        errors = [e for e in events if e["type"] == "error"]
        assert [e["error"]["code"] for e in errors] == ["conversation_already_has_active_response"]
        assert events[-1]["response"]["status"] == "cancelled"
        # The next response runs normally.
        await conn.send(p.ResponseCreate(response=p.ResponseParams(output_modalities=["text"])))
        done = await events_until(conn, of_type("response.done"))
        assert done[-1]["response"]["status"] == "completed"


async def test_wrong_path_is_404(local_server) -> None:
    url = f"ws://{local_server.host}:{local_server.port}/v2/elsewhere"
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(url):
            pass
    assert info.value.response.status_code == 404
    with pytest.raises(RealtimeConnectionError, match="404") as info2:
        await RealtimeConnection.connect(url)
    assert url in str(info2.value)


async def test_connect_to_a_closed_port_names_the_url() -> None:
    # A port we hold bound but never listen on refuses connections, and nobody can take it.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"ws://127.0.0.1:{held.getsockname()[1]}/v1/realtime"
        with pytest.raises(RealtimeConnectionError) as info:
            await RealtimeConnection.connect(f"{url}?model=x&api_key=sk-secret", open_timeout_s=5)
    message = str(info.value)
    assert url in message
    assert "sk-secret" not in message


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1/v1/realtime?api_key=sk-secret", "127.0.0.1:8000/v1/realtime"]
)
async def test_connect_to_a_non_websocket_url_is_a_clean_error(url: str) -> None:
    with pytest.raises(RealtimeConnectionError, match="ws://") as info:
        await RealtimeConnection.connect(url)
    message = str(info.value)
    assert url.split("?")[0] in message
    assert "sk-secret" not in message  # API keys in the query never reach error messages


class GatedASR:
    """The real recogniser, held back until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def transcribe(self, pcm16: bytes) -> str:
        self.gate.wait(TIMEOUT_S)
        return engines.get_asr().transcribe(pcm16)


async def test_cancelling_a_response_does_not_lose_the_input_transcription() -> None:
    speech = b"".join(
        engines.get_tts().synthesize(
            "I lost my card. I need a new one sent to my home address please.",
            voice=None,
            speed=1.0,
        )
    )
    asr = GatedASR()
    async with (
        LocalRealtimeServer(warm=False, asr=lambda: asr) as server,
        await connect(server, "local-cs") as conn,
    ):
        await manual_turns(conn)
        await conn.send({"type": "input_audio_buffer.append", "audio": p.encode_audio(speech)})
        await conn.send(p.InputAudioBufferCommit())
        await conn.send(p.ResponseCreate())
        # Cancel while the response is still waiting for the transcription.
        await events_until(conn, of_type("response.created"))
        await conn.send(p.ResponseCancel())
        events = await events_until(conn, of_type("response.done"))
        assert events[-1]["response"]["status"] == "cancelled"
        assert not [e for e in events if e["type"].startswith("response.output_audio")]
        asr.gate.set()
        events = await events_until(
            conn, of_type("conversation.item.input_audio_transcription.completed")
        )
        assert "address" in events[-1]["transcript"]


async def _closed_on_both_sides(server: LocalRealtimeServer, conn: RealtimeConnection, before: set):
    """The closing handshake completed (code 1000, not a timed-out abort's 1006) and the
    server dropped the connection."""
    assert conn.closed and conn._ws.close_code == 1000
    async with asyncio.timeout(TIMEOUT_S):
        while server.connections - before:
            await asyncio.sleep(0.02)


@pytest.fixture
def patient_close(monkeypatch):
    """Give the closing handshake far more time than it needs: a slow machine cannot make it
    time out, so an abort (code 1006) means the handshake itself was stuck."""
    monkeypatch.setattr(client, "CLOSE_TIMEOUT_S", TIMEOUT_S)


async def test_closing_a_connection_nobody_reads_completes_the_handshake(
    local_server, patient_close
) -> None:
    """A client that stopped reading (its queue full, its socket paused) still closes cleanly."""
    before = set(local_server.connections)
    conn = await connect(local_server)
    await conn.send(p.ResponseCreate())  # a spoken greeting: many more frames than the queue holds
    async with asyncio.timeout(TIMEOUT_S):
        while conn._ws.transport.is_reading():  # until the client stops reading its socket
            await asyncio.sleep(0.02)
    await conn.close()
    await _closed_on_both_sides(local_server, conn, before)


async def test_closing_while_another_task_reads_slowly_ends_its_loop_cleanly(
    local_server, patient_close
) -> None:
    before = set(local_server.connections)
    conn = await connect(local_server)
    await conn.send(p.ResponseCreate())
    seen: list[str] = []

    async def slow_reader() -> None:
        async for event in conn:  # ends without an error once the connection is closed
            seen.append(event["type"])
            await asyncio.sleep(0.05)

    reader = asyncio.create_task(slow_reader())
    async with asyncio.timeout(TIMEOUT_S):
        while "response.output_audio.delta" not in seen:
            await asyncio.sleep(0.01)
        await conn.close()
        await reader
    assert "response.done" not in seen  # nothing is delivered after close()
    await _closed_on_both_sides(local_server, conn, before)
