"""``replay://``: a recorded caller plays its own audio again, turn by turn, against an agent.

The caller's side of a call is a :class:`ReplayConnection` instead of a Realtime server: each
time the bridge asks the caller to speak (``response.create``), it answers with the next of the
original caller's responses, the audio cut from the recording's caller channel by the
transcript's turn times (:func:`~dualagent.real_call.caller_responses`: the
recording's own samples, real voice and line noise included), streamed as the embedded server
streams speech (its session core, :class:`~dualagent.realtime.local.session.LocalSession`,
makes every event: ``response.created``, ``response.output_item.added``, the transcript, the
audio deltas of :data:`~dualagent.realtime.local.server.AUDIO_CHUNK_S`, the ``.done`` events,
``response.done``). The agent under test answers live.

What the replayed caller hears does not change what it says, but it is recognised as the
embedded server recognises a caller's input (PocketSphinx, in the engine pool), so the agent's
turns have their ``heard`` (and the call its WER) as in the original. It hangs up as a scripted
caller does, with the ``end_call`` tool: after the response the original caller hung up in,
or when asked to speak once its turns have run out.

URLs: ``replay:///ABSOLUTE/PATH`` (percent-encoded; a query such as ``?model=`` is ignored), made
by :func:`replay_url` from what ``--caller-backend replay:PATH`` names: a recording folder or a
transcript JSON with the caller's audio (see :mod:`dualagent.real_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.client import DEFAULT_RETRY, RealtimeConnectionError, RetryPolicy
from dualagent.realtime.local.brains.registry import LOCAL_CALLER_MODEL
from dualagent.realtime.local.session import LocalSession, Respond, StopResponse, Transcribe

__all__ = [
    "AUDIO_CHUNK_S",
    "REPLAY_MODEL",
    "REPLAY_PREFIX",
    "ReplayConnection",
    "open_connection",
    "replay_url",
]

REPLAY_PREFIX = "replay:"
"""What ``--caller-backend`` starts with to replay a call: ``replay:PATH``."""
REPLAY_MODEL = "local-replay"
"""The caller's model as the recording names it (``local-``: it runs here and costs nothing)."""
AUDIO_CHUNK_S = 0.2  # each response.output_audio.delta, as the embedded server sends them


def replay_url(backend: str | Path) -> str:
    """``replay:PATH`` (as ``--caller-backend`` takes it) or a path ->
    ``replay:///ABSOLUTE/PATH``."""
    path = str(backend).removeprefix(REPLAY_PREFIX)
    if path.startswith("//"):  # already a URL
        return str(backend)
    return "replay://" + quote(str(Path(path).expanduser().resolve()))


def replay_path(url: str) -> Path:
    """The recording folder or transcript JSON a ``replay://`` URL names."""
    return Path(unquote(urlsplit(url).path))


async def open_connection(
    url: str, *, headers: Mapping[str, str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> ReplayConnection:
    """Read the call ``url`` names and open its replay; a call that cannot be replayed raises
    :class:`~dualagent.realtime.client.RealtimeConnectionError` (not transient) saying why."""
    from dualagent.errors import InputError
    from dualagent.real_call import caller_responses, load_real_call

    path = replay_path(url)

    def read() -> list[Any]:
        return caller_responses(load_real_call(path))

    try:
        responses = await asyncio.to_thread(read)  # reads and cuts the audio file
    except InputError as exc:
        raise RealtimeConnectionError(f"cannot replay {str(path)!r}: {exc}") from None
    return ReplayConnection(url, responses)


class ReplayConnection:
    """The caller's session of a replayed call (see the module's docstring)."""

    def __init__(self, url: str, responses: list[Any]) -> None:
        self.url = url
        self.responses = deque(responses)  # CallerResponse, in the order spoken
        self.session = LocalSession("sess_replay", model=LOCAL_CALLER_MODEL)
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._response_task: asyncio.Task[None] | None = None
        self._input = bytearray()  # the agent's audio since the last commit
        self._transcriptions: set[asyncio.Task[None]] = set()
        self._closed = False
        self._deliver(self.session.start())

    # -- the Connection protocol ------------------------------------------------------------

    async def send(self, event: Any) -> dict[str, Any]:
        """Handle one client event (a protocol model or a dict); returns the dict sent."""
        if self._closed:
            raise ConnectionError(f"replay session {self.url} is closed")
        data = event.dump() if hasattr(event, "dump") else dict(event)
        kind = data.get("type")
        if kind == "input_audio_buffer.append":
            self._input += p.decode_audio(data.get("audio") or "")
        elif kind == "input_audio_buffer.clear":
            self._input.clear()
            self._deliver([self.session._event(ev.InputAudioBufferCleared)])
        elif kind == "input_audio_buffer.commit":
            self._commit()
        else:
            self._deliver(self.session.handle_raw(data))
        return data

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while (event := await self._events.get()) is not None:
            yield event
        self._events.put_nowait(None)  # a second reader ends too

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        """End the session (its response, if one is playing, stops)."""
        if self._closed:
            return
        self._closed = True
        self._events.put_nowait(None)
        tasks = [t for t in (self._response_task, *self._transcriptions) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # -- events -------------------------------------------------------------------------------

    def _deliver(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, ev.ServerEventBase):
                if not self._closed:
                    self._events.put_nowait(action.dump())
            elif isinstance(action, Respond):
                self._response_task = asyncio.get_running_loop().create_task(
                    self._respond(), name="replay-response"
                )
            elif isinstance(action, StopResponse):
                task = self._response_task
                if task is not None and not task.done() and task is not asyncio.current_task():
                    task.cancel()
            elif isinstance(action, Transcribe):  # never ordered: appends do not reach it
                continue

    def _commit(self) -> None:
        """The agent's turn ended: committed, then recognised."""
        session = self.session
        if len(self._input) < 2 * p.SAMPLE_RATE_HZ // 10:  # as the protocol refuses < 100 ms
            self._deliver([session._event(ev.ErrorEvent, error=ev.ErrorDetails(
                type="invalid_request_error", code="input_audio_buffer_commit_empty",
                message="buffer too small: less than 100 ms of audio"))])  # fmt: skip
            return
        pcm16, self._input = bytes(self._input), bytearray()
        item_id = session.ids("item")
        self._deliver([session._event(ev.InputAudioBufferCommitted, item_id=item_id)])
        task = asyncio.get_running_loop().create_task(self._hear(item_id, pcm16))
        self._transcriptions.add(task)
        task.add_done_callback(self._transcriptions.discard)

    async def _hear(self, item_id: str, pcm16: bytes) -> None:
        """Recognise one committed turn of the agent, as the embedded server does."""
        from dualagent.realtime.local import engines

        session = self.session
        try:
            text = await asyncio.get_running_loop().run_in_executor(
                engines.engine_pool(), engines.get_asr().transcribe, pcm16
            )
        except Exception as exc:  # an engine failure is this turn's, not the call's
            error = ev.ErrorDetails(type="server_error", code="transcription_failed",
                                    message=f"{type(exc).__name__}: {exc}")  # fmt: skip
            self._deliver([session._event(ev.InputAudioTranscriptionFailed, item_id=item_id,
                                          content_index=0, error=error)])  # fmt: skip
            return
        self._deliver(
            [
                session._event(
                    ev.InputAudioTranscriptionCompleted,
                    item_id=item_id,
                    content_index=0,
                    transcript=text,
                    usage={"type": "duration", "seconds": round(p.pcm16_duration_s(pcm16), 3)},
                )
            ]
        )

    async def _respond(self) -> None:
        """Play the next recorded response (or hang up when none is left)."""
        session = self.session
        active = session.response
        audio = active is not None and "audio" in active.output_modalities
        hangs_up = True
        if self.responses:
            response = self.responses.popleft()
            hangs_up = response.hangs_up
            for text, pcm16 in zip(response.texts, response.pcm16, strict=True):
                item_id, events = session.begin_message()
                self._deliver(events)
                self._deliver(session.message_text(item_id, text))
                if audio:
                    chunk = int(AUDIO_CHUNK_S * p.SAMPLE_RATE_HZ) * 2
                    for start in range(0, len(pcm16), chunk):
                        self._deliver(session.message_audio(item_id, pcm16[start : start + chunk]))
                        await asyncio.sleep(0)  # a cancel can land between chunks
                self._deliver(session.end_message(item_id))
        if hangs_up:
            self._deliver(session.function_call("end_call", {"reason": "the recorded call ends"}))
        self._deliver(session.response_finished("completed"))
