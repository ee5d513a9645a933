"""The embedded Realtime-compatible server: a thin asyncio pump around :class:`LocalSession`.

It serves ``/v1/realtime?model=...`` on 127.0.0.1 like OpenAI's endpoint does, so the bridge,
the official ``openai`` SDK or any Realtime client can talk to it. The model names the brain
(``local-caller``, ``local-cs``: see :mod:`~dualagent.realtime.local.brains.registry`). Speech
work (ASR, TTS) runs in the engine thread pool; the brain runs inline (it is cheap).

Usage::

    async with LocalRealtimeServer() as server:
        url = server.url  # ws://127.0.0.1:PORT/v1/realtime
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.server import ServerConnection, serve

from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.local import engines
from dualagent.realtime.local.brains.base import (
    AnyBrain,
    BrainInput,
    BrainUnavailableError,
    GenerationStats,
    StreamingBrain,
    TextDelta,
    ToolCall,
)
from dualagent.realtime.local.brains.registry import LOCAL_CS_MODEL, brain_for
from dualagent.realtime.local.faults import ConnectionFaults, FaultPlan
from dualagent.realtime.local.profile import parse_profile
from dualagent.realtime.local.session import LocalSession, Respond, StopResponse, Transcribe
from dualagent.realtime.redact import RedactingLogger
from dualagent.realtime.server_events import ServerEventBase

log = logging.getLogger(__name__)

REALTIME_PATH = "/v1/realtime"
RUNNING: dict[str, LocalRealtimeServer] = {}
"""The servers started in this process, by :attr:`LocalRealtimeServer.memory_name`."""
_SERVER_NUMBERS = itertools.count(1)
AUDIO_CHUNK_S = 0.2  # size of each response.output_audio.delta


class SentenceSplitter:
    """Text arriving piece by piece -> sentences to speak, each as soon as it is complete."""

    _END = re.compile(r"[.!?][\"')\]]*\s+|\n+")  # a sentence ends, or a line does
    LONG_WORDS = 30  # past this without an end, speak up to the last comma

    def __init__(self) -> None:
        self.rest = ""

    def feed(self, text: str) -> list[str]:
        self.rest += text
        ends = list(self._END.finditer(self.rest))
        if ends:
            cut = ends[-1].end()
        elif len(self.rest.split()) > self.LONG_WORDS and ", " in self.rest:
            cut = self.rest.rindex(", ") + 2
        else:
            return []
        done, self.rest = self.rest[:cut], self.rest[cut:]
        return self._sentences(done)

    def flush(self) -> list[str]:
        done, self.rest = self.rest, ""
        return self._sentences(done)

    @staticmethod
    def _sentences(text: str) -> list[str]:
        return [
            sentence
            for line in text.splitlines()
            for sentence in engines.split_sentences(line)
            if any(c.isalnum() for c in sentence)
        ]


class Outlet(Protocol):
    """Where a session's server events go: a websocket, or an in-memory queue.

    ``line`` is what injected faults act on (``send`` a raw message, ``close(code, reason)``,
    ``transport.abort()``): the websocket itself, or its in-memory stand-in.
    """

    line: Any

    async def deliver(self, event: dict[str, Any]) -> None:
        """Send one server event (a dict of JSON types)."""
        ...


class _WebsocketOutlet:
    def __init__(self, ws: ServerConnection) -> None:
        self.line = ws

    async def deliver(self, event: dict[str, Any]) -> None:
        await self.line.send(json.dumps(event))


class SessionDriver:
    """One client's session, whatever carries it: the session core plus its running work.

    The websocket handler and the in-memory transport (:mod:`dualagent.realtime.memory`) both
    feed client events in with :meth:`receive`; server events leave through the ``outlet``.
    """

    def __init__(self, outlet: Outlet, session: LocalSession, server: LocalRealtimeServer) -> None:
        self.outlet = outlet
        self.session = session
        self.server = server
        self.transcriptions: dict[str, asyncio.Task[None]] = {}
        self.response_task: asyncio.Task[None] | None = None
        self.brain: AnyBrain | None = None
        self.faults: ConnectionFaults | None = None  # injected on purpose (tests, --faults)

    async def send(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, ServerEventBase):
                event = action.dump()
                if self.faults is None or await self.faults.before_send(self.outlet.line, event):
                    await self.outlet.deliver(event)
            elif isinstance(action, Transcribe):
                self.transcriptions[action.item_id] = asyncio.create_task(self._transcribe(action))
            elif isinstance(action, Respond):
                self.response_task = asyncio.create_task(self._respond(action))
            elif isinstance(action, StopResponse):
                task = self.response_task
                if task is not None and not task.done() and task is not asyncio.current_task():
                    task.cancel()

    async def receive(self, message: str | bytes | dict[str, Any]) -> None:
        """Handle one client event: raw JSON (websocket) or a dict (in memory)."""
        await self.send(self.session.handle_raw(message))

    async def _transcribe(self, order: Transcribe) -> None:
        loop = asyncio.get_running_loop()
        text = await loop.run_in_executor(
            engines.engine_pool(), self.server.asr().transcribe, order.pcm16
        )
        await self.send(
            self.session.transcription_done(order.item_id, text, p.pcm16_duration_s(order.pcm16))
        )

    async def _respond(self, order: Respond) -> None:
        session = self.session
        try:
            # The brain must read what it just heard: wait for pending transcriptions.
            pending = [t for t in self.transcriptions.values() if not t.done()]
            if pending:
                # wait(), not gather(): cancelling this response must not cancel them.
                await asyncio.wait(pending)
            config = session.config
            instructions = config.instructions or ""
            tools = order.params.tools if order.params.tools is not None else (config.tools or [])
            profile = parse_profile(instructions)
            if self.brain is None:  # the session refuses responses for unregistered models
                self.brain = brain_for(config.model)(profile)
            given = BrainInput(
                instructions=instructions,
                profile=profile,
                tools=[t.name for t in tools],
                conversation=session.conversation(),
                response_instructions=order.params.instructions,
                barge_in=order.params.barge_in,
                tool_specs=[t.model_dump(exclude_none=True) for t in tools],
            )
            if isinstance(self.brain, StreamingBrain):
                await self._stream_reply(self.brain, given)
                return
            reply = self.brain.respond(given)
            if reply.text:
                await self._speak(reply.text)
            for name, arguments in reply.tool_calls:
                await self.send(session.function_call(name, arguments))
            await self.send(session.response_finished("completed"))
        except asyncio.CancelledError:
            # response.cancel already sent response.done; nothing more to say.
            raise
        except BrainUnavailableError as exc:  # e.g. a language model's endpoint is down
            log.warning("local response failed: %s", exc)
            error = ev.ErrorEvent(
                event_id=session.ids("event"),
                error=ev.ErrorDetails(
                    type="server_error", code="model_unavailable", message=str(exc)
                ),
            )
            await self.send([error, *session.response_failed(str(exc))])
        except Exception as exc:  # a brain or engine bug must not kill the connection
            log.exception("local response failed")
            await self.send(session.response_failed(f"local engine error: {exc}"))

    async def _speak(self, text: str) -> None:
        """Stream one message sentence by sentence: transcript delta, then its audio."""
        item_id, events = self.session.begin_message()
        await self.send(events)
        for sentence in engines.split_sentences(text):
            await self._say(item_id, sentence)
        await self.send(self.session.end_message(item_id))

    async def _say(self, item_id: str, sentence: str) -> None:
        """One sentence of a message: its text once its audio is ready, then the audio.

        So a response cancelled mid-way has said (and written) the same sentences, whatever
        the timing.
        """
        session = self.session
        audio_out = session.response is not None and "audio" in session.response.output_modalities
        if not audio_out:
            await self.send(session.message_text(item_id, sentence))
            return
        audio = await asyncio.get_running_loop().run_in_executor(
            engines.engine_pool(),
            self.server.synthesize,
            sentence,
            session.voice,
            session.speed,
        )
        await self.send(session.message_text(item_id, sentence))
        chunk_bytes = int(AUDIO_CHUNK_S * p.SAMPLE_RATE_HZ) * 2
        for start in range(0, len(audio), chunk_bytes):
            await self.send(session.message_audio(item_id, audio[start : start + chunk_bytes]))

    async def _stream_reply(self, brain: StreamingBrain, given: BrainInput) -> None:
        """Speak a streaming brain's reply sentence by sentence as its text arrives (the next
        sentence is generated while this one is synthesized), then send its tool calls as
        ``function_call`` items. Cancelling the response closes the brain's stream."""
        session = self.session
        sentences: asyncio.Queue[str | Exception | None] = asyncio.Queue()
        tool_calls: list[ToolCall] = []
        stats: list[GenerationStats] = []

        async def produce() -> None:
            splitter = SentenceSplitter()
            try:
                async with contextlib.aclosing(brain.stream(given)) as parts:  # type: ignore[type-var]
                    async for part in parts:
                        if isinstance(part, TextDelta):
                            for sentence in splitter.feed(part.text):
                                sentences.put_nowait(sentence)
                        elif isinstance(part, ToolCall):
                            tool_calls.append(part)
                        elif isinstance(part, GenerationStats):
                            stats.append(part)
                for sentence in splitter.flush():
                    sentences.put_nowait(sentence)
                sentences.put_nowait(None)
            except Exception as exc:
                sentences.put_nowait(exc)

        producer = asyncio.create_task(produce())
        try:
            item_id = None
            while (sentence := await sentences.get()) is not None:
                if isinstance(sentence, Exception):
                    raise sentence
                if item_id is None:
                    item_id, events = session.begin_message()
                    await self.send(events)
                await self._say(item_id, sentence)
            if item_id is not None:
                await self.send(session.end_message(item_id))
        finally:
            if not producer.done():
                producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
        for call in tool_calls:
            await self.send(session.function_call(call.name, call.arguments))
        finished = session.response_finished("completed")
        for event in finished:
            if isinstance(event, ev.ResponseDone) and stats:
                # Time to first token and tokens/s per turn, where the bridge records every
                # server event (session_events.json).
                event.response.metadata = {
                    **(event.response.metadata or {}),
                    **stats[-1].as_metadata(),
                }
        await self.send(finished)

    async def close(self) -> None:
        tasks = [
            *self.transcriptions.values(),
            *([self.response_task] if self.response_task else []),
        ]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


class LocalRealtimeServer:
    """A Realtime-compatible websocket server on 127.0.0.1 with local speech engines and brains.

    ``port=0`` picks a free port. Engines load lazily on first use; :meth:`start` warms them
    (unless ``warm=False``) so the first call is as fast as the rest.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        warm: bool = True,
        tts: Callable[[], engines.TextToSpeech] = engines.get_tts,
        asr: Callable[[], engines.SpeechToText] = engines.get_asr,
        faults: FaultPlan | str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.warm = warm
        self._tts = tts
        self.asr = asr
        self._server: Any = None
        self._session_counter = 0
        self.memory_name = f"local-{next(_SERVER_NUMBERS)}"
        self.connections: set[SessionDriver] = set()
        # Faults injected on purpose (see faults.py); a bad spec raises FaultSpecError.
        self.faults = FaultPlan.parse(faults) if isinstance(faults, str) else faults

    @property
    def url(self) -> str:
        """The websocket URL clients connect to (without the ``model`` query)."""
        return f"ws://{self.host}:{self.port}{REALTIME_PATH}"

    @property
    def memory_url(self) -> str:
        """The ``memory://`` URL of this server: its sessions joined in this process, without a
        socket or JSON (:mod:`dualagent.realtime.memory`; ``model`` query as for :attr:`url`)."""
        return f"memory://{self.memory_name}{REALTIME_PATH}"

    @property
    def base_url(self) -> str:
        """The ``websocket_base_url`` for the openai SDK (it appends ``/realtime``)."""
        return f"ws://{self.host}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        """Open connections, sessions served, and the engine caches' hits and misses."""
        return {
            "connections": len(self.connections),
            "sessions": self._session_counter,
            "engine_caches": engines.cache_stats(),
        }

    def synthesize(self, text: str, voice: str | None, speed: float) -> bytes:
        """Run TTS to completion (called in the engine pool)."""
        return b"".join(self._tts().synthesize(text, voice=voice, speed=speed))

    async def start(self) -> LocalRealtimeServer:
        if self.warm:
            started = time.perf_counter()
            await asyncio.get_running_loop().run_in_executor(engines.engine_pool(), self._warm_up)
            log.debug("engines warm in %.2fs", time.perf_counter() - started)
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._check_path,
            max_size=None,
            compression=None,
            # websockets logs request lines and headers at DEBUG: a client's key must not show.
            logger=RedactingLogger(logging.getLogger("websockets.server")),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        RUNNING[self.memory_name] = self
        return self

    def _warm_up(self) -> None:
        engines.warm_up_engines(lambda: self.synthesize("Hello.", None, 1.0), self.asr())

    async def close(self) -> None:
        RUNNING.pop(self.memory_name, None)
        for driver in list(self.connections):  # in-memory sessions end as a websocket's would
            if not isinstance(driver.outlet, _WebsocketOutlet):
                await driver.outlet.line.close(1001, "server closing")
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LocalRealtimeServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.close()

    def _check_path(self, connection: ServerConnection, request: Any) -> Any:
        path = urlsplit(request.path).path.rstrip("/")
        if path not in (REALTIME_PATH, "/realtime", ""):
            return connection.respond(404, f"Not found: {path}. Use {REALTIME_PATH}?model=...\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query) if ws.request else {}
        model = (query.get("model") or [LOCAL_CS_MODEL])[0]
        await self.serve_session(self.open_session(model, _WebsocketOutlet(ws)), ws)

    def open_session(self, model: str, outlet: Outlet) -> SessionDriver:
        """A new session for ``model`` whose server events go to ``outlet`` (any transport)."""
        self._session_counter += 1
        session = LocalSession(f"sess_local{self._session_counter:05d}", model=model)
        driver = SessionDriver(outlet, session, self)
        if self.faults is not None:
            driver.faults = self.faults.for_connection(model, self._session_counter)
        self.connections.add(driver)
        return driver

    async def serve_session(
        self, driver: SessionDriver, messages: AsyncIterable[str | bytes | dict[str, Any]]
    ) -> None:
        """Run one session: its opening events, then every client event until ``messages``
        ends or the line drops; its running work is stopped on the way out."""
        try:
            await driver.send(driver.session.start())
            async for message in messages:
                await driver.receive(message)
        except (websockets.ConnectionClosed, ConnectionError):
            pass
        finally:
            self.connections.discard(driver)
            await driver.close()
