"""``DualAgentBridge``: pumps two Realtime websockets through :class:`dualagent.call.core.CallCore`.

All call logic lives in the core; this module only does I/O: it reads each agent's events,
feeds them to the core, applies the effects (send events, pace audio in ``realtime`` mode,
write the recording), tells the core the time (the silence on the line into an agent with its
own VAD flows with it) and makes sure the recording is finalised however the call ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import websockets

from dualagent.call.answers import worth_retrying
from dualagent.call.core import CallCore, CallSettings
from dualagent.call.effects import (
    AGENTS,
    AddTurn,
    Agent,
    Effect,
    EndCall,
    Flush,
    Log,
    LogToolCall,
    PlaceAudio,
    RunTools,
    Send,
    ToolExecutor,
    ToolOutput,
    UpdateTurn,
)
from dualagent.call.recording import CallRecorder
from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.client import DEFAULT_RETRY, RealtimeConnectionError, RetryPolicy
from dualagent.realtime.redact import redact_url
from dualagent.realtime.transports import Connection, open_connection

log = logging.getLogger(__name__)
# One logger per part a user may want to watch alone (``--log-level DEBUG``, then filter):
# the turn-taking decisions of the core, and the audio routed between the agents.
turns_log = logging.getLogger("dualagent.call.turns")
audio_log = logging.getLogger("dualagent.call.audio")

Pace = Literal["fast", "realtime"]
LINE_TICK_S = 0.05  # how often the core hears the time (silence on an agent's line)
# At a call's end, how long the servers get to acknowledge the items the bridge created last
# (a server that answers does so in milliseconds; this bounds one that never does).
SETTLE_TIMEOUT_S = 2.0
# The events whose handling BridgeStats times (routing an audio chunk, switching turns).
_TIMED_EVENTS = frozenset({"response.output_audio.delta", "response.audio.delta", "response.done"})


@dataclass
class Endpoint:
    """Where one agent's Realtime session lives."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never show headers or credentials in the URL
        return f"Endpoint({redact_url(self.url)!r})"


class BridgeObserver(Protocol):
    """Watches a call as it happens (a live monitor): every server event received and every
    effect of the core, in order. Called on the event loop; must be quick and never raise."""

    def server_event(self, agent: Agent, event: ev.ServerEvent) -> None: ...

    def effect(self, effect: Effect) -> None: ...


@dataclass
class BridgeStats:
    """Where the bridge's own time goes (seconds), to measure its overhead per call."""

    audio_chunk_s: list[float] = field(default_factory=list)  # receive -> forwarded + recorded
    turn_switch_s: list[float] = field(
        default_factory=list
    )  # response.done -> next response.create
    recorder_s: float = 0.0  # time inside the recorder, including finalisation

    def summary(self) -> dict[str, float | int | None]:
        def pct(values: list[float], q: float) -> float | None:
            if not values:
                return None
            ordered = sorted(values)
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 4)

        return {
            "audio_chunks": len(self.audio_chunk_s),
            "audio_chunk_p50_ms": pct(self.audio_chunk_s, 0.5),
            "audio_chunk_p99_ms": pct(self.audio_chunk_s, 0.99),
            "turn_switches": len(self.turn_switch_s),
            "turn_switch_p50_ms": pct(self.turn_switch_s, 0.5),
            "turn_switch_p99_ms": pct(self.turn_switch_s, 0.99),
            "recorder_s": round(self.recorder_s, 4),
        }


@dataclass
class BridgeOutcome:
    status: str
    end_reason: str
    error: str | None
    wall_time_s: float
    sessions_ready_s: float | None
    timeline_s: float


class DualAgentBridge:
    """Connects a caller session and a CS session and runs one call to its end."""

    def __init__(
        self,
        *,
        endpoints: dict[Agent, Endpoint],
        sessions: dict[Agent, p.SessionConfig],
        settings: CallSettings,
        execute_tool: ToolExecutor,
        recorder: CallRecorder,
        pace: Pace = "fast",
        idle_timeout_s: float = 60.0,
        on_log: Callable[[Log], None] | None = None,
        observer: BridgeObserver | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.endpoints = endpoints
        self.sessions = sessions
        self.core = CallCore(replace(settings, pace=pace))  # the pace audio really goes at
        self.execute_tool = execute_tool
        self._tools_running = 0
        self.recorder = recorder
        self.pace = pace
        self.idle_timeout_s = idle_timeout_s
        self.on_log = on_log
        self.observer = observer
        self.retry = retry
        self.connections: dict[Agent, Connection] = {}
        self._t0 = 0.0
        self._last_event = 0.0
        self._ready_s: float | None = None  # when both sessions had accepted their config
        self._ready_agents: set[Agent] = set()
        self._done = asyncio.Event()
        self._end: EndCall | None = None
        self._utterance_wall_start: dict[Agent, float] = {}
        self.stats = BridgeStats()
        self._connect_transient = False  # the connect failed in a way that may pass
        # Items the bridge created (conversation.item.create) that their server has not
        # acknowledged yet, per agent; _acked is set at each acknowledgement.
        # (An item is known by its type and role: the items we create carry no id.)
        self._unacked: dict[Agent, list[tuple[str | None, str | None]]] = {a: [] for a in AGENTS}
        self._acked = asyncio.Event()
        self._sends_item_done: set[Agent] = set()  # servers seen sending conversation.item.done

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    async def run(self) -> BridgeOutcome:
        """Run the call; returns how it ended. The recorder is closed on every path."""
        self._t0 = time.perf_counter()
        self._last_event = self._t0
        readers: list[asyncio.Task[None]] = []
        try:
            await self._connect()
            await self._apply(self.core.start(self.sessions, self._now()))
            readers = [
                asyncio.create_task(self._read(agent), name=f"read-{agent}") for agent in AGENTS
            ]
            readers.append(asyncio.create_task(self._tick(), name="line"))
            watchdog = asyncio.create_task(self._watchdog())
            try:
                await self._done.wait()
                if self._end is not None and self._end.status != "error":
                    await self._settle()
            finally:
                watchdog.cancel()
        except asyncio.CancelledError:
            await self._stop_effects("interrupted")
            self._finalise(EndCall("completed", "interrupted", None), interrupted=True)
            raise
        except RealtimeConnectionError as exc:
            self._connect_transient = exc.transient
            self._finalise(EndCall("error", "connection_failed", str(exc)))
        except Exception as exc:
            log.exception("bridge failed")
            self._finalise(EndCall("error", "error", f"{type(exc).__name__}: {exc}"))
        finally:
            await _cancel_and_wait(readers)
            await self._close_connections()
        end = self._end or EndCall("error", "error", "call ended without a reason")
        self._finalise(end)
        return BridgeOutcome(
            status=end.status,
            end_reason=end.end_reason,
            error=end.error,
            wall_time_s=round(self._now(), 3),
            sessions_ready_s=self._ready_s,
            timeline_s=round(self.core.timeline_s, 3),
        )

    async def _connect(self) -> None:
        """Open both sessions; if one fails, the other is not left open (nor left connecting)."""

        async def open_one(agent: Agent) -> None:
            endpoint = self.endpoints[agent]
            self.connections[agent] = await open_connection(
                endpoint.url, headers=endpoint.headers, policy=self.retry
            )

        tasks = [asyncio.create_task(open_one(agent), name=f"connect-{agent}") for agent in AGENTS]
        try:
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        except asyncio.CancelledError:
            done, pending = set(), set(tasks)
            raise
        finally:
            await _cancel_and_wait(pending)
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            await self._close_connections()  # run() closes them too: closing twice is harmless
            raise failed[0].exception()  # type: ignore[misc]

    async def _read(self, agent: Agent) -> None:
        try:
            await self._read_events(agent)
        finally:
            self._acked.set()  # a line that ended acknowledges nothing more: stop waiting on it

    async def _read_events(self, agent: Agent) -> None:
        connection = self.connections[agent]
        try:
            async for raw in connection:
                self._last_event = time.perf_counter()
                # The CPU clock is a system call: read it only for the events it times.
                timed = raw.get("type") in _TIMED_EVENTS
                cpu_start = time.thread_time() if timed else 0.0
                now = self._last_event - self._t0
                self._record_event(agent, "received", raw, now)  # as received, not re-dumped
                event = ev.parse_server_event(raw)
                if isinstance(event, ev.SessionUpdated) or (
                    isinstance(event, ev.SessionCreated) and self.core.sides[agent].keeps_session
                ):
                    self._note_ready(agent, now)
                if self.observer is not None:
                    self.observer.server_event(agent, event)
                self._note_acknowledged(agent, event)
                await self._apply(self.core.on_event(agent, event, now))
                if not timed:
                    continue
                if isinstance(event, ev.ResponseOutputAudioDelta) and self.pace == "fast":
                    self.stats.audio_chunk_s.append(time.thread_time() - cpu_start)
                elif isinstance(event, ev.ResponseDone):
                    self.stats.turn_switch_s.append(time.thread_time() - cpu_start)
            reason = "closed by server"
            if getattr(connection, "hung_up", False):  # a phone bot's clean close: its hang-up
                await self._apply(self.core.on_disconnect(agent, "hung up", "hung_up"))
                return
        except (websockets.ConnectionClosed, OSError) as exc:  # a dropped line ends the call
            reason = f"{type(exc).__name__}: {exc}"
        except json.JSONDecodeError as exc:  # the server's bug, not ours: say so, keep the turn
            if not self._done.is_set():
                bad = f"it sent an event that is not JSON ({exc})"
                await self._apply(self.core.on_disconnect(agent, bad, "bad_event"))
            return
        except Exception as exc:  # our own bug: end the call as an error, keep the recording
            log.exception("error while handling %s events", agent)
            self._end = self._end or EndCall("error", "error", f"{type(exc).__name__}: {exc}")
            self._done.set()
            return
        if not self._done.is_set():
            await self._apply(self.core.on_disconnect(agent, reason))

    async def _settle(self) -> None:
        """Let the servers acknowledge the items the bridge created last (the caller's
        words forwarded to the agent, a tool's output), so that a recording ends with the
        same events whatever the transport's timing; bounded by :data:`SETTLE_TIMEOUT_S`."""

        def waiting() -> bool:
            return any(
                items and not self.connections[agent].closed
                for agent, items in self._unacked.items()
            )

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_TIMEOUT_S):
                while waiting():
                    self._acked.clear()
                    await self._acked.wait()

    def _note_acknowledged(self, agent: Agent, event: ev.ServerEvent) -> None:
        """Count the server's acknowledgement of an item the bridge created: its
        ``conversation.item.done`` from a server that sends those (GA), else its
        ``conversation.item.added`` (or ``.created``); or an ``error`` (a refused create)."""
        unacked = self._unacked[agent]
        if not unacked:
            return
        if isinstance(event, ev.ErrorEvent):
            del unacked[0]
            self._acked.set()
            return
        if not isinstance(
            event, ev.ConversationItemAdded | ev.ConversationItemCreated | ev.ConversationItemDone
        ):
            return
        done = isinstance(event, ev.ConversationItemDone)
        if done:
            self._sends_item_done.add(agent)
        key = (event.item.type, event.item.role)
        if done == (agent in self._sends_item_done) and key in unacked:
            unacked.remove(key)  # the first such item: a server handles events in order
            self._acked.set()

    def _note_ready(self, agent: Agent, now: float) -> None:
        self._ready_agents.add(agent)
        if len(self._ready_agents) == len(AGENTS) and self._ready_s is None:
            self._ready_s = round(now, 4)

    async def _tick(self) -> None:
        """Tell the core the time, so silence keeps flowing on an agent's line while the
        caller is quiet (the core sends nothing when no agent takes its own turns)."""
        while not self._done.is_set():
            await asyncio.sleep(LINE_TICK_S)
            effects = self.core.on_tick(self._now())
            if effects:
                await self._apply(effects)

    async def _watchdog(self) -> None:
        while not self._done.is_set():
            await asyncio.sleep(min(1.0, self.idle_timeout_s / 4))
            idle_s = time.perf_counter() - self._last_event
            if idle_s > self.idle_timeout_s and not self._tools_running:
                self._last_event = time.perf_counter()
                await self._apply(self.core.on_timeout())

    def _record_event(
        self, agent: Agent, direction: str, event: dict[str, Any], now: float
    ) -> None:
        started = time.perf_counter()
        # An event received is the bridge's own (parsed, never changed): the recorder may keep it.
        owned = direction == "received"
        self.recorder.add_event(agent, direction, event, now, owned=owned)  # type: ignore[arg-type]
        self.stats.recorder_s += time.perf_counter() - started

    async def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if self.observer is not None:
                self.observer.effect(effect)
            _debug_log(effect)
            if isinstance(effect, Send):
                await self._send(effect)
                continue
            if isinstance(effect, RunTools):
                outputs = await self._run_tools(effect)
                await self._apply(self.core.on_tool_outputs(effect.agent, outputs, self._now()))
                continue
            started = time.perf_counter()
            self._apply_local(effect)
            self.stats.recorder_s += time.perf_counter() - started

    async def _run_tools(self, effect: RunTools) -> list[ToolOutput]:
        """Run the calls in order (a tool may depend on the one before); the event loop goes
        on meanwhile, and the watchdog does not count the time as silence."""
        outputs = []
        self._tools_running += 1
        try:
            for call in effect.calls:
                started = time.perf_counter()
                try:
                    output = self.execute_tool(effect.agent, call.name, call.arguments)
                    if inspect.isawaitable(output):
                        output = await output
                except Exception as exc:  # a tool's bug is the tool's error result, not ours
                    log.warning("tool %s failed", call.name, exc_info=True)
                    output = {"ok": False, "error": f"{call.name}: {type(exc).__name__}: {exc}"}
                duration_ms = (time.perf_counter() - started) * 1000
                outputs.append(ToolOutput(output, duration_ms))
        finally:
            self._tools_running -= 1
            self._last_event = time.perf_counter()
        return outputs

    def _apply_local(self, effect: Effect) -> None:
        if isinstance(effect, PlaceAudio):
            self.recorder.place_audio(effect.speaker, effect.pcm16, effect.at_s)
        elif isinstance(effect, Flush):
            self.recorder.flush(effect.until_s)
        elif isinstance(effect, AddTurn):
            self.recorder.add_turn(effect.turn)
        elif isinstance(effect, UpdateTurn):
            self.recorder.update_turn(effect.index, **effect.fields)
        elif isinstance(effect, LogToolCall):
            self.recorder.add_function_call(effect.call)
        elif isinstance(effect, Log):
            if self.on_log is not None:
                self.on_log(effect)
        elif isinstance(effect, EndCall):
            self._end = effect
            self._done.set()

    async def _send(self, effect: Send) -> None:
        connection = self.connections.get(effect.agent)
        if connection is None or connection.closed:
            return
        if self.pace == "realtime" and effect.utterance_offset_s is not None:
            # Forward audio at the speed it is spoken, as a phone line would.
            if effect.utterance_offset_s == 0.0:
                self._utterance_wall_start[effect.agent] = time.perf_counter()
            due = (
                self._utterance_wall_start.get(effect.agent, time.perf_counter())
                + effect.utterance_offset_s
            )
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        with contextlib.suppress(websockets.ConnectionClosed, OSError):  # reported by its reader
            await connection.send(effect.event)
            self._record_event(effect.agent, "sent", effect.event, self._now())
            if effect.event.get("type") == "conversation.item.create":
                item = effect.event.get("item") or {}
                self._unacked[effect.agent].append((item.get("type"), item.get("role")))

    async def _stop_effects(self, reason: str) -> None:
        for effect in self.core.stop(reason):
            if not isinstance(effect, (Send, Log)):
                await self._apply([effect])

    async def _close_connections(self) -> None:
        # Both at once; each close is bounded by the client's own close timeout.
        await asyncio.gather(
            *(connection.close() for connection in self.connections.values()),
            return_exceptions=True,
        )

    def _finalise(self, end: EndCall, interrupted: bool = False) -> None:
        if self.recorder.closed:
            return
        with self.recorder.metadata_held():  # one rewrite of call_metadata.json, not three
            self._finalise_recording(end, interrupted)

    def _finalise_recording(self, end: EndCall, interrupted: bool) -> None:
        self._end = self._end or end
        final = self._end
        core = self.core
        self.recorder.update_metadata(
            sessions_ready_s=self._ready_s,
            wall_time_s=round(self._now(), 3),
            timeline_s=round(core.timeline_s, 3),
            turn_count=core.speaker_turns,
            utterance_count=len(core.turns),
            tool_call_count=len(core.tool_calls),
            response_latencies_s=[round(x, 4) for x in core.latencies_s],
            usage=core.usage(),
            server_errors=core.errors,
            response_issues=core.response_issues,
            transcription_failures=core.transcription_failures,
            rate_limits=core.rate_limits,
            bridge_stats=self.stats.summary(),
            # The agent's session as its server reported it, each setting ours or the server's.
            agent_effective_session=core.session_report("cs"),
            turn_taking=core.turn_taking(),
            # Items the bridge created that their server never acknowledged (see _settle).
            unacknowledged_items={a: len(items) for a, items in self._unacked.items() if items},
        )
        if final.status == "error":  # may a batch run this call again? (--retries)
            self.recorder.update_metadata(
                retryable=self._connect_transient or worth_retrying(core.errors)
            )
        status = "interrupted" if interrupted else final.status
        started = time.perf_counter()
        self.recorder.close(status=status, end_reason=final.end_reason, error=final.error)
        self.stats.recorder_s += time.perf_counter() - started
        self.recorder.update_metadata(
            recording_overhead_s=round(self.stats.recorder_s, 4),
            recording_overhead_share=round(self.stats.recorder_s / max(self._now(), 1e-9), 5),
        )


async def _cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended, whatever it ended with."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(BaseException):
            await task


def _debug_log(effect: Effect) -> None:
    """The effect on its part's logger at DEBUG (only types and sizes of what is sent: an
    event's body may hold instructions)."""
    if isinstance(effect, Send):
        kind = effect.event.get("type", "?")
        if kind == "input_audio_buffer.append":
            if audio_log.isEnabledFor(logging.DEBUG):
                audio_log.debug(
                    "to %s: %d bytes of audio at +%.3f s of the utterance",
                    effect.agent,
                    len(effect.event.get("audio", "")) * 3 // 4,
                    effect.utterance_offset_s or 0.0,
                )
        elif turns_log.isEnabledFor(logging.DEBUG):
            turns_log.debug("to %s: %s", effect.agent, kind)
        return
    if not turns_log.isEnabledFor(logging.DEBUG):
        return
    if isinstance(effect, PlaceAudio):
        audio_log.debug(
            "%s audio on the timeline at %.3f s (%d bytes)",
            effect.speaker,
            effect.at_s,
            len(effect.pcm16),
        )
    elif isinstance(effect, AddTurn):
        turn = effect.turn
        turns_log.debug(
            "turn %s by %s at %.3f-%.3f s: %s",
            turn.get("index"),
            turn.get("speaker"),
            turn.get("start_s") or 0.0,
            turn.get("end_s") or 0.0,
            turn.get("text"),
        )
    elif isinstance(effect, RunTools):
        turns_log.debug("%s calls %s", effect.agent, ", ".join(c.name for c in effect.calls))
    elif isinstance(effect, EndCall):
        turns_log.debug("call ends: %s (%s)", effect.status, effect.end_reason)
    elif isinstance(effect, Log):
        turns_log.debug("%s: %s", effect.kind, effect.text)
