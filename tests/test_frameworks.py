"""Other frameworks' Realtime clients, unmodified, hold a spoken call with the embedded server.

LiveKit Agents' OpenAI realtime plugin and Pipecat's OpenAI Realtime LLM service are pointed at
``ws://127.0.0.1:PORT/v1/realtime?model=local-cs`` as a team would point them in its own CI:
no room, no transport, speech fed as PCM16 24 kHz from our own TTS. Each holds a short call (a
greeting, two spoken turns, a tool round trip) on its default settings (server turn detection)
and with turn detection off (the client commits and asks for the answer).

No timing is asserted: the timeouts only stop a hang. Nothing may leave 127.0.0.1 (a guard
refuses any other connection), and the frameworks' telemetry is switched off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from dualagent.realtime import protocol as p
from dualagent.realtime.local.engines import get_tts

pytest.importorskip("livekit.plugins.openai", reason="the test extra installs livekit-agents")
pytest.importorskip("pipecat", reason="the test extra installs pipecat-ai")

pytestmark = pytest.mark.slow

HANG_GUARD_S = 60.0  # only stops a hang; every step takes well under a second or two here

NANCY_SAYS = (
    "I lost my card. My name is Nancy Wilson and my date of birth is "
    "March fourteenth nineteen fifty eight."
)
BLOCK_IT = "Yes please block the card, it was lost yesterday."
VERIFIED = {"ok": True, "verified": True, "customer_id": "cust_001", "first_name": "Nancy"}


@pytest.fixture(autouse=True)
def only_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse any connection that does not go to 127.0.0.1, and switch telemetry off."""
    for name, value in {
        "OTEL_SDK_DISABLED": "true",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_METRICS_EXPORTER": "none",
        "DO_NOT_TRACK": "1",
        "OPENAI_API_KEY": "test-key-not-used",
    }.items():
        monkeypatch.setenv(name, value)
    original = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            raise OSError(f"test_frameworks: connection to {address!r} refused (loopback only)")
        return original(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    yield


def speech(text: str) -> bytes:
    """``text`` spoken by our TTS, PCM16 24 kHz, followed by a second of silence."""
    pcm = b"".join(get_tts().synthesize(text, voice="echo", speed=1.0))
    return pcm + b"\x00\x00" * p.SAMPLE_RATE_HZ


def chunks(pcm: bytes, ms: int = 100) -> Iterator[bytes]:
    step = 2 * p.SAMPLE_RATE_HZ * ms // 1000
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step]


# --------------------------------------------------------------------------------- LiveKit


def livekit_model(server: Any, **options: Any) -> Any:
    from livekit.plugins import openai as lk_openai

    return lk_openai.realtime.RealtimeModel(
        model="local-cs", base_url=server.base_url, api_key="test", **options
    )


def livekit_tools() -> list[Any]:
    from livekit.agents import llm

    @llm.function_tool
    async def verify_customer(full_name: str, date_of_birth: str) -> dict[str, Any]:
        """Verify the caller by full name and date of birth (YYYY-MM-DD)."""
        return VERIFIED

    @llm.function_tool
    async def report_card_lost_or_stolen(card_last_four: str = "", reason: str = "lost") -> str:
        """Block a card reported lost or stolen."""
        return "blocked"

    return [verify_customer, report_card_lost_or_stolen]


async def drain(generation: Any) -> tuple[str, list[Any]]:
    """A LiveKit generation's text (all its messages) and function calls, read to the end."""
    texts: list[str] = []
    calls: list[Any] = []

    async def read_messages() -> None:
        async for message in generation.message_stream:
            audio = asyncio.ensure_future(_consume(message.audio_stream))
            texts.append("".join([delta async for delta in message.text_stream]))
            await audio

    async def read_calls() -> None:
        calls.extend([call async for call in generation.function_stream])

    await asyncio.gather(read_messages(), read_calls())
    return " ".join(texts), calls


async def _consume(stream: AsyncIterator[Any]) -> None:
    async for _ in stream:
        pass


class LiveKitCall:
    """One LiveKit realtime session, its server-initiated generations in a queue."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.server_generations: asyncio.Queue[Any] = asyncio.Queue()
        self.errors: list[Any] = []
        session.on("generation_created", self._on_generation)
        session.on("error", self.errors.append)

    def _on_generation(self, generation: Any) -> None:
        if not generation.user_initiated:
            self.server_generations.put_nowait(generation)

    async def reply(self) -> tuple[str, list[Any]]:
        """generate_reply(): it must resolve (LiveKit fails it after 10 s otherwise)."""
        generation = await asyncio.wait_for(self.session.generate_reply(), HANG_GUARD_S)
        assert generation.user_initiated
        return await asyncio.wait_for(drain(generation), HANG_GUARD_S)

    def say(self, text: str) -> None:
        from livekit import rtc

        for piece in chunks(speech(text)):
            samples = len(piece) // 2
            frame = rtc.AudioFrame(piece, p.SAMPLE_RATE_HZ, 1, samples)
            self.session.push_audio(frame)

    async def answered_by_server(self) -> tuple[str, list[Any]]:
        generation = await asyncio.wait_for(self.server_generations.get(), HANG_GUARD_S)
        return await asyncio.wait_for(drain(generation), HANG_GUARD_S)

    async def tool_result(self, call: Any, output: dict[str, Any]) -> None:
        from livekit.agents import llm

        chat_ctx = self.session.chat_ctx.copy()
        chat_ctx.items.append(
            llm.FunctionCallOutput(
                call_id=call.call_id, name=call.name, output=json.dumps(output), is_error=False
            )
        )
        await asyncio.wait_for(self.session.update_chat_ctx(chat_ctx), HANG_GUARD_S)


async def test_livekit_realtime_plugin_on_its_defaults(local_server) -> None:
    """Server turn detection (LiveKit's default): speech is answered without a commit, and
    every generate_reply() resolves with its own response."""
    model = livekit_model(local_server)
    session = model.session()
    call = LiveKitCall(session)
    try:
        await session.update_tools(livekit_tools())
        greeting, _ = await call.reply()
        assert "First Bank" in greeting

        call.say(NANCY_SAYS)
        _, calls = await call.answered_by_server()
        assert [c.name for c in calls] == ["verify_customer"]
        assert json.loads(calls[0].arguments)["full_name"] == "Nancy Wilson"
        await call.tool_result(calls[0], VERIFIED)
        after_tool, _ = await call.reply()
        assert "verified" in after_tool.lower()

        call.say(BLOCK_IT)
        answer, more_calls = await call.answered_by_server()
        assert answer or more_calls
        assert not call.errors, call.errors
    finally:
        await session.aclose()
        await model.aclose()


async def test_livekit_realtime_plugin_with_turn_detection_off(local_server) -> None:
    """The client owns the turns: it commits the speech and asks for each answer."""
    model = livekit_model(local_server, turn_detection=None)
    session = model.session()
    call = LiveKitCall(session)
    try:
        await session.update_tools(livekit_tools())
        greeting, _ = await call.reply()
        assert "First Bank" in greeting

        call.say(NANCY_SAYS)
        session.commit_audio()
        _, calls = await call.reply()
        assert [c.name for c in calls] == ["verify_customer"]
        await call.tool_result(calls[0], VERIFIED)
        after_tool, _ = await call.reply()
        assert "verified" in after_tool.lower()

        call.say(BLOCK_IT)
        session.commit_audio()
        answer, more_calls = await call.reply()
        assert answer or more_calls
        assert call.server_generations.empty()  # nothing answered on its own
        assert not call.errors, call.errors
    finally:
        await session.aclose()
        await model.aclose()


# --------------------------------------------------------------------------------- Pipecat


class PipecatCall:
    """A Pipecat pipeline around OpenAIRealtimeLLMService, with no transport: frames in by
    ``queue_frames``, the bot's answers out of a collector after the service."""

    def __init__(self, server: Any, *, turn_detection: bool) -> None:
        from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
        from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
        from pipecat.frames.frames import LLMFullResponseEndFrame, TTSTextFrame
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.worker import PipelineParams, PipelineWorker
        from pipecat.processors.aggregators.llm_context import LLMContext
        from pipecat.processors.aggregators.llm_response_universal import (
            LLMContextAggregatorPair,
        )
        from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
        from pipecat.services.openai.realtime import events
        from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService

        self.answers: asyncio.Queue[str] = asyncio.Queue()
        self.tool_calls: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.errors: list[Any] = []
        answers, parts = self.answers, []

        class Collector(FrameProcessor):
            async def process_frame(self, frame: Any, direction: FrameDirection) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, TTSTextFrame):
                    parts.append(frame.text)
                elif isinstance(frame, LLMFullResponseEndFrame) and parts:
                    answers.put_nowait("".join(parts))
                    parts.clear()
                await self.push_frame(frame, direction)

        properties = events.SessionProperties()
        if not turn_detection:  # Pipecat's opt-out; by default it leaves it to the server
            properties = events.SessionProperties(
                audio=events.AudioConfiguration(input=events.AudioInput(turn_detection=False))
            )
        self.llm = OpenAIRealtimeLLMService(
            api_key="test",
            base_url=server.url,
            settings=OpenAIRealtimeLLMService.Settings(
                model="local-cs", session_properties=properties
            ),
        )
        self.llm.register_function("verify_customer", self._verify_customer)
        tools = ToolsSchema(
            standard_tools=[
                FunctionSchema(
                    name="verify_customer",
                    description="Verify the caller by full name and date of birth.",
                    properties={
                        "full_name": {"type": "string"},
                        "date_of_birth": {"type": "string"},
                    },
                    required=["full_name", "date_of_birth"],
                )
            ]
        )
        context = LLMContext(tools=tools)
        aggregators = LLMContextAggregatorPair(context)
        pipeline = Pipeline([aggregators.user(), self.llm, Collector(), aggregators.assistant()])
        self.task = PipelineWorker(
            pipeline,
            params=PipelineParams(audio_in_sample_rate=p.SAMPLE_RATE_HZ),
            idle_timeout_secs=None,
            enable_rtvi=False,
        )

        @self.task.event_handler("on_pipeline_error")
        async def on_error(task: Any, frame: Any) -> None:
            self.errors.append(frame)

        self.context = context

    async def _verify_customer(self, params: Any) -> None:
        self.tool_calls.put_nowait((params.function_name, dict(params.arguments)))
        await params.result_callback(VERIFIED)

    async def start(self) -> None:
        from pipecat.frames.frames import LLMContextFrame
        from pipecat.workers.runner import WorkerRunner

        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.task)
        self.runner = asyncio.ensure_future(runner.run())
        await self.task.queue_frames([LLMContextFrame(self.context)])

    async def say(self, text: str, *, commit: bool) -> None:
        from pipecat.frames.frames import (
            InputAudioRawFrame,
            UserStartedSpeakingFrame,
            UserStoppedSpeakingFrame,
        )

        frames: list[Any] = [UserStartedSpeakingFrame()] if commit else []
        frames += [
            InputAudioRawFrame(audio=piece, sample_rate=p.SAMPLE_RATE_HZ, num_channels=1)
            for piece in chunks(speech(text))
        ]
        if commit:  # what a local VAD would tell the service when the user stops
            frames.append(UserStoppedSpeakingFrame())
        await self.task.queue_frames(frames)

    async def answer(self) -> str:
        return await asyncio.wait_for(self.answers.get(), HANG_GUARD_S)

    async def tool_call(self) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.tool_calls.get(), HANG_GUARD_S)

    async def stop(self) -> None:
        await self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(self.runner, HANG_GUARD_S)


@pytest.mark.parametrize("turn_detection", [True, False], ids=["defaults", "turn_detection_off"])
async def test_pipecat_openai_realtime_service(local_server, turn_detection: bool) -> None:
    """Pipecat leaves turn detection to the server by default: its speech must be answered.
    With it off, the service commits and asks when told the user stopped speaking."""
    call = PipecatCall(local_server, turn_detection=turn_detection)
    await call.start()
    try:
        assert "First Bank" in await call.answer()

        await call.say(NANCY_SAYS, commit=not turn_detection)
        name, arguments = await call.tool_call()
        assert (name, arguments["full_name"]) == ("verify_customer", "Nancy Wilson")
        await call.answer()  # what the agent said with the tool call ("one moment ...")
        assert "verified" in (await call.answer()).lower()  # its answer to the tool's result

        await call.say(BLOCK_IT, commit=not turn_detection)
        assert await call.answer()
        assert not call.errors, call.errors
    finally:
        await call.stop()
