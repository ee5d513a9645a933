"""A call as it happens: its live events (JSON dicts) and their fan-out to every watcher.

:class:`LiveCall` is the bridge's observer (:class:`~dualagent.call.bridge.BridgeObserver`):
it turns server events and core effects into the service's events and hands each one to every
subscriber's queue. Events (``type``):

- ``call.started``: conversation id, caller type, persona, scenario, intent, route, limits
- ``utterance.started``: speaker, item id (the first words or audio of an utterance)
- ``transcript.delta``: speaker, item id, text (as it is generated)
- ``utterance.ended``: the turn as recorded (speaker, text spoken, start/end on the timeline,
  interrupted); ``transcript.heard``: what the listener's recognition made of it
- ``barge_in``: the caller talked over the agent (where on the timeline)
- ``tool.call``: name, arguments, output, ok
- ``log``: info and error lines of the call
- ``audio`` (only for subscribers that asked): the two voices mixed, base64 PCM16 mono,
  ``sample_rate`` Hz, placed at ``at_s`` on the call's timeline
- ``call.ended``: status, end reason, error, outcome, success, figures, paths and URLs

Late subscribers get the history (everything but audio) first, so a monitor that opens a
running call sees its transcript so far.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from dualagent.call.core import (
    AddTurn,
    Agent,
    Effect,
    EndCall,
    Flush,
    Log,
    LogToolCall,
    PlaceAudio,
    Send,
    UpdateTurn,
)
from dualagent.realtime import server_events as ev
from dualagent.realtime.protocol import SAMPLE_RATE_HZ

log = logging.getLogger(__name__)

# A subscriber this far behind stops getting audio (the other events still arrive).
AUDIO_BACKLOG_LIMIT = 400
# Mixed audio is sent in chunks of at most this many seconds.
AUDIO_CHUNK_S = 1.0


class AudioMixer:
    """Mixes the two voices placed on the call's timeline into one mono PCM16 stream.

    The core places each voice's chunks at their time (:class:`PlaceAudio`) and promises with
    :class:`Flush` that nothing more lands before a point; the mixer releases everything up to
    that point (silence where nobody spoke), so a barge-in is both voices at once, as recorded.
    """

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
        self.sample_rate_hz = sample_rate_hz
        self.released = 0  # samples already handed out
        self._pending = np.zeros(0, dtype=np.int32)  # mix from `released` on

    def place(self, pcm16: bytes, at_s: float) -> None:
        samples = np.frombuffer(pcm16, dtype="<i2").astype(np.int32)
        start = round(at_s * self.sample_rate_hz) - self.released
        if start < 0:  # promised away already: keep the part still to come
            samples, start = samples[-start:], 0
        end = start + len(samples)
        if end > len(self._pending):
            self._pending = np.concatenate(
                [self._pending, np.zeros(end - len(self._pending), dtype=np.int32)]
            )
        self._pending[start:end] += samples

    def skip(self, until_s: float | None = None) -> None:
        """Drop what is placed up to ``until_s`` (everything when None): nobody listens."""
        if until_s is None:
            self.released += len(self._pending)
            self._pending = np.zeros(0, dtype=np.int32)
            return
        count = max(0, round(until_s * self.sample_rate_hz) - self.released)
        self._pending = self._pending[count:]
        self.released += count

    def release(self, until_s: float | None = None) -> list[tuple[float, bytes]]:
        """``(at_s, pcm16)`` chunks up to ``until_s`` (everything placed when None)."""
        if until_s is None:
            count = len(self._pending)
        else:
            count = max(0, round(until_s * self.sample_rate_hz) - self.released)
        if count == 0:
            return []
        if count > len(self._pending):
            self._pending = np.concatenate(
                [self._pending, np.zeros(count - len(self._pending), dtype=np.int32)]
            )
        mixed = np.clip(self._pending[:count], -32768, 32767).astype("<i2")
        self._pending = self._pending[count:]
        step = max(1, int(AUDIO_CHUNK_S * self.sample_rate_hz))
        chunks = []
        for offset in range(0, count, step):
            at_s = (self.released + offset) / self.sample_rate_hz
            chunks.append((round(at_s, 4), mixed[offset : offset + step].tobytes()))
        self.released += count
        return chunks


@dataclass
class Subscriber:
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=asyncio.Queue)
    audio: bool = False
    audio_dropped: int = 0


class LiveCall:
    """One running call: what the monitor lists, its event history and its subscribers."""

    def __init__(self, conversation_id: str, info: dict[str, Any]) -> None:
        self.conversation_id = conversation_id
        self.info = info  # caller_type, persona, scenario, intent, route...
        self.started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._started = time.monotonic()
        self.history: list[dict[str, Any]] = []
        self.subscribers: list[Subscriber] = []
        self.speaker: Agent | None = None
        self.turns = 0
        self.tool_calls = 0
        self.detached = False
        self.ended: dict[str, Any] | None = None
        self.task: asyncio.Task[None] | None = None
        self.stop_requested = False
        self._mixer = AudioMixer()
        self._open_items: dict[Agent, str] = {}
        self._cancelled_responses: set[str] = set()
        self._ended_event = asyncio.Event()

    # -- what the monitor lists --------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        return round(time.monotonic() - self._started, 1)

    def summary(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation_id,
            **self.info,
            "started_at": self.started_at,
            "elapsed_s": self.elapsed_s,
            "speaker": self.speaker,
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "detached": self.detached,
            "watchers": len(self.subscribers),
        }

    # -- fan-out -----------------------------------------------------------------------------

    def subscribe(self, audio: bool = False) -> Subscriber:
        """A queue of this call's events from now on, after its history so far; ``None`` ends it."""
        subscriber = Subscriber(audio=audio)
        for event in self.history:
            subscriber.queue.put_nowait(event)
        if self.ended is not None:
            subscriber.queue.put_nowait(None)
        else:
            self.subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with contextlib.suppress(ValueError):
            self.subscribers.remove(subscriber)

    def publish(self, event: dict[str, Any]) -> None:
        event = {"type": event.pop("type"), "conversation_id": self.conversation_id, **event}
        event.setdefault("elapsed_s", self.elapsed_s)
        is_audio = event["type"] == "audio"
        if not is_audio:
            self.history.append(event)
        for subscriber in self.subscribers:
            if is_audio:
                if not subscriber.audio:
                    continue
                if subscriber.queue.qsize() > AUDIO_BACKLOG_LIMIT:
                    subscriber.audio_dropped += 1
                    continue
            subscriber.queue.put_nowait(event)

    def finish(self, ended: dict[str, Any]) -> None:
        """Publish ``call.ended`` (after the last audio) and close every subscriber's stream."""
        if self.ended is not None:
            return
        self._release_audio(None)
        self.speaker = None
        self.publish({"type": "call.ended", **ended})
        self.ended = self.history[-1]
        for subscriber in self.subscribers:
            subscriber.queue.put_nowait(None)
        self.subscribers.clear()
        self._ended_event.set()

    async def wait_ended(self) -> None:
        await self._ended_event.wait()

    # -- the bridge's observer ---------------------------------------------------------------

    def server_event(self, agent: Agent, event: ev.ServerEvent) -> None:
        try:
            self._on_server_event(agent, event)
        except Exception:  # a monitor must never break a call
            log.exception("live event failed for %s", self.conversation_id)

    def effect(self, effect: Effect) -> None:
        try:
            self._on_effect(effect)
        except Exception:
            log.exception("live event failed for %s", self.conversation_id)

    def _on_server_event(self, agent: Agent, event: ev.ServerEvent) -> None:
        text_delta = isinstance(
            event, ev.ResponseOutputAudioTranscriptDelta | ev.ResponseOutputTextDelta
        )
        if not (text_delta or isinstance(event, ev.ResponseOutputAudioDelta)):
            return
        item_id = event.item_id or ""
        if self._open_items.get(agent) != item_id:
            if event.response_id in self._cancelled_responses:
                return  # output of a response cut by a barge-in: never spoken
            self._open_items[agent] = item_id
            self.speaker = agent
            self.publish({"type": "utterance.started", "speaker": agent, "item_id": item_id})
        if text_delta and event.delta:
            self.publish(
                {
                    "type": "transcript.delta",
                    "speaker": agent,
                    "item_id": item_id,
                    "delta": event.delta,
                }
            )

    def _on_effect(self, effect: Effect) -> None:
        if isinstance(effect, Send):
            if effect.event.get("type") == "response.cancel" and effect.event.get("response_id"):
                self._cancelled_responses.add(str(effect.event["response_id"]))
        elif isinstance(effect, PlaceAudio):
            if self._wants_audio():
                self._mixer.place(effect.pcm16, effect.at_s)
        elif isinstance(effect, Flush):
            self._release_audio(effect.until_s)
        elif isinstance(effect, AddTurn):
            self._on_turn(effect.turn)
        elif isinstance(effect, UpdateTurn):
            if "heard" in effect.fields:
                self.publish({"type": "transcript.heard", "index": effect.index, **effect.fields})
        elif isinstance(effect, LogToolCall):
            self.tool_calls += 1
            call = effect.call
            self.publish(
                {
                    "type": "tool.call",
                    "speaker": call.get("agent"),
                    "name": call.get("name"),
                    "arguments": call.get("arguments"),
                    "output": call.get("output"),
                    "ok": call.get("ok"),
                    "at_s": call.get("t_s"),
                }
            )
        elif isinstance(effect, Log) and effect.kind in ("info", "error"):
            self.publish({"type": "log", "level": effect.kind, "text": effect.text})
        elif isinstance(effect, EndCall):
            self._release_audio(None)

    def _on_turn(self, turn: dict[str, Any]) -> None:
        speaker = turn.get("speaker")
        if self._open_items.get(speaker) == turn.get("item_id"):  # type: ignore[call-overload]
            self._open_items.pop(speaker)  # type: ignore[call-overload]
        if self.speaker == speaker:
            self.speaker = None
        self.turns += 1
        if turn.get("interrupted"):
            self.publish(
                {
                    "type": "barge_in",
                    "speaker": "caller" if speaker == "cs" else "cs",
                    "interrupted": speaker,
                    "at_s": turn.get("end_s"),
                }
            )
        fields = ("index", "speaker", "text", "heard", "start_s", "end_s", "interrupted")
        self.publish({"type": "utterance.ended", **{k: turn.get(k) for k in fields}})

    def _wants_audio(self) -> bool:
        return any(s.audio for s in self.subscribers)

    def _release_audio(self, until_s: float | None) -> None:
        if not self._wants_audio():
            self._mixer.skip(until_s)
            return
        for at_s, pcm in self._mixer.release(until_s):
            self.publish(
                {
                    "type": "audio",
                    "at_s": at_s,
                    "sample_rate": self._mixer.sample_rate_hz,
                    "format": "pcm16",
                    "audio": base64.b64encode(pcm).decode("ascii"),
                }
            )
