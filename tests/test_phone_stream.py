"""Calling a voice bot over the phone-stream (Twilio Media Streams) websocket protocol.

The adapter's own behaviour is checked against a tiny bot written here with ``websockets``
(fast): μ-law as the G.711 reference encodes it, ``connected`` / ``start`` with the custom
parameters, 20 ms ``media`` frames, the bot's audio played as a response, ``mark`` echoed once
played, ``clear`` dropping what was not played. Then a real Pipecat bot
(``tests/bots/pipecat_phone_bot.py``: Pipecat's FastAPI websocket transport, its Twilio
serializer and its OpenAI Realtime service, pointed at our embedded server) takes a whole call
from a persona who cuts in (slow: a phone call lasts as long as it sounds).

No timing is asserted; timeouts only stop a hang. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import websockets
from websockets.asyncio.server import ServerConnection, serve

from dualagent.call.options import CallOptions
from dualagent.call.plan import plan_call
from dualagent.errors import InputError
from dualagent.realtime import protocol as p
from dualagent.realtime.client import RealtimeConnectionError, RetryPolicy
from dualagent.realtime.phone_audio import FRAME_BYTES, CallerSpeech, mulaw_decode, mulaw_encode
from dualagent.realtime.phone_stream import stream_parameters, with_stream_parameters
from dualagent.realtime.transports import open_connection, transport_name

HANG_GUARD_S = 300.0
BOT_SCRIPT = Path(__file__).parent / "bots" / "pipecat_phone_bot.py"


def tone(seconds: float, rate_hz: int = p.SAMPLE_RATE_HZ, level: int = 8000) -> bytes:
    """A 440 Hz tone, PCM16."""
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    return (np.sin(2 * math.pi * 440 * t) * level).astype("<i2").tobytes()


# ------------------------------------------------------------------------------ μ-law


def test_mulaw_is_the_g711_reference() -> None:
    """Every 16-bit sample encodes as the reference (audioop's g711) does, and every code
    decodes to its reference value; a tone survives the round trip."""
    every = np.arange(-32768, 32768, dtype="<i2").tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
        assert mulaw_encode(every) == audioop.lin2ulaw(every, 2)
        codes = bytes(range(256))
        assert mulaw_decode(codes) == audioop.ulaw2lin(codes, 2)
    pcm = np.frombuffer(tone(0.1, 8000), dtype="<i2")
    back = np.frombuffer(mulaw_decode(mulaw_encode(pcm.tobytes())), dtype="<i2")
    assert np.max(np.abs(back.astype(int) - pcm)) <= 256  # μ-law's step at this level


def test_caller_speech_is_found_frame_by_frame() -> None:
    detector = CallerSpeech()
    frame = 2 * p.SAMPLE_RATE_HZ // 50
    notes = []
    audio = bytes(frame * 10) + tone(0.5) + bytes(frame * 40)
    for start in range(0, len(audio), frame):
        note = detector.frame(audio[start : start + frame])
        if note:
            notes.append(note)
    assert [n[0] for n in notes] == ["started", "stopped"]
    assert notes[0][1] == 200 and notes[1][1] == 700  # ms into the stream
    assert len(notes[1][2]) == len(tone(0.5))


def test_stream_parameters_ride_in_the_url_fragment() -> None:
    url = with_stream_parameters("twilio+ws://127.0.0.1:9/ws#caller_id=%2B1555", {"a": "b"})
    assert stream_parameters(url) == {"a": "b", "caller_id": "+1555"}
    assert transport_name(url) == "phone-stream"


# ------------------------------------------------------------------------------ a tiny bot


class TinyBot:
    """A phone-stream bot written here: records what it receives; ``script`` runs per call."""

    def __init__(self, script: Any = None) -> None:
        self.received: list[dict[str, Any]] = []
        self.errors: list[Exception] = []  # what its script raised
        self.got_media = asyncio.Event()
        self.got_mark = asyncio.Event()
        self.script = script
        self.url = ""

    async def handler(self, ws: ServerConnection) -> None:
        tasks = []
        if self.script is not None:
            tasks.append(asyncio.create_task(self.script(self, ws)))
        try:
            async for message in ws:
                data = json.loads(message)
                self.received.append(data)
                if data["event"] == "media":
                    self.got_media.set()
                elif data["event"] == "mark":
                    self.got_mark.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()
            for outcome in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(outcome, Exception):
                    self.errors.append(outcome)

    def of(self, event: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m["event"] == event]


async def send_media(ws: ServerConnection, stream_sid: str, pcm8k: bytes) -> None:
    """The bot's audio in 20 ms frames, sent at once (bots send ahead of playback)."""
    mulaw = mulaw_encode(pcm8k)
    for start in range(0, len(mulaw), FRAME_BYTES):
        payload = base64.b64encode(mulaw[start : start + FRAME_BYTES]).decode()
        message = {"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}
        await ws.send(json.dumps(message))


async def stream_sid_of(bot: TinyBot) -> str:
    while not bot.of("start"):
        await asyncio.sleep(0.01)
    return bot.of("start")[0]["start"]["streamSid"]


@contextlib.asynccontextmanager
async def tiny_bot(script: Any = None) -> AsyncIterator[TinyBot]:
    bot = TinyBot(script)
    async with serve(bot.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        bot.url = f"twilio+ws://127.0.0.1:{port}/stream#caller_id=%2B15550100&call_sid=CA42"
        yield bot


async def events_until(connection: Any, last: str) -> list[dict[str, Any]]:
    seen = []
    async for event in connection:
        seen.append(event)
        if event["type"] == last:
            return seen
    raise AssertionError(f"the stream ended before {last}: {[e['type'] for e in seen]}")


async def test_caller_audio_goes_out_as_20ms_mulaw_frames_after_start() -> None:
    async with tiny_bot() as bot:
        connection = await open_connection(bot.url)
        try:
            speech = bytes(9600) + tone(1.0) + bytes(48000)  # 0.2 s quiet, 1 s tone, 1 s quiet
            for start in range(0, len(speech), 4800):  # in the bridge's 100 ms chunks
                await connection.send(
                    {
                        "type": "input_audio_buffer.append",
                        "audio": p.encode_audio(speech[start : start + 4800]),
                    }
                )
            await connection.send({"type": "response.create"})  # no phone equivalent
            events = await asyncio.wait_for(
                events_until(connection, "conversation.item.input_audio_transcription.completed"),
                HANG_GUARD_S,
            )
            # 2.2 s of stream is 110 frames, less what the resampler still holds.
            for _ in range(int(HANG_GUARD_S * 10)):
                if len(bot.of("media")) >= 105:
                    break
                await asyncio.sleep(0.1)
        finally:
            await connection.close()
        assert [m["event"] for m in bot.received[:2]] == ["connected", "start"]
        start = bot.of("start")[0]["start"]
        assert start["customParameters"] == {"caller_id": "+15550100", "call_sid": "CA42"}
        assert start["callSid"] == "CA42"
        assert start["mediaFormat"] == {
            "encoding": "audio/x-mulaw",
            "sampleRate": 8000,
            "channels": 1,
        }
        media = bot.of("media")
        sizes = {len(base64.b64decode(m["media"]["payload"])) for m in media}
        assert sizes == {FRAME_BYTES}  # 20 ms of 8 kHz μ-law each
        assert 105 <= len(media) <= 110  # all of the stream, silence included, as it was given
        heard = mulaw_decode(b"".join(base64.b64decode(m["media"]["payload"]) for m in media))
        levels = np.abs(np.frombuffer(heard, dtype="<i2")).reshape(-1, 160).max(axis=1)
        assert levels[:9].max() < 100 and levels[15:55].min() > 4000  # quiet, then the tone
        assert bot.of("stop")  # hung up with stop
        kinds = [e["type"] for e in events]
        assert kinds[0] == "session.created"
        assert kinds.index("input_audio_buffer.speech_started") < kinds.index(
            "input_audio_buffer.committed"
        )
        started = next(e for e in events if e["type"] == "input_audio_buffer.speech_started")
        assert started["audio_start_ms"] == 200
        assert connection.report()["dropped_client_events"] == {"response.create": 1}


async def test_the_bots_audio_is_a_response_and_marks_come_back_once_played() -> None:
    async def speak(bot: TinyBot, ws: ServerConnection) -> None:
        sid = await stream_sid_of(bot)
        await send_media(ws, sid, tone(0.5, 8000))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "said"}}))

    async with tiny_bot(speak) as bot:
        connection = await open_connection(bot.url)
        try:
            events = await asyncio.wait_for(events_until(connection, "response.done"), HANG_GUARD_S)
            await asyncio.wait_for(bot.got_mark.wait(), HANG_GUARD_S)
        finally:
            await connection.close()
    kinds = [e["type"] for e in events]
    assert kinds.index("response.created") < kinds.index("response.output_audio.delta")
    audio = b"".join(p.decode_audio(e["delta"]) for e in events if "delta" in e)
    assert abs(p.pcm16_duration_s(audio) - 0.5) < 0.05  # all of it, at 24 kHz
    done = events[-1]["response"]
    assert done["status"] == "completed"
    assert "response.output_audio_transcript.done" in kinds
    (echo,) = bot.of("mark")
    assert echo["mark"] == {"name": "said"} and echo["streamSid"] == bot.of("start")[0]["streamSid"]


async def test_clear_drops_the_audio_not_played_yet() -> None:
    """The bot sends 5 s at once, then clears as soon as it hears the caller: the response ends
    cut by its own turn detection, and the rest is never handed over (nor its marks kept)."""

    async def speak_then_clear(bot: TinyBot, ws: ServerConnection) -> None:
        sid = await stream_sid_of(bot)
        await send_media(ws, sid, tone(5.0, 8000))
        await ws.send(json.dumps({"event": "mark", "streamSid": sid, "mark": {"name": "end"}}))
        await bot.got_media.wait()  # the caller talks
        await ws.send(json.dumps({"event": "clear", "streamSid": sid}))

    async with tiny_bot(speak_then_clear) as bot:
        connection = await open_connection(bot.url)
        try:
            events = []
            async for event in connection:
                events.append(event)
                if event["type"] == "response.output_audio.delta" and not bot.got_media.is_set():
                    await connection.send(
                        {"type": "input_audio_buffer.append", "audio": p.encode_audio(tone(0.1))}
                    )
                if event["type"] == "response.done":
                    break
            await asyncio.wait_for(bot.got_mark.wait(), HANG_GUARD_S)
            await asyncio.sleep(0.3)  # no stray audio after the clear (a second response)
        finally:
            await connection.close()
    done = events[-1]["response"]
    assert done["status"] == "cancelled"
    assert done["status_details"]["reason"] == "turn_detected"
    played = sum(p.pcm16_duration_s(p.decode_audio(e["delta"])) for e in events if "delta" in e)
    report = connection.report()
    assert played < 4.0 and report["cleared_audio_s"] > 1.0
    assert abs(played + report["cleared_audio_s"] - 5.0) < 0.01  # the resampler's tail too
    assert report["clears"] == 1 and report["marks_echoed"] == 1  # echoed when cleared
    assert report["bot_audio_played_s"] == pytest.approx(played, abs=1e-3)  # nothing after


async def test_a_message_out_of_the_protocol_ends_the_stream_saying_so() -> None:
    """A bot that sends what the protocol does not allow (here a payload that is not base64)
    ends the session with an error the bridge reports as a bad event, rather than hanging."""

    async def garble(bot: TinyBot, ws: ServerConnection) -> None:
        sid = await stream_sid_of(bot)
        bad = {"event": "media", "streamSid": sid, "media": {"payload": "not base64!"}}
        await ws.send(json.dumps(bad))

    async with tiny_bot(garble) as bot:
        connection = await open_connection(bot.url)
        try:
            with pytest.raises(json.JSONDecodeError, match="not a phone-stream message"):
                await asyncio.wait_for(events_until(connection, "response.done"), HANG_GUARD_S)
        finally:
            await connection.close()


async def test_a_bot_that_is_not_there_fails_the_open_plainly() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(RealtimeConnectionError, match="phone-stream bot"):
        from dualagent.realtime.phone_stream import open_connection as open_phone

        await open_phone(f"twilio+ws://127.0.0.1:{port}/ws", policy=RetryPolicy(attempts=1))


# ------------------------------------------------------------------------------ planning


def test_a_phone_stream_bot_is_planned_as_a_phone_line(tmp_path: Path) -> None:
    plan = plan_call(
        CallOptions.build(
            cs_backend="twilio+ws://127.0.0.1:9/ws#caller_id=1", output_dir=str(tmp_path)
        )
    )
    assert plan.pace == "realtime"
    assert plan.metadata["phone_stream"]["agent"] == "phone-stream bot"
    assert plan.sessions["cs"].dump()["audio"]["input"]["turn_detection"]["type"] == "server_vad"
    assert plan.metadata["backend"]["cs"] == "twilio+ws://127.0.0.1:9/ws"  # no parameters
    with pytest.raises(InputError, match="pace realtime"):
        plan_call(
            CallOptions.build(
                cs_backend="twilio+ws://127.0.0.1:9/ws", pace="fast", output_dir=str(tmp_path)
            )
        )
    with pytest.raises((InputError, ValueError), match="cs_backend"):
        CallOptions.build(caller_backend="twilio+ws://127.0.0.1:9/ws")


def test_an_agent_spec_names_the_bot_and_its_start_parameters(tmp_path: Path) -> None:
    from dualagent.agent_spec import load_agent

    spec = load_agent("bank").model_copy(
        update={
            "backend": "twilio+wss://bots.example/stream#call_sid=CA1",
            "stream_parameters": {"caller_id": "+15550100", "call_sid": "CA2"},
        }
    )
    plan = plan_call(CallOptions.build(agent=spec, output_dir=str(tmp_path)))
    assert stream_parameters(plan.backends["cs"]) == {"caller_id": "+15550100", "call_sid": "CA1"}
    assert plan.models["cs"] == "phone-stream-bot" and plan.pace == "realtime"


# ------------------------------------------------------------------------------ evaluation


def test_checks_that_need_a_bots_insides_are_not_observable() -> None:
    """A caller's goal against a bot whose tools and state we cannot see: those checks are
    "not observable" (neither met nor failed), so the call is incomplete, not a failure; a
    check on the caller's side is still judged. Tool calls the bot reported are judged."""
    from dualagent.call.record import CallRecord
    from dualagent.evaluation.outcome import evaluate
    from dualagent.personas import CallerGoal

    goal = CallerGoal(
        primary_goal="block my card",
        success_criteria=["card blocked"],
        failure_conditions=["transferred to human", "call terminated"],
    )
    turns = [{"index": 0, "speaker": "cs", "text": "Your card is blocked. Goodbye!"}]
    bot = {"agent": "phone-stream bot", "observable": {"tool_calls": False}}
    record = CallRecord(path=Path("call"), metadata={"phone_stream": bot}, turns=turns)
    outcome = evaluate(record, goal).as_dict()
    assert outcome["result"] == "incomplete"
    assert outcome["not_observable"] == ["card blocked", "transferred to human"]
    assert outcome["unmet_criteria"] == [] and outcome["failure_conditions_met"] == []
    assert "not observable" in outcome["criteria"][0]["evidence"]
    assert "observable" not in outcome["failures"][1]  # the caller's side: judged as usual

    ours = evaluate(CallRecord(path=Path("call"), turns=turns), goal).as_dict()
    assert "not_observable" not in ours and ours["unmet_criteria"] == ["card blocked"]
    reported = {**bot, "observable": {"tool_calls": "reported"}}
    calls = [{"agent": "cs", "name": "transfer_to_human", "arguments": {}, "ok": True}]
    told = CallRecord(path=Path("call"), metadata={"phone_stream": reported}, turns=turns)
    told.function_calls = calls
    assert evaluate(told, goal).as_dict()["failure_conditions_met"] == ["transferred to human"]


def voice(payload: str) -> bool:
    """Whether a ``media`` payload carries speech (not the line's silence)."""
    return int(np.abs(np.frombuffer(mulaw_decode(base64.b64decode(payload)), "<i2")).max()) > 500


async def caller_spoke(bot: TinyBot) -> None:
    """Wait until the caller has spoken to the bot (over 0.5 s voiced), then 1 s of silence."""
    quiet = 0
    while quiet < 50:
        await asyncio.sleep(0.05)
        voiced = [voice(m["media"]["payload"]) for m in bot.of("media")]
        quiet = voiced[::-1].index(True) if sum(voiced) > 25 else 0


async def call_bot(bot: TinyBot, tmp_path: Path, local_server: Any, *, max_turns: int) -> Any:
    """A typical caller's call to the tiny bot (its result), guarded against a hang."""
    from dualagent.call.simulate import simulate

    return await asyncio.wait_for(
        simulate(
            caller_type="typical",
            max_turns=max_turns,
            cs_backend=bot.url,
            output_dir=str(tmp_path),
            local_server=local_server,
        ),
        HANG_GUARD_S,
    )


async def test_tool_calls_a_bot_reports_are_recorded_and_judged(
    local_server: Any, tmp_path: Path
) -> None:
    """A whole call to a tiny bot that, once the caller has spoken, POSTs a tool call to the
    tool_report_url it got in start, then answers with a tone: the recording has the call
    (reported by the bot), the bot's answer, and the outcome judges the reported call."""
    import httpx

    async def answer(bot: TinyBot, ws: ServerConnection) -> None:
        sid = await stream_sid_of(bot)
        url = bot.of("start")[0]["start"]["customParameters"]["tool_report_url"]
        await caller_spoke(bot)
        report = {"name": "transfer_to_human", "arguments": {"reason": "asked"}, "output": {}}
        async with httpx.AsyncClient() as client:
            assert (await client.post(url, json=report)).status_code == 200
            bad = await client.post(url, json={"arguments": {}})
            assert bad.status_code == 400  # a report without a name is refused
        await send_media(ws, sid, tone(1.5, 8000))

    async with tiny_bot(answer) as bot:
        result = await call_bot(bot, tmp_path, local_server, max_turns=2)
    assert not bot.errors, bot.errors
    assert result.metadata["status"] == "completed", result.metadata.get("error")
    (call,) = result.function_calls
    assert (call["name"], call["agent"], call["reported_by"]) == ("transfer_to_human", "cs", "bot")
    assert [t["speaker"] for t in result.turns] == ["caller", "cs"]
    stream = result.metadata["phone_stream"]
    assert stream["tool_reports"] == 1 and stream["observable"]["tool_calls"] == "reported"
    outcome = result.metadata["outcome"]
    assert "transferred to human" in outcome["failure_conditions_met"]  # judged on the report
    assert outcome["result"] == "failure"


async def test_a_bot_that_hangs_up_ends_the_call_as_completed(
    local_server: Any, tmp_path: Path
) -> None:
    """A bot that answers the caller and then closes its stream (its hang-up): the call ends as
    completed by the agent (``cs_ended_call``), not as a dropped line, with its answer played
    and recorded."""

    async def answer_and_hang_up(bot: TinyBot, ws: ServerConnection) -> None:
        sid = await stream_sid_of(bot)
        await caller_spoke(bot)
        await send_media(ws, sid, tone(1.5, 8000))
        await ws.close()  # a clean close: the bot hangs up

    async with tiny_bot(answer_and_hang_up) as bot:
        result = await call_bot(bot, tmp_path, local_server, max_turns=6)
    assert not bot.errors, bot.errors
    metadata = result.metadata
    assert (metadata["status"], metadata["end_reason"]) == ("completed", "cs_ended_call"), (
        metadata.get("error")
    )
    assert [t["speaker"] for t in result.turns] == ["caller", "cs"]  # its answer is recorded
    assert level(tmp_path / result.conversation_id / "cs_audio.wav") > 100


# ------------------------------------------------------------------------------ a Pipecat bot


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, bot: subprocess.Popen[bytes]) -> None:
    for _ in range(int(HANG_GUARD_S * 10)):
        if bot.poll() is not None:
            raise AssertionError(f"the Pipecat bot exited with {bot.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("the Pipecat bot did not start")


def level(wav: Path) -> float:
    import soundfile

    audio, _ = soundfile.read(wav, dtype="int16")
    return float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))


@pytest.mark.slow
async def test_a_pipecat_bot_takes_a_call_and_clears_when_the_caller_cuts_in(
    local_server: Any, tmp_path: Path
) -> None:
    """A frustrated caller (who always cuts in) phones the Pipecat bot: both channels are
    recorded, the bot's words are transcribed on our side, the bot cleared its audio when the
    caller cut in (a turn cut by it), latency is measured on the stream, and the call has an
    outcome."""
    pytest.importorskip("pipecat", reason="the test extra installs pipecat-ai")
    from dualagent.call.simulate import simulate
    from dualagent.personas import load_persona

    frustrated = load_persona("frustrated")
    cuts_in = frustrated.personality.model_copy(update={"tendency_to_interrupt": 1.0})
    persona = frustrated.model_copy(update={"personality": cuts_in})
    port = free_port()
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "DO_NOT_TRACK": "1"}
    bot = subprocess.Popen(
        [sys.executable, str(BOT_SCRIPT), "--port", str(port), "--realtime-url", local_server.url],
        env=env,
    )
    try:
        await wait_for_port(port, bot)
        result = await asyncio.wait_for(
            simulate(
                caller_type=persona,
                seed=3,
                max_turns=4,
                duration=40,
                cs_backend=f"twilio+ws://127.0.0.1:{port}/ws#caller_id=%2B15550100",
                idle_timeout_s=240.0,  # a busy machine may keep the bot thinking a long time
                output_dir=str(tmp_path),
                local_server=local_server,
            ),
            HANG_GUARD_S,
        )
    finally:
        bot.terminate()
        bot.wait(30)
    metadata = result.metadata
    assert metadata["status"] == "completed", (metadata["end_reason"], metadata.get("error"))
    folder = tmp_path / result.conversation_id
    assert level(folder / "caller_audio.wav") > 100 and level(folder / "cs_audio.wav") > 100
    bot_turns = [t for t in result.turns if t["speaker"] == "cs"]
    assert bot_turns and any(t["text"] for t in bot_turns)  # its words, transcribed by us
    stream = metadata["phone_stream"]
    assert stream["agent"] == "phone-stream bot" and stream["protocol"] == "twilio-media-streams"
    assert stream["custom_parameters"] == ["caller_id", "tool_report_url"]
    assert stream["clears"] >= 1
    # The bot cleared while it was talking: its turn ends there, cut by the caller. (How much
    # unplayed audio the clear dropped depends on how far ahead its TTS ran: not asserted.)
    cut = [t for t in bot_turns if t.get("response_status") == "cancelled"]
    assert cut and all(t["interrupted"] for t in cut)
    assert metadata["turn_taking"]["agent"] == "server_vad"
    latency = metadata["metrics"]["stream_latency_s"]  # measured on the stream
    assert latency["count"] == len(stream["latencies_s"]) >= 1
    assert metadata["outcome"]["result"] in ("success", "failure", "incomplete")
    assert metadata["outcome"].get("not_observable") or stream["tool_reports"]
    assert metadata["metrics"]["interruptions"] >= 1
