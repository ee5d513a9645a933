"""A voice bot that takes calls over the phone-stream (Twilio Media Streams) websocket protocol,
presented to the bridge as a Realtime agent with its own turn detection (server VAD).

Most deployed voice bots (Pipecat, LiveKit, Vocode, home-made) answer a phone call over a
websocket that speaks the Twilio Media Streams messages: the caller's side sends ``connected``,
``start`` (the stream's ids, ``customParameters`` and ``mediaFormat``), then ``media`` (base64
μ-law, 8 kHz, mono) in 20 ms frames, continuous, silence included, and ``stop`` at the end; the
bot answers with ``media``, ``mark`` (echoed back once the audio before it has been played) and
``clear`` (it stopped talking, usually because the caller cut in: audio it sent but that was not
played yet is dropped). :func:`open_connection` (the ``twilio+ws://`` / ``twilio+wss://``
transport, see :mod:`dualagent.realtime.transports`) plays the phone network's part:

- client events from the bridge: ``session.update`` is answered with ``session.updated``
  reporting what a phone line is (server turn detection that does not cut the bot: whether it
  stops is its own decision, seen as ``clear``); ``input_audio_buffer.append`` (PCM16 24 kHz) is
  resampled to 8 kHz, μ-law encoded and sent in 20 ms ``media`` frames at real-time pace; every
  other client event (commit, response.create, truncate...) has no phone equivalent and is
  dropped (counted in :meth:`PhoneStreamConnection.report`);
- the caller's speech on that stream is found by an energy detector on our side
  (:class:`CallerSpeech`) and reported as ``input_audio_buffer.speech_started`` / ``committed``
  with our own recognizer's transcript: what the line carried to the bot (the bot's own
  recognition is not observable);
- the bot's ``media`` goes into a playout buffer played at real-time pace; what is played is
  the bot's speech, as ``response.created`` / ``response.output_audio.delta`` (24 kHz) /
  ``response.output_audio_transcript.done`` (our PocketSphinx, on the played audio) /
  ``response.done`` events, one response per stretch of speech (a pause of
  :data:`BOT_PAUSE_S` ends it); ``clear`` drops what was not played and ends the response as
  cancelled by the bot's own turn detection (``turn_detected``), so cleared audio is neither
  recorded nor forwarded.

Latency (end of the caller's speech to the bot's first audio) is measured on the stream itself:
the wall time the caller's last voiced frame was sent, to the wall time the bot's first frame
was played (:meth:`PhoneStreamConnection.report`).

Custom parameters for ``start`` come from the URL's fragment, which is never sent to the bot:
``twilio+ws://127.0.0.1:8765/ws#caller_id=%2B15550100&call_sid=CA123``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import websockets

from dualagent.realtime import protocol as p
from dualagent.realtime.client import (
    DEFAULT_RETRY,
    RealtimeConnection,
    RealtimeConnectionError,
    RetryPolicy,
)
from dualagent.realtime.phone_audio import (
    FRAME_BYTES,
    FRAME_BYTES_24K,
    FRAME_MS,
    PHONE_RATE_HZ,
    CallerSpeech,
    Resampler,
    mulaw_decode,
    mulaw_encode,
)
from dualagent.realtime.redact import redact_url

__all__ = [
    "TURN_DETECTION",
    "PhoneStreamConnection",
    "is_phone_stream",
    "open_connection",
    "stream_parameters",
    "websocket_url",
    "with_stream_parameters",
]

log = logging.getLogger(__name__)

SCHEMES = ("twilio+ws://", "twilio+wss://")
PLAYOUT_CHUNK_MS = 60
"""The bot's played audio reaches the bridge in chunks of this length (what a ``clear`` can
cut is at this resolution)."""
BOT_PAUSE_S = 1.0
"""A pause this long in the bot's audio ends its response (its next words are a new one): longer
than a TTS takes between two sentences, shorter than a turn change."""
TURN_DETECTION = {"type": "server_vad", "interrupt_response": False}
"""What a phone-stream bot is, as a Realtime session reports it: it takes its own turns, and
whether it stops when the caller cuts in is its own decision (a ``clear``), not the bridge's."""
CLOSE_TIMEOUT_S = 2.0


# ------------------------------------------------------------------------------ the URL


def websocket_url(url: str) -> str:
    """The bot's websocket URL: ``twilio+ws://`` -> ``ws://`` (``wss`` alike), no fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("twilio+ws", "twilio+wss"):
        raise RealtimeConnectionError(
            f"invalid phone-stream URL {redact_url(url)!r}: "
            "it must start with twilio+ws:// or twilio+wss://"
        )
    return urlunsplit((parts.scheme.removeprefix("twilio+"), *parts[1:4], ""))


def is_phone_stream(url: str | None) -> bool:
    """Whether ``url`` names a phone-stream bot (``twilio+ws://`` or ``twilio+wss://``)."""
    return bool(url) and url.startswith(SCHEMES)  # type: ignore[union-attr]


def with_stream_parameters(url: str, parameters: Mapping[str, str]) -> str:
    """``url`` with ``parameters`` added to its fragment (those it names already win)."""
    parts = urlsplit(url)
    merged = {**{str(k): str(v) for k, v in parameters.items()}, **stream_parameters(url)}
    return urlunsplit((*parts[:4], urlencode(merged)))


def stream_parameters(url: str) -> dict[str, str]:
    """The ``start`` message's ``customParameters``: the URL fragment's ``name=value`` pairs."""
    return dict(parse_qsl(urlsplit(url).fragment, keep_blank_values=True))


# ------------------------------------------------------------------------------ the connection


async def open_connection(
    url: str, *, headers: Mapping[str, str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> PhoneStreamConnection:
    """Call the bot at ``url`` (``twilio+ws://HOST:PORT/PATH#name=value&...``): open its
    websocket (``headers`` sent with the handshake; transient failures retried as ``policy``
    says), send ``connected`` and ``start``. Raises :class:`RealtimeConnectionError`."""
    target = websocket_url(url)
    ws_connection = await _connect(target, headers, policy)
    connection = PhoneStreamConnection(ws_connection, url, stream_parameters(url))
    await connection.start()
    return connection


async def _connect(
    target: str, headers: Mapping[str, str] | None, policy: RetryPolicy
) -> RealtimeConnection:
    from dualagent.realtime.client import connect_with_retry

    try:
        return await connect_with_retry(target, headers=headers, policy=policy)
    except RealtimeConnectionError as exc:  # say "bot", not "Realtime server"
        message = str(exc).replace("Realtime server", "phone-stream bot")
        raise RealtimeConnectionError(
            message, transient=exc.transient, status=exc.status, retry_after_s=exc.retry_after_s
        ) from None


@dataclass
class _Response:
    """One stretch of the bot's played speech."""

    response_id: str
    item_id: str
    pcm16: bytearray = field(default_factory=bytearray)
    started_wall_s: float = 0.0
    # (bytes, transcription) begun when the bot paused: its final transcript if it says no more
    early: tuple[int, asyncio.Future[str]] | None = None


class PhoneStreamConnection:
    """One call to a phone-stream bot, seen as a Realtime session (see the module's docstring).

    Speaks plain websockets through a :class:`~dualagent.realtime.client.RealtimeConnection`
    only for its connect and close handling; the messages are the phone stream's.
    """

    def __init__(
        self,
        ws_connection: RealtimeConnection,
        url: str,
        parameters: Mapping[str, str] | None = None,
        *,
        asr: Any = None,
    ) -> None:
        self._conn = ws_connection
        self._ws = ws_connection._ws
        self.url = url
        self.parameters = dict(parameters or {})
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.call_sid = self.parameters.get("call_sid") or "CA" + uuid.uuid4().hex
        self.account_sid = "AC" + "0" * 32
        self._asr = asr
        self._sequence = itertools.count(1)
        self._ids = itertools.count(1)
        self._events: asyncio.Queue[dict[str, Any] | BaseException | None] = asyncio.Queue()
        # caller -> bot
        self._to_8k = Resampler(p.SAMPLE_RATE_HZ, PHONE_RATE_HZ)
        self._pending_24k = bytearray()
        self._outgoing = bytearray()  # μ-law not sent yet
        self._outgoing_ready = asyncio.Event()
        # per 20 ms frame not sent yet: (it is speech, what the detector said at its end)
        self._frame_notes: deque[tuple[bool, tuple[Any, ...] | None]] = deque()
        self._speech = CallerSpeech()
        self._speech_item: str | None = None
        self._sent_frames = 0
        self._last_voiced_sent_wall: float | None = None  # the caller's latest sound sent
        self._voiced_sent = False  # the last frame sent was the caller's speech
        self._answered_wall: float | None = None  # the caller sound the bot last answered
        # bot -> caller
        self._to_24k = Resampler(PHONE_RATE_HZ, p.SAMPLE_RATE_HZ)
        self._to_24k_holds = False  # the resampler holds the end of what the bot sent
        self._playout: deque[bytes | str] = deque()  # audio (PCM16 24 kHz) and mark names
        self._playout_ready = asyncio.Event()
        self._response: _Response | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._bot_ended = False
        self.hung_up = False  # the bot closed its stream: it ended the call (the bridge reads it)
        # what happened, for the recording
        self.clears = 0
        self.cleared_s = 0.0
        self.marks_echoed = 0
        self.latencies_s: list[float] = []
        self.dropped_client_events: dict[str, int] = {}
        self.frames_sent = 0
        self.bot_audio_s = 0.0
        self._stopped = False
        self._closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._transcriptions: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------ the stream

    async def start(self) -> None:
        """Send ``connected`` and ``start``; start reading the bot and pacing our frames."""
        await self._send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        await self._send_json(
            {
                "event": "start",
                "sequenceNumber": str(next(self._sequence)),
                "start": {
                    "accountSid": self.account_sid,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "customParameters": self.parameters,
                    "mediaFormat": {
                        "encoding": "audio/x-mulaw",
                        "sampleRate": PHONE_RATE_HZ,
                        "channels": 1,
                    },
                },
                "streamSid": self.stream_sid,
            }
        )
        # What a phone line is, reported as a Realtime server reports its session.
        self._emit({"type": "session.created", "session": _line_session()})
        self._tasks = [
            asyncio.create_task(self._read_bot(), name="phone-stream-read"),
            asyncio.create_task(self._send_frames(), name="phone-stream-send"),
            asyncio.create_task(self._play(), name="phone-stream-play"),
        ]

    async def _send_json(self, message: dict[str, Any]) -> None:
        if "sequenceNumber" not in message and message.get("event") != "connected":
            message["sequenceNumber"] = str(next(self._sequence))
        await self._ws.send(json.dumps(message))

    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", f"event_phone_{next(self._ids)}")
        self._events.put_nowait(event)

    # ------------------------------------------------------------------ Connection

    async def send(self, event: Any) -> dict[str, Any]:
        """Take one Realtime client event from the bridge (see the module's docstring)."""
        data = event.dump() if hasattr(event, "dump") else dict(event)
        kind = data.get("type")
        if kind == "input_audio_buffer.append":
            self._caller_audio(p.decode_audio(data.get("audio", "")))
        elif kind == "session.update":
            session = dict(data.get("session") or {})
            self._emit({"type": "session.updated", "session": _line_session(session)})
        else:  # nothing on a phone line does this
            self.dropped_client_events[kind] = self.dropped_client_events.get(kind, 0) + 1
        return data

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            item = await self._events.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    @property
    def closed(self) -> bool:
        return self._closing or self._ws.close_code is not None

    async def close(self) -> None:
        """Send ``stop`` and hang up; bounded in time whatever the bot does."""
        if self._closing:
            return
        self._closing = True
        if not self._stopped and self._ws.close_code is None:
            self._stopped = True
            with contextlib.suppress(Exception):
                stop = {"accountSid": self.account_sid, "callSid": self.call_sid}
                await asyncio.wait_for(
                    self._send_json({"event": "stop", "streamSid": self.stream_sid, "stop": stop}),
                    CLOSE_TIMEOUT_S,
                )
        tasks = [*self._tasks, *self._transcriptions]
        if self._finishing is not None:
            tasks.append(self._finishing)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await self._conn.close()
        self._events.put_nowait(None)

    def report(self) -> dict[str, Any]:
        """What the phone stream carried and what the bot did on it, for the recording."""
        return {
            "protocol": "twilio-media-streams",
            "stream_sid": self.stream_sid,
            "call_sid": self.call_sid,
            "custom_parameters": sorted(self.parameters),
            "media_format": {"encoding": "audio/x-mulaw", "sample_rate_hz": PHONE_RATE_HZ},
            "frame_ms": FRAME_MS,
            "frames_sent": self.frames_sent,
            "bot_audio_played_s": round(self.bot_audio_s, 3),
            "clears": self.clears,
            "cleared_audio_s": round(self.cleared_s, 3),
            "marks_echoed": self.marks_echoed,
            "latencies_s": [round(x, 3) for x in self.latencies_s],
            "dropped_client_events": dict(self.dropped_client_events),
            "observable": {"tool_calls": False, "what_the_bot_heard": False},
        }

    # ------------------------------------------------------------------ caller -> bot

    def _caller_audio(self, pcm16: bytes) -> None:
        """Cut the caller's audio into 20 ms frames: each goes to the detector and, resampled
        and μ-law encoded, to the sender."""
        self._pending_24k += pcm16
        whole = len(self._pending_24k) // FRAME_BYTES_24K * FRAME_BYTES_24K
        if not whole:
            return
        chunk, self._pending_24k = bytes(self._pending_24k[:whole]), self._pending_24k[whole:]
        for start in range(0, whole, FRAME_BYTES_24K):
            note = self._speech.frame(chunk[start : start + FRAME_BYTES_24K])
            self._frame_notes.append((self._speech.voiced, note))
        self._outgoing += mulaw_encode(self._to_8k(chunk))
        self._outgoing_ready.set()

    async def _send_frames(self) -> None:
        """Send ``media`` frames at real-time pace, one every 20 ms; when no audio is waiting
        (the bridge is behind), wait for it and go on from then (never faster than real time)."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            while len(self._outgoing) < FRAME_BYTES:
                self._outgoing_ready.clear()
                await self._outgoing_ready.wait()
                due = max(due, loop.time())
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = bytes(self._outgoing[:FRAME_BYTES])
            del self._outgoing[:FRAME_BYTES]
            timestamp_ms = self._sent_frames * FRAME_MS
            self._sent_frames += 1
            media = {
                "event": "media",
                "streamSid": self.stream_sid,
                "media": {
                    "track": "inbound",
                    "chunk": str(self._sent_frames),
                    "timestamp": str(timestamp_ms),
                    "payload": base64.b64encode(frame).decode("ascii"),
                },
            }
            try:
                await self._send_json(media)
            except websockets.ConnectionClosed:
                return  # the reader reports how the bot ended
            self.frames_sent += 1
            due += FRAME_MS / 1000
            voiced, note = self._frame_notes.popleft() if self._frame_notes else (False, None)
            self._caller_note(voiced, note)

    def _caller_note(self, voiced: bool, note: tuple[Any, ...] | None) -> None:
        """The frame just sent: whether it was the caller's speech, and whether its speech
        started or ended there."""
        self._voiced_sent = voiced
        if voiced:
            self._last_voiced_sent_wall = time.perf_counter()
        if note is None:
            return
        if note[0] == "started":
            self._speech_item = f"item_phone_in_{next(self._ids)}"
            self._emit(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": note[1],
                    "item_id": self._speech_item,
                }
            )
            return
        item_id, self._speech_item = self._speech_item or f"item_phone_in_{next(self._ids)}", None
        self._emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": note[1],
                "item_id": item_id,
            }
        )
        self._emit({"type": "input_audio_buffer.committed", "item_id": item_id})
        task = asyncio.create_task(self._transcribe_caller(item_id, note[2]))
        self._transcriptions.add(task)
        task.add_done_callback(self._transcriptions.discard)

    async def _transcribe_caller(self, item_id: str, pcm16: bytes) -> None:
        try:
            text = await self._transcribe(pcm16)
        except Exception as exc:  # the recognizer's failure: said as the protocol says it
            self._emit(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item_id,
                    "content_index": 0,
                    "error": {"type": "transcription_error", "message": str(exc)},
                }
            )
            return
        self._emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
            }
        )

    async def _transcribe(self, pcm16: bytes) -> str:
        from dualagent.realtime.local import engines

        asr = self._asr or engines.get_asr()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(engines.engine_pool(), asr.transcribe, pcm16)

    # ------------------------------------------------------------------ bot -> caller

    async def _read_bot(self) -> None:
        try:
            async for message in self._ws:
                data = json.loads(message)
                try:
                    self._bot_message(data)
                except (AttributeError, TypeError, ValueError) as exc:  # not the protocol's shape
                    raise json.JSONDecodeError(
                        f"not a phone-stream message ({exc})", "", 0
                    ) from exc
        except websockets.ConnectionClosedOK:
            pass
        except (websockets.ConnectionClosed, OSError) as exc:
            if not self._closing:
                self._bot_ended = True
                self._playout_ready.set()
                self._events.put_nowait(ConnectionError(f"phone-stream bot: {exc}"))
            return
        except json.JSONDecodeError as exc:
            self._events.put_nowait(exc)
            return
        # The bot hung up: what it had sent is played out first.
        self.hung_up = not self._closing  # not when the close was ours
        self._bot_ended = True
        self._playout_ready.set()

    def _bot_message(self, message: dict[str, Any]) -> None:
        kind = message.get("event")
        if kind == "media":
            payload = (message.get("media") or {}).get("payload") or ""
            pcm = self._to_24k(mulaw_decode(base64.b64decode(payload)))
            self._to_24k_holds = True
            if pcm:
                self._playout.append(pcm)
                self._playout_ready.set()
        elif kind == "mark":
            name = str((message.get("mark") or {}).get("name", ""))
            self._playout.append(_Mark(name))
            self._playout_ready.set()
        elif kind == "clear":
            self._clear()
        else:
            log.debug("phone-stream bot sent %r: ignored", kind)

    def _clear(self) -> None:
        """The bot stopped talking: drop what was not played, echo the marks in it, and end
        its response as cut by its own turn detection."""
        self.clears += 1
        dropped = 0
        marks = []
        while self._playout:
            entry = self._playout.popleft()
            if isinstance(entry, _Mark):
                marks.append(entry)
            else:
                dropped += len(entry)
        if self._to_24k_holds:  # the end of what it sent is cleared too
            dropped += len(self._to_24k(b"", last=True))
            self._to_24k = Resampler(PHONE_RATE_HZ, p.SAMPLE_RATE_HZ)
            self._to_24k_holds = False
        self.cleared_s += p.pcm16_duration_s(dropped)
        for mark in marks:
            self._echo_mark(mark)
        if self._response is not None:
            self._finish_response(cancelled=True)

    def _echo_mark(self, mark: _Mark) -> None:
        self.marks_echoed += 1
        message = {"event": "mark", "streamSid": self.stream_sid, "mark": {"name": str(mark)}}
        task = asyncio.create_task(self._send_quietly(message))
        self._transcriptions.add(task)
        task.add_done_callback(self._transcriptions.discard)

    async def _send_quietly(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed, OSError):
            await self._send_json(message)

    async def _play(self) -> None:
        """Play the bot's audio at real-time pace: each chunk reaches the bridge when it starts
        to play; marks are echoed once the audio before them has played; a pause ends the
        response; a short gap inside one is kept as silence."""
        loop = asyncio.get_running_loop()
        chunk_bytes = 2 * p.SAMPLE_RATE_HZ * PLAYOUT_CHUNK_MS // 1000
        played_until = loop.time()  # when the audio handed over so far ends
        starved = False  # the buffer ran dry inside a response (the bot paused)
        while True:
            while self._playout and isinstance(self._playout[0], _Mark):
                self._echo_mark(self._playout.popleft())  # type: ignore[arg-type]
            if not self._playout and self._to_24k_holds:  # the bot paused: its last words
                self._to_24k_holds = False
                tail = self._to_24k(b"", last=True)
                self._to_24k = Resampler(PHONE_RATE_HZ, p.SAMPLE_RATE_HZ)
                if tail:
                    self._playout.append(tail)
                    continue
            if not self._playout:
                if self._bot_ended:
                    if self._response is not None:
                        self._finish_response(cancelled=False)
                    if self._finishing is not None:
                        await self._finishing
                    self._events.put_nowait(None)
                    return
                self._playout_ready.clear()
                if self._response is None:
                    await self._playout_ready.wait()
                    continue
                starved = True
                self._transcribe_early(self._response)
                wait_s = played_until + BOT_PAUSE_S - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._playout_ready.wait(), max(0.0, wait_s))
                if not self._playout and loop.time() >= played_until + BOT_PAUSE_S - 1e-3:
                    self._finish_response(cancelled=False)
                continue
            now = loop.time()
            pcm = self._take(chunk_bytes)
            if self._response is None:
                if self._finishing is not None:  # the last one's transcript comes first
                    await self._finishing
                self._begin_response()
                played_until = loop.time()
            elif starved and now > played_until:  # a short pause: the line carried silence
                self._deliver(bytes(2 * round((now - played_until) * p.SAMPLE_RATE_HZ)))
                played_until = now
            starved = False
            self._deliver(pcm)
            played_until += p.pcm16_duration_s(pcm)
            await asyncio.sleep(max(0.0, played_until - loop.time()))

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes of audio from the playout buffer (stops at a mark)."""
        out = bytearray()
        while self._playout and len(out) < size and not isinstance(self._playout[0], _Mark):
            entry = self._playout.popleft()
            assert isinstance(entry, bytes)
            room = size - len(out)
            out += entry[:room]
            if len(entry) > room:
                self._playout.appendleft(entry[room:])
        return bytes(out)

    def _begin_response(self) -> None:
        number = next(self._ids)
        response = _Response(f"resp_phone_{number}", f"item_phone_out_{number}")
        response.started_wall_s = time.perf_counter()
        self._response = response
        spoke_s = self._last_voiced_sent_wall
        if spoke_s is not None and spoke_s != self._answered_wall and not self._voiced_sent:
            # The caller's last sound on the stream, to the bot's first sound after it.
            self.latencies_s.append(response.started_wall_s - spoke_s)
            self._answered_wall = spoke_s
        self._emit(
            {
                "type": "response.created",
                "response": {
                    "object": "realtime.response",
                    "id": response.response_id,
                    "status": "in_progress",
                    "output_modalities": ["audio"],
                },
            }
        )
        item = {"id": response.item_id, "type": "message", "role": "assistant", "content": []}
        self._emit(
            {
                "type": "response.output_item.added",
                "response_id": response.response_id,
                "output_index": 0,
                "item": {**item, "status": "in_progress"},
            }
        )

    def _deliver(self, pcm16: bytes) -> None:
        response = self._response
        assert response is not None
        response.pcm16 += pcm16
        self.bot_audio_s += p.pcm16_duration_s(pcm16)
        self._emit(
            {
                "type": "response.output_audio.delta",
                "response_id": response.response_id,
                "item_id": response.item_id,
                "output_index": 0,
                "content_index": 0,
                "delta": p.encode_audio(pcm16),
            }
        )

    def _finish_response(self, *, cancelled: bool) -> None:
        """End the current response: its transcript (our recognizer, on what was played)
        comes first, then ``response.done`` (``cancelled`` / ``turn_detected`` after a
        ``clear``: no ``output_item.done``, as for a response cut by server VAD)."""
        response, self._response = self._response, None
        assert response is not None
        previous = self._finishing
        self._finishing = asyncio.create_task(self._finish(response, cancelled, previous))

    def _transcribe_early(self, response: _Response) -> None:
        """The bot paused: transcribe what it said so far now, so its response can end as soon
        as the pause is long enough (the pause hides our recognizer's time)."""
        if response.early is not None and response.early[0] == len(response.pcm16):
            return
        task = asyncio.ensure_future(self._transcribe(bytes(response.pcm16)))
        self._transcriptions.add(task)  # type: ignore[arg-type]
        task.add_done_callback(self._transcriptions.discard)  # type: ignore[arg-type]
        task.add_done_callback(lambda done: done.cancelled() or done.exception())  # seen
        response.early = (len(response.pcm16), task)

    async def _finish(
        self, response: _Response, cancelled: bool, previous: asyncio.Task[None] | None
    ) -> None:
        if previous is not None:
            await previous
        early = response.early
        try:
            if early is not None and early[0] == len(response.pcm16):
                text = await early[1]  # it said nothing more since: that is its transcript
            else:
                text = await self._transcribe(bytes(response.pcm16))
        except Exception as exc:
            log.warning("could not transcribe the bot's speech: %s", exc)
            text = ""
        ids = {"response_id": response.response_id, "item_id": response.item_id}
        part = {"output_index": 0, "content_index": 0}
        self._emit({"type": "response.output_audio.done", **ids, **part})
        self._emit(
            {"type": "response.output_audio_transcript.done", **ids, **part, "transcript": text}
        )
        content = [{"type": "output_audio", "transcript": text}]
        item = {
            "id": response.item_id,
            "type": "message",
            "role": "assistant",
            "status": "incomplete" if cancelled else "completed",
            "content": content,
        }
        done: dict[str, Any] = {
            "object": "realtime.response",
            "id": response.response_id,
            "status": "cancelled" if cancelled else "completed",
            "output": [item],
        }
        if cancelled:
            done["status_details"] = {"type": "cancelled", "reason": "turn_detected"}
        else:
            self._emit(
                {
                    "type": "response.output_item.done",
                    "response_id": response.response_id,
                    "output_index": 0,
                    "item": item,
                }
            )
        self._emit({"type": "response.done", "response": done})


class _Mark(str):
    """A ``mark`` the bot sent, in the playout buffer among its audio."""


def _line_session(asked: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The session a phone line has: what was asked, with the line's turn detection, audio
    formats as the bridge sees them, and no tools (a bot's tools are its own)."""
    session: dict[str, Any] = {k: v for k, v in (asked or {}).items() if k != "tools"}
    session["type"] = "realtime"
    audio = dict(session.get("audio") or {})
    audio_in = dict(audio.get("input") or {})
    audio_in["turn_detection"] = dict(TURN_DETECTION)
    audio["input"] = audio_in
    session["audio"] = audio
    return session
