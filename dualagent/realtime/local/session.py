"""One Realtime session's state machine, without I/O.

:class:`LocalSession` is fed parsed client events and returns what to do: server events to send
and *work orders* (transcribe this buffer, generate this response). The server's I/O layer
(:mod:`dualagent.realtime.local.server`) runs the work on the engines and feeds the results back
through the ``*_done``/``response_*`` methods, which return more server events. Every
protocol rule (buffer, items, one response at a time, error codes) lives here and is tested
without sockets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.local import errors
from dualagent.realtime.local.brains import registry
from dualagent.realtime.local.conversation import ROOT, Conversation, ConversationEntry
from dualagent.realtime.local.vad import (
    EnergyVad,
    VadSettings,
    default_turn_detection,
    normalize_turn_detection,
)
from dualagent.realtime.truncation import SpokenAlignment

__all__ = ["ConversationEntry", "LocalSession", "Respond", "StopResponse", "Transcribe"]

DEFAULT_MODEL = registry.LOCAL_CS_MODEL


@dataclass
class Transcribe:
    """Work order: recognise ``pcm16`` and report it with :meth:`LocalSession.transcription_done`."""

    item_id: str
    pcm16: bytes


@dataclass
class Respond:
    """Work order: run the brain for ``response_id`` and stream its output."""

    response_id: str
    params: p.ResponseParams


@dataclass
class StopResponse:
    """Work order: stop generating ``response_id`` (it was cancelled)."""

    response_id: str


@dataclass
class _ActiveResponse:
    response_id: str
    output_modalities: list[str]
    metadata: dict[str, str] | None = None  # echoed on response.created/done, as hosted
    items: list[ev.Item] = field(default_factory=list)
    audio_bytes: int = 0
    cancelled: bool = False


Action = ev.ServerEvent | Transcribe | Respond | StopResponse
"""A server event to send (``json.dumps(event.dump())``) or a work order to run."""


class LocalSession:
    """State of one Realtime session: config, input buffer, conversation, current response."""

    def __init__(self, session_id: str, *, model: str = DEFAULT_MODEL) -> None:
        self.ids = p.IdFactory()
        self.session_id = session_id
        self.conversation_id = f"conv_{session_id}"
        self.config = p.SessionConfig(
            type="realtime",
            model=model,
            instructions="",
            output_modalities=["audio"],
            audio=p.AudioConfig(
                input=p.AudioInputConfig(
                    format=p.AudioFormat(), turn_detection=default_turn_detection()
                ),
                output=p.AudioOutputConfig(format=p.AudioFormat(), voice="alloy", speed=1.0),
            ),
            tools=[],
            tool_choice="auto",
        )
        self.input_buffer = bytearray()
        self.input_ms = 0.0  # all audio appended in this session, as the VAD counts it
        # Server-side turn detection: on until the client turns it off (as hosted).
        self.vad: EnergyVad | None = EnergyVad(VadSettings())
        self._vad_offset_ms = 0.0  # where the detector started, in session audio
        self._speech_item_id: str | None = None  # the user item the current speech becomes
        self.items = Conversation()
        self.response: _ActiveResponse | None = None

    # ---------------------------------------------------------------- helpers

    def _event(self, model: type[ev.ServerEventT], **fields: Any) -> ev.ServerEventT:
        return model(event_id=self.ids("event"), **fields)

    def _refuse(self, error: p.ProtocolError, event_id: str | None) -> list[Action]:
        """The ``error`` event refusing the client event ``event_id``."""
        error.event_id = event_id
        return [ev.error_event(self.ids, error)]

    def _unknown_model_error(self, event_id: str | None) -> list[Action]:
        message = registry.unknown_brain_message(self.config.model)
        return self._refuse(errors.invalid_value(message, "model"), event_id)

    def session_object(self) -> dict[str, Any]:
        return {"id": self.session_id, "object": "realtime.session", **self.config.dump()}

    @property
    def voice(self) -> str | None:
        return (
            self.config.audio.output.voice
            if self.config.audio and self.config.audio.output
            else None
        )

    def _turn_detection(self) -> dict[str, Any] | None:
        audio_in = self.config.audio.input if self.config.audio else None
        return audio_in.turn_detection if audio_in else None

    @property
    def speed(self) -> float:
        out = self.config.audio.output if self.config.audio else None
        return (out.speed if out and out.speed else 1.0) or 1.0

    @property
    def entries(self) -> dict[str, ConversationEntry]:
        """What the brain sees of each item, by item id."""
        return self.items.entries

    @property
    def _items(self) -> dict[str, ev.Item]:
        return self.items.items

    def _add_item(
        self, item: ev.Item, entry: ConversationEntry, after: str | None = None
    ) -> ev.ConversationItemAdded:
        previous = self.items.insert(item, entry, after)
        return self._event(ev.ConversationItemAdded, previous_item_id=previous, item=item)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> list[Action]:
        """Events sent when the connection opens (and an error if no brain has that model)."""
        events: list[Action] = [
            self._event(ev.SessionCreated, session=self.session_object()),
            self._event(
                ev.ConversationCreated,
                conversation={"id": self.conversation_id, "object": "realtime.conversation"},
            ),
        ]
        if not registry.is_registered(self.config.model):
            events += self._unknown_model_error(None)
        return events

    def handle_raw(self, raw: str | bytes | dict[str, Any]) -> list[Action]:
        """Parse one client message (JSON, or a dict in memory) and handle it; bad input becomes
        an ``error`` event."""
        try:
            event = p.parse_client_event(raw)
        except p.ProtocolError as exc:
            return [ev.error_event(self.ids, exc)]
        return self.handle(event)

    def handle(self, event: Any) -> list[Action]:
        """Handle one parsed client event."""
        handler = getattr(self, "_on_" + event.type.replace(".", "_"))
        return handler(event)

    # ---------------------------------------------------------------- client events

    def _on_session_update(self, event: p.SessionUpdate) -> list[Action]:
        merged = self.config.model_dump(exclude_none=True)
        update = event.session.model_dump(exclude_unset=True)
        # The URL chose the model (the brain); like the hosted service, an update cannot
        # change it, and clients that repeat theirs (LiveKit sends "gpt-realtime") are ignored.
        update.pop("model", None)
        _deep_merge(merged, update)
        try:
            audio_in_update = (update.get("audio") or {}).get("input") or {}
            turn_detection = (
                normalize_turn_detection(audio_in_update["turn_detection"])  # replaced whole
                if "turn_detection" in audio_in_update
                else self._turn_detection()
            )
            # Set even when null: the session then reports "turn_detection": null, as hosted.
            merged.setdefault("audio", {}).setdefault("input", {})["turn_detection"] = (
                turn_detection
            )
            config = p.SessionConfig.model_validate(merged)
            audio_in = config.audio.input if config.audio else None
            vad = VadSettings.from_turn_detection(audio_in.turn_detection if audio_in else None)
        except ValueError as exc:
            message = f"Invalid session: {exc}"
            return self._refuse(errors.invalid_value(message, "session"), event.event_id)
        self.config = config
        if vad is None:
            self.vad = None
        elif self.vad is None or self.vad.settings != vad:
            self.vad = EnergyVad(vad)
            self._vad_offset_ms = self.input_ms
        return [self._event(ev.SessionUpdated, session=self.session_object())]

    def _on_input_audio_buffer_append(self, event: p.InputAudioBufferAppend) -> list[Action]:
        try:
            pcm = p.decode_audio(event.audio)
        except ValueError as exc:
            return self._refuse(errors.invalid_value(str(exc), "audio"), event.event_id)
        if len(pcm) % 2:
            message = "audio must be PCM16: an even number of bytes"
            return self._refuse(errors.invalid_value(message, "audio"), event.event_id)
        self.input_buffer += pcm
        self.input_ms += p.pcm16_duration_s(pcm) * 1000
        return self._detect_turns(pcm) if self.vad is not None else []

    def _detect_turns(self, pcm: bytes) -> list[Action]:
        """Server VAD: announce speech, and when it stops commit it and answer (if asked)."""
        assert self.vad is not None
        settings = self.vad.settings
        actions: list[Action] = []
        for kind, vad_ms in self.vad.feed(pcm):
            at_ms = round(self._vad_offset_ms + vad_ms)
            if kind == "speech_started":
                self._speech_item_id = self.ids("item")
                # Keep only the prefix padding of what came before the speech.
                buffer_start_ms = self.input_ms - p.pcm16_duration_s(self.input_buffer) * 1000
                drop_ms = at_ms - settings.prefix_padding_ms - buffer_start_ms
                if drop_ms > 0:
                    drop = int(drop_ms * p.SAMPLE_RATE_HZ / 1000) * 2
                    del self.input_buffer[:drop]
                actions.append(
                    self._event(
                        ev.InputAudioBufferSpeechStarted,
                        audio_start_ms=at_ms,
                        item_id=self._speech_item_id,
                    )
                )
                if settings.interrupt_response and self.response is not None:
                    actions += self._cancel_response(reason="turn_detected")
                continue
            item_id, self._speech_item_id = self._speech_item_id or self.ids("item"), None
            actions.append(
                self._event(ev.InputAudioBufferSpeechStopped, audio_end_ms=at_ms, item_id=item_id)
            )
            actions += self._commit_buffer(item_id)
            if settings.create_response and self.response is None:
                actions += self._start_response(p.ResponseParams(), None)
        return actions

    def _on_input_audio_buffer_commit(self, event: p.InputAudioBufferCommit) -> list[Action]:
        min_bytes = 2 * p.SAMPLE_RATE_HZ // 10  # the hosted service also refuses < 100 ms
        if len(self.input_buffer) < min_bytes:
            ms = len(self.input_buffer) / (2 * p.SAMPLE_RATE_HZ) * 1000
            return self._refuse(errors.commit_empty(ms), event.event_id)
        return self._commit_buffer(self.ids("item"))

    def _commit_buffer(self, item_id: str) -> list[Action]:
        """Turn the input buffer into a user audio item, and order its transcription."""
        pcm = bytes(self.input_buffer)
        self.input_buffer.clear()
        previous = self.items.last_id()
        item = ev.Item(
            id=item_id,
            object="realtime.item",
            type="message",
            status="completed",
            role="user",
            # Not transcribed yet: the hosted service sends an explicit null, so do we.
            content=[ev.ContentPart(type="input_audio", transcript=None)],
        )
        committed = self._event(
            ev.InputAudioBufferCommitted, previous_item_id=previous, item_id=item_id
        )
        added = self._add_item(item, ConversationEntry(item_id, "user", pending=True))
        done = self._event(ev.ConversationItemDone, previous_item_id=previous, item=item)
        return [committed, added, done, Transcribe(item_id, pcm)]

    def _on_input_audio_buffer_clear(self, event: p.InputAudioBufferClear) -> list[Action]:
        self.input_buffer.clear()
        return [self._event(ev.InputAudioBufferCleared)]

    def _on_conversation_item_create(self, event: p.ConversationItemCreate) -> list[Action]:
        item_model = event.item
        item = item_model.model_dump(exclude_none=True)
        item_id = item.get("id") or self.ids("item")
        if item_id in self.items:  # code and message as hosted: clients replaying match them
            return self._refuse(errors.duplicate_item(item_id), event.event_id)
        after = event.previous_item_id
        if after is not None and after != ROOT and after not in self.items:
            return self._refuse(errors.unknown_previous_item(after), event.event_id)
        item.update(id=item_id, object="realtime.item", status="completed")
        wire_item = ev.Item.model_validate(item)
        if isinstance(item_model, p.MessageItem):
            text = " ".join(
                part.text or part.transcript or "" for part in item_model.content
            ).strip()
            if any(part.type == "input_audio" and part.audio for part in item_model.content):
                return self._refuse(errors.input_audio_item(), event.event_id)
            role = item_model.role
            entry = ConversationEntry(item_id, role, text=text)
        elif isinstance(item_model, p.FunctionCallItem):
            entry = ConversationEntry(
                item_id,
                "assistant",
                call_id=item_model.call_id,
                name=item_model.name,
                arguments=item_model.arguments,
            )
        else:
            entry = ConversationEntry(
                item_id, "tool", call_id=item_model.call_id, output=item_model.output
            )
        added = self._add_item(wire_item, entry, after)
        return [
            added,
            self._event(
                ev.ConversationItemDone, previous_item_id=added.previous_item_id, item=wire_item
            ),
        ]

    def _on_conversation_item_truncate(self, event: p.ConversationItemTruncate) -> list[Action]:
        item = self._items.get(event.item_id)
        if item is None:
            return self._refuse(errors.unknown_item("truncate", event.item_id), event.event_id)
        if item.role != "assistant":
            return self._refuse(errors.not_truncatable(event.item_id), event.event_id)
        entry = self.entries[event.item_id]
        total_ms = entry.audio_ms
        if event.audio_end_ms > total_ms:
            refusal = errors.truncate_beyond_audio(event.audio_end_ms, total_ms)
            return self._refuse(refusal, event.event_id)
        # The hosted service drops the unheard part of the transcript; keep the words heard.
        entry.text = entry.alignment.spoken_before(event.audio_end_ms / 1000, total_ms / 1000)
        entry.alignment = SpokenAlignment()  # a second truncation spreads what is left
        entry.alignment.add_text(entry.text, 0.0)
        entry.audio_ms = event.audio_end_ms
        for part in item.content or []:
            if part.type == "output_audio":
                part.transcript = entry.text
        return [
            self._event(
                ev.ConversationItemTruncated,
                item_id=event.item_id,
                content_index=event.content_index,
                audio_end_ms=event.audio_end_ms,
            )
        ]

    def _on_conversation_item_delete(self, event: p.ConversationItemDelete) -> list[Action]:
        if event.item_id not in self.items:
            return self._refuse(errors.unknown_item("delete", event.item_id), event.event_id)
        self.items.delete(event.item_id)
        return [self._event(ev.ConversationItemDeleted, item_id=event.item_id)]

    def _on_response_create(self, event: p.ResponseCreate) -> list[Action]:
        if self.response is not None:
            return self._refuse(errors.active_response(self.response.response_id), event.event_id)
        return self._start_response(event.response or p.ResponseParams(), event.event_id)

    def _start_response(self, params: p.ResponseParams, event_id: str | None) -> list[Action]:
        if not registry.is_registered(self.config.model):  # no brain could answer
            return self._unknown_model_error(event_id)
        modalities = list(params.output_modalities or self.config.output_modalities or ["audio"])
        response_id = self.ids("resp")
        self.response = _ActiveResponse(response_id, modalities, params.metadata)
        created = self._event(ev.ResponseCreated, response=self._response_object("in_progress"))
        return [created, Respond(response_id, params)]

    def _on_response_cancel(self, event: p.ResponseCancel) -> list[Action]:
        active = self.response
        if active is None or (event.response_id and event.response_id != active.response_id):
            return self._refuse(errors.cancel_not_active(), event.event_id)
        return self._cancel_response()

    def _cancel_response(self, reason: str = "client_cancelled") -> list[Action]:
        """Stop the active response's work and close it as cancelled (``reason`` as hosted:
        ``client_cancelled`` or ``turn_detected``)."""
        active = self.response
        assert active is not None
        active.cancelled = True
        return [
            StopResponse(active.response_id),
            *self.response_finished(status="cancelled", reason=reason),
        ]

    # ---------------------------------------------------------------- work results

    def transcription_done(self, item_id: str, transcript: str, audio_s: float) -> list[Action]:
        """The recogniser's result for a committed buffer."""
        entry = self.entries.get(item_id)
        if entry is None:  # deleted meanwhile
            return []
        entry.text = transcript
        entry.pending = False
        content = self._items[item_id].content
        assert content
        content[0].transcript = transcript
        return [
            self._event(
                ev.InputAudioTranscriptionCompleted,
                item_id=item_id,
                content_index=0,
                transcript=transcript,
                usage={"type": "duration", "seconds": round(audio_s, 3)},
            )
        ]

    def _response_object(
        self, status: str, status_details: ev.StatusDetails | None = None
    ) -> ev.Response:
        active = self.response
        assert active is not None
        obj = ev.Response(
            object="realtime.response",
            id=active.response_id,
            status=status,
            conversation_id=self.conversation_id,
            output_modalities=active.output_modalities,
            output=active.items,
        )
        if status_details:
            obj.status_details = status_details
        if active.metadata is not None:  # LiveKit matches its generate_reply() by this
            obj.metadata = dict(active.metadata)
        if "audio" in active.output_modalities:
            obj.audio = {
                "output": {
                    "format": {"type": "audio/pcm", "rate": p.SAMPLE_RATE_HZ},
                    "voice": self.voice,
                }
            }
        return obj

    def begin_message(self) -> tuple[str, list[Action]]:
        """Start an assistant message in the active response; returns its item id and events."""
        active = self.response
        assert active is not None
        item_id = self.ids("item")
        audio = "audio" in active.output_modalities
        item = ev.Item(
            id=item_id,
            object="realtime.item",
            type="message",
            status="in_progress",
            role="assistant",
            content=[
                ev.ContentPart(type="output_audio", transcript="")
                if audio
                else ev.ContentPart(type="output_text", text="")
            ],
        )
        output_index = len(active.items)
        active.items.append(item)
        previous = self.items.insert(item, ConversationEntry(item_id, "assistant"))
        part = (
            ev.ContentPart(type="audio", transcript="")
            if audio
            else ev.ContentPart(type="text", text="")
        )
        return item_id, [
            self._event(
                ev.ResponseOutputItemAdded,
                response_id=active.response_id,
                output_index=output_index,
                item=_snapshot(item),
            ),
            self._event(
                ev.ConversationItemAdded,
                previous_item_id=previous,
                item=_snapshot(item),
            ),
            self._event(
                ev.ResponseContentPartAdded,
                response_id=active.response_id,
                item_id=item_id,
                output_index=output_index,
                content_index=0,
                part=part,
            ),
        ]

    def message_text(self, item_id: str, text: str) -> list[Action]:
        """The transcript (audio) or text delta of a message; send it just before its audio,
        so a truncation knows which words the audio so far holds."""
        active = self.response
        assert active is not None
        entry = self.entries[item_id]
        entry.text = (entry.text + " " + text).strip() if entry.text else text
        audio = "audio" in active.output_modalities
        kind = ev.ResponseOutputAudioTranscriptDelta if audio else ev.ResponseOutputTextDelta
        delta = text if not entry.text or entry.text == text else " " + text
        entry.alignment.add_text(delta, entry.audio_ms / 1000)
        return [
            self._event(
                kind,
                response_id=active.response_id,
                item_id=item_id,
                output_index=self._output_index(item_id),
                content_index=0,
                delta=delta,
            )
        ]

    def message_audio(self, item_id: str, pcm16: bytes) -> list[Action]:
        """One audio delta of a message."""
        active = self.response
        assert active is not None
        entry = self.entries[item_id]
        entry.audio_ms += round(p.pcm16_duration_s(pcm16) * 1000)
        active.audio_bytes += len(pcm16)
        return [
            self._event(
                ev.ResponseOutputAudioDelta,
                response_id=active.response_id,
                item_id=item_id,
                output_index=self._output_index(item_id),
                content_index=0,
                delta=p.encode_audio(pcm16),
            )
        ]

    def end_message(self, item_id: str) -> list[Action]:
        active = self.response
        assert active is not None
        entry = self.entries[item_id]
        item = self._items[item_id]
        audio = "audio" in active.output_modalities
        common: dict[str, Any] = {
            "response_id": active.response_id,
            "item_id": item_id,
            "output_index": self._output_index(item_id),
            "content_index": 0,
        }
        item.status = "completed"
        assert item.content
        events: list[Action]
        if audio:
            item.content[0].transcript = entry.text
            part = ev.ContentPart(type="audio", transcript=entry.text)
            events = [
                self._event(ev.ResponseOutputAudioDone, **common),
                self._event(ev.ResponseOutputAudioTranscriptDone, transcript=entry.text, **common),
            ]
        else:
            item.content[0].text = entry.text
            part = ev.ContentPart(type="text", text=entry.text)
            events = [self._event(ev.ResponseOutputTextDone, text=entry.text, **common)]
        events.append(self._event(ev.ResponseContentPartDone, part=part, **common))
        events.append(
            self._event(
                ev.ResponseOutputItemDone,
                response_id=active.response_id,
                output_index=common["output_index"],
                item=item,
            )
        )
        events.append(
            self._event(
                ev.ConversationItemDone, previous_item_id=self.items.previous_id(item_id), item=item
            )
        )
        return events

    def function_call(self, name: str, arguments: dict[str, Any]) -> list[Action]:
        """A complete function call output item in the active response."""
        active = self.response
        assert active is not None
        item_id = self.ids("item")
        call_id = self.ids("call")
        args = json.dumps(arguments, separators=(",", ":"))
        output_index = len(active.items)
        item = ev.Item(
            id=item_id,
            object="realtime.item",
            type="function_call",
            status="completed",
            call_id=call_id,
            name=name,
            arguments=args,
        )
        active.items.append(item)
        previous = self.items.insert(
            item,
            ConversationEntry(item_id, "assistant", call_id=call_id, name=name, arguments=args),
        )
        common: dict[str, Any] = {
            "response_id": active.response_id,
            "item_id": item_id,
            "output_index": output_index,
            "call_id": call_id,
        }
        in_progress = item.model_copy(update={"status": "in_progress", "arguments": ""})
        return [
            self._event(
                ev.ResponseOutputItemAdded,
                response_id=active.response_id,
                output_index=output_index,
                item=in_progress,
            ),
            self._event(ev.ConversationItemAdded, previous_item_id=previous, item=in_progress),
            self._event(ev.ResponseFunctionCallArgumentsDelta, delta=args, **common),
            self._event(ev.ResponseFunctionCallArgumentsDone, arguments=args, name=name, **common),
            self._event(
                ev.ResponseOutputItemDone,
                response_id=active.response_id,
                output_index=output_index,
                item=item,
            ),
            self._event(ev.ConversationItemDone, previous_item_id=previous, item=item),
        ]

    def response_finished(
        self, status: str = "completed", reason: str = "client_cancelled"
    ) -> list[Action]:
        """Close the active response with ``response.done`` (completed or cancelled)."""
        active = self.response
        if active is None:
            return []
        details = None
        if status == "cancelled":
            details = ev.StatusDetails(type="cancelled", reason=reason)
            for item in active.items:
                if item.status == "in_progress":
                    item.status = "incomplete"
        output_tokens = sum(
            len(self.entries[i.id].text.split()) for i in active.items if i.id in self.entries
        )
        obj = self._response_object(status, details)
        obj.usage = ev.Usage(
            total_tokens=output_tokens,
            input_tokens=0,
            output_tokens=output_tokens,
            input_token_details={"text_tokens": 0, "audio_tokens": 0, "cached_tokens": 0},
            output_token_details={
                "text_tokens": output_tokens,
                "audio_tokens": active.audio_bytes // 960,
            },
        )
        self.response = None
        return [
            self._event(ev.ResponseDone, response=obj),
            self._event(
                ev.RateLimitsUpdated,
                rate_limits=[
                    ev.RateLimit(
                        name="requests", limit=10_000, remaining=9_999, reset_seconds=0.006
                    ),
                    ev.RateLimit(
                        name="tokens",
                        limit=1_000_000,
                        remaining=1_000_000 - output_tokens,
                        reset_seconds=0.0,
                    ),
                ],
            ),
        ]

    def response_failed(self, message: str) -> list[Action]:
        """Close the active response as failed with a server error."""
        active = self.response
        if active is None:
            return []
        obj = self._response_object(
            "failed",
            ev.StatusDetails(
                type="failed",
                error=ev.ErrorDetails(type="server_error", code="server_error", message=message),
            ),
        )
        self.response = None
        return [self._event(ev.ResponseDone, response=obj)]

    def _output_index(self, item_id: str) -> int:
        assert self.response is not None
        for index, item in enumerate(self.response.items):
            if item.id == item_id:
                return index
        raise KeyError(item_id)

    def conversation(self) -> list[ConversationEntry]:
        """The conversation as the brain sees it, oldest first."""
        return self.items.in_order()


def _deep_merge(target: dict[str, Any], update: dict[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def _snapshot(item: ev.Item) -> ev.Item:
    """A copy of a message item as it is now, for an event: the session goes on filling in
    the item's status and its parts' text. As a deep copy for the items this session makes
    (scalar fields, parts of scalar fields), at a fraction of ``deepcopy``'s cost."""
    content = None if item.content is None else [part.model_copy() for part in item.content]
    return item.model_copy(update={"content": content})
