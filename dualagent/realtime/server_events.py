"""Server events (server -> client) as typed models: what the call core reads, the local server writes.

The client events live in :mod:`dualagent.realtime.protocol`; these are their counterpart, with
the GA names. Both sides use them: the call core reads ``event.response.id`` instead of walking
dicts, and the embedded server builds its events from the same classes, so a field name is
spelt in one place.

Parsing is tolerant, because hosted servers add event types and fields over time:

- :func:`parse_server_event` returns an :class:`UnknownServerEvent` (all fields kept) for a type
  it does not know; the call core ignores those.
- Every model accepts unknown fields and keeps them, and almost every field is optional: a
  server that leaves one out still gives a usable event.
- A known type whose fields have the wrong *types* raises :class:`ServerEventError`: that is a
  broken server, and a call should end saying so rather than stall.

Writing keeps the wire exactly as before: :meth:`ServerEvent.dump` leaves out fields that are
``None``, except inside payloads (items, responses, errors...) where a ``None`` that was set on
purpose stays ``null``, as the hosted service sends it (``"transcript": null`` of an audio item
not transcribed yet, ``"param": null`` of an error). Serialise with ``json.dumps(event.dump())``.

This module does no I/O, like the protocol module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
)

from dualagent.realtime.protocol import IdFactory, ProtocolError, _Model, normalize_server_event

# --------------------------------------------------------------------------------------------
# Payloads: what events carry
# --------------------------------------------------------------------------------------------


class _Payload(_Model):
    """A nested object of a server event: every field optional, explicit ``None`` kept."""

    @model_serializer(mode="wrap")
    def _keep_explicit_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)  # the event's dump drops None fields everywhere ...
        fields_set = self.model_fields_set
        # The usual case, checked in C: every field set is in the dump, nothing to put back.
        if fields_set <= data.keys() or not any(
            getattr(self, name, 0) is None for name in fields_set - data.keys()
        ):
            return data
        extra = self.__pydantic_extra__ or {}
        # ... so put back the ones set to None on purpose, in declaration order (a set's
        # order would change with the hash seed, and with it the bytes on the wire).
        ordered: dict[str, Any] = {}
        for name in [*type(self).model_fields, *extra]:
            if name in data:
                ordered[name] = data[name]
            elif name in fields_set and getattr(self, name, 0) is None:
                ordered[name] = None
        return {**ordered, **data}


class ContentPart(_Payload):
    """One content part of a message item (``output_audio``, ``input_text``, ...)."""

    type: str | None = None
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None


class Item(_Payload):
    """A conversation item as a server sends it: a message, a function call or its output.

    One lenient model rather than a union: hosted servers have more item types (MCP calls...)
    than we handle, and an item we do not know must not make its whole event unreadable.
    """

    id: str | None = None
    object: str | None = None
    type: str | None = None
    status: str | None = None
    role: str | None = None
    content: list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


class ErrorDetails(_Payload):
    """The ``error`` of an ``error`` event, or of a failed response or transcription."""

    type: str | None = None
    code: str | None = None
    message: str | None = None
    param: str | None = None
    event_id: str | None = None


class StatusDetails(_Payload):
    """Why a response ended as it did (``cancelled``/``client_cancelled``, ``failed`` + error)."""

    type: str | None = None
    reason: str | None = None
    error: ErrorDetails | None = None


class Usage(_Payload):
    """Token counts of one response (``response.done``)."""

    total_tokens: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_token_details: dict[str, Any] | None = None
    output_token_details: dict[str, Any] | None = None


class Response(_Payload):
    """A response object (``response.created``, ``response.done``)."""

    object: str | None = None
    id: str | None = None
    status: str | None = None
    conversation_id: str | None = None
    output_modalities: list[str] | None = None
    output: list[Item] | None = None
    status_details: StatusDetails | None = None
    audio: dict[str, Any] | None = None
    usage: Usage | None = None
    metadata: dict[str, str] | None = None


class RateLimit(_Payload):
    name: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------


class ServerEventBase(_Model):
    """Fields every server event has. ``event_id`` is optional only to read lenient servers."""

    type: str
    event_id: str | None = None


ServerEventT = TypeVar("ServerEventT", bound=ServerEventBase)


class OutputPart(ServerEventBase):
    """Fields of the events about one content part of a response's output item."""

    response_id: str | None = None
    item_id: str | None = None
    output_index: int | None = None
    content_index: int | None = None


class SessionCreated(ServerEventBase):
    type: Literal["session.created"] = "session.created"
    # A dict: the call core reads nothing in it, and a hosted session has many more fields
    # (tracing, prompt, expires_at...) than our SessionConfig models.
    session: dict[str, Any] = Field(default_factory=dict)


class SessionUpdated(ServerEventBase):
    type: Literal["session.updated"] = "session.updated"
    session: dict[str, Any] = Field(default_factory=dict)


class ConversationCreated(ServerEventBase):
    type: Literal["conversation.created"] = "conversation.created"
    conversation: dict[str, Any] = Field(default_factory=dict)


class ErrorEvent(ServerEventBase):
    type: Literal["error"] = "error"
    error: ErrorDetails = Field(default_factory=ErrorDetails)


class RateLimitsUpdated(ServerEventBase):
    type: Literal["rate_limits.updated"] = "rate_limits.updated"
    rate_limits: list[RateLimit] = Field(default_factory=list)


class InputAudioBufferCommitted(ServerEventBase):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    previous_item_id: str | None = None
    item_id: str | None = None


class InputAudioBufferCleared(ServerEventBase):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class InputAudioBufferSpeechStarted(ServerEventBase):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int | None = None
    item_id: str | None = None


class InputAudioBufferSpeechStopped(ServerEventBase):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int | None = None
    item_id: str | None = None


class ConversationItemAdded(ServerEventBase):
    type: Literal["conversation.item.added"] = "conversation.item.added"
    previous_item_id: str | None = None
    item: Item = Field(default_factory=Item)


class ConversationItemCreated(ServerEventBase):
    """The older name of ``conversation.item.added``; GA servers may still send it."""

    type: Literal["conversation.item.created"] = "conversation.item.created"
    previous_item_id: str | None = None
    item: Item = Field(default_factory=Item)


class ConversationItemDone(ServerEventBase):
    type: Literal["conversation.item.done"] = "conversation.item.done"
    previous_item_id: str | None = None
    item: Item = Field(default_factory=Item)


class ConversationItemTruncated(ServerEventBase):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str | None = None
    content_index: int | None = None
    audio_end_ms: int | None = None


class ConversationItemDeleted(ServerEventBase):
    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str | None = None


class InputAudioTranscriptionCompleted(ServerEventBase):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str | None = None
    content_index: int | None = None
    transcript: str | None = None
    usage: dict[str, Any] | None = None


class InputAudioTranscriptionFailed(ServerEventBase):
    type: Literal["conversation.item.input_audio_transcription.failed"] = (
        "conversation.item.input_audio_transcription.failed"
    )
    item_id: str | None = None
    content_index: int | None = None
    error: ErrorDetails = Field(default_factory=ErrorDetails)


class ResponseCreated(ServerEventBase):
    type: Literal["response.created"] = "response.created"
    response: Response = Field(default_factory=Response)


class ResponseDone(ServerEventBase):
    type: Literal["response.done"] = "response.done"
    response: Response = Field(default_factory=Response)


class ResponseOutputItemAdded(ServerEventBase):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str | None = None
    output_index: int | None = None
    item: Item = Field(default_factory=Item)


class ResponseOutputItemDone(ServerEventBase):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str | None = None
    output_index: int | None = None
    item: Item = Field(default_factory=Item)


class ResponseContentPartAdded(OutputPart):
    type: Literal["response.content_part.added"] = "response.content_part.added"
    part: ContentPart = Field(default_factory=ContentPart)


class ResponseContentPartDone(OutputPart):
    type: Literal["response.content_part.done"] = "response.content_part.done"
    part: ContentPart = Field(default_factory=ContentPart)


class ResponseOutputAudioDelta(OutputPart):
    """One chunk of a response's audio: the hot event, several per second per call.

    Validated like the others: it is flat, and pydantic reads it in a few microseconds
    (measured ~3 µs, against a budget of 1 ms per chunk), so it needs no unvalidated path.
    """

    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: str = ""


class ResponseOutputAudioDone(OutputPart):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class ResponseOutputAudioTranscriptDelta(OutputPart):
    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    delta: str = ""


class ResponseOutputAudioTranscriptDone(OutputPart):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str | None = None


class ResponseOutputTextDelta(OutputPart):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str = ""


class ResponseOutputTextDone(OutputPart):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str | None = None


class ResponseFunctionCallArgumentsDelta(ServerEventBase):
    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    response_id: str | None = None
    item_id: str | None = None
    output_index: int | None = None
    call_id: str | None = None
    delta: str = ""


class ResponseFunctionCallArgumentsDone(ServerEventBase):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str | None = None
    item_id: str | None = None
    output_index: int | None = None
    call_id: str | None = None
    arguments: str | None = None
    name: str | None = None


class UnknownServerEvent(ServerEventBase):
    """An event type we do not model: kept whole (its fields are extras), otherwise ignored."""


KnownServerEvent = Annotated[
    SessionCreated
    | SessionUpdated
    | ConversationCreated
    | ErrorEvent
    | RateLimitsUpdated
    | InputAudioBufferCommitted
    | InputAudioBufferCleared
    | InputAudioBufferSpeechStarted
    | InputAudioBufferSpeechStopped
    | ConversationItemAdded
    | ConversationItemCreated
    | ConversationItemDone
    | ConversationItemTruncated
    | ConversationItemDeleted
    | InputAudioTranscriptionCompleted
    | InputAudioTranscriptionFailed
    | ResponseCreated
    | ResponseDone
    | ResponseOutputItemAdded
    | ResponseOutputItemDone
    | ResponseContentPartAdded
    | ResponseContentPartDone
    | ResponseOutputAudioDelta
    | ResponseOutputAudioDone
    | ResponseOutputAudioTranscriptDelta
    | ResponseOutputAudioTranscriptDone
    | ResponseOutputTextDelta
    | ResponseOutputTextDone
    | ResponseFunctionCallArgumentsDelta
    | ResponseFunctionCallArgumentsDone,
    Field(discriminator="type"),
]
"""The server events we model, told apart by ``type``."""

ServerEvent = KnownServerEvent | UnknownServerEvent
"""What :func:`parse_server_event` returns."""

_known_adapter: TypeAdapter[Any] = TypeAdapter(KnownServerEvent)
SERVER_EVENT_TYPES: frozenset[str] = frozenset(
    model.model_fields["type"].default for model in KnownServerEvent.__args__[0].__args__
)


class ServerEventError(ValueError):
    """A server sent an event of a known type with fields of the wrong type."""


def parse_server_event(raw: dict[str, Any]) -> ServerEvent:
    """The typed model of one server event (beta names accepted, as GA).

    Unknown types give an :class:`UnknownServerEvent`; unknown fields are kept; a known type
    with badly typed fields raises :class:`ServerEventError` naming the event and the field.
    """
    data = normalize_server_event(raw)
    kind = data.get("type")
    if kind not in SERVER_EVENT_TYPES:
        return UnknownServerEvent.model_validate({**data, "type": str(kind)})
    try:
        return _known_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:])  # without the union tag
        raise ServerEventError(
            f"invalid {kind} event from the server: {where or 'event'}: {first['msg']}"
        ) from None


def error_event(ids: IdFactory, error: ProtocolError) -> ErrorEvent:
    """The ``error`` event the hosted service sends for a bad client event."""
    return ErrorEvent(
        event_id=ids("event"),
        error=ErrorDetails(
            type="invalid_request_error",
            code=error.code,
            message=error.message,
            param=error.param,
            event_id=error.event_id,
        ),
    )
