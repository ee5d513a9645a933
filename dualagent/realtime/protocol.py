"""The Realtime speech protocol as typed models: one source of truth for the wire format.

Both the bridge (a client) and the embedded local server use these models, so field names live
in one place. The server side emits the GA event names (``response.output_audio.delta``, ...);
:func:`normalize_server_event` and :func:`normalize_client_event` accept the older beta names
and the flat beta session shape (``voice``, ``turn_detection``, ``modalities`` at the top level)
and rewrite them to GA, so the rest of the code only ever sees GA. The server events themselves
are modelled in :mod:`dualagent.realtime.server_events`.

This module does no I/O and imports nothing of the call: it is pure functions and models.
"""

from __future__ import annotations

import base64
import itertools
import json
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

SAMPLE_RATE_HZ = 24_000
"""The Realtime protocol's PCM16 rate: mono, little-endian, 24 kHz."""

BYTES_PER_SAMPLE = 2

# --------------------------------------------------------------------------------------------
# Audio payload helpers
# --------------------------------------------------------------------------------------------


def encode_audio(pcm16: bytes) -> str:
    """Base64-encode PCM16 bytes for an ``audio``/``delta`` field."""
    return base64.b64encode(pcm16).decode("ascii")


def decode_audio(b64: str) -> bytes:
    """Decode a base64 audio field; raises ``ValueError`` on malformed input."""
    try:
        return base64.b64decode(b64, validate=True)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise ValueError(f"audio is not valid base64: {exc}") from exc


def b64_decoded_size(b64: str) -> int:
    """Size in bytes of what a base64 string decodes to, without decoding it."""
    n = len(b64)
    if n == 0:
        return 0
    padding = 2 if b64.endswith("==") else 1 if b64.endswith("=") else 0
    return n * 3 // 4 - padding


def pcm16_to_float(pcm16: bytes) -> np.ndarray:
    """PCM16 bytes -> float32 samples in [-1, 1]."""
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


def float_to_pcm16(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] -> PCM16 little-endian bytes (clipped)."""
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype("<i2").tobytes()


def pcm16_duration_s(pcm16: bytes | int, sample_rate_hz: int = SAMPLE_RATE_HZ) -> float:
    """Duration of PCM16 mono audio (bytes or a byte count) in seconds."""
    size = pcm16 if isinstance(pcm16, int) else len(pcm16)
    return size / (BYTES_PER_SAMPLE * sample_rate_hz)


# --------------------------------------------------------------------------------------------
# Ids
# --------------------------------------------------------------------------------------------


class IdFactory:
    """Deterministic ids like the hosted service's (``event_…``, ``item_…``, ``resp_…``).

    Deterministic so the same seed gives byte-identical transcripts and event logs.
    """

    def __init__(self, namespace: str = "") -> None:
        self._counter = itertools.count(1)
        self._namespace = namespace

    def __call__(self, prefix: str) -> str:
        return f"{prefix}_{self._namespace}{next(self._counter):06d}"


# --------------------------------------------------------------------------------------------
# Session configuration (GA shape)
# --------------------------------------------------------------------------------------------


class _Model(BaseModel):
    """Wire models accept unknown fields (servers add new ones) and keep them on dump."""

    model_config = ConfigDict(extra="allow")

    def dump(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class AudioFormat(_Model):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int | None = SAMPLE_RATE_HZ


class AudioInputConfig(_Model):
    format: AudioFormat | None = None
    turn_detection: dict[str, Any] | None = None
    transcription: dict[str, Any] | None = None
    noise_reduction: dict[str, Any] | None = None


class AudioOutputConfig(_Model):
    format: AudioFormat | None = None
    voice: str | None = None
    speed: float | None = Field(default=None, ge=0.25, le=1.5)


class AudioConfig(_Model):
    input: AudioInputConfig | None = None
    output: AudioOutputConfig | None = None


class FunctionTool(_Model):
    type: Literal["function"] = "function"
    name: str
    description: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class SessionConfig(_Model):
    """A GA ``session`` object (the subset we set; unknown fields pass through)."""

    type: Literal["realtime", "transcription"] = "realtime"
    model: str | None = None
    instructions: str | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    audio: AudioConfig | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    temperature: float | None = None

    def dump(self) -> dict[str, Any]:
        data = super().dump()
        # An explicit ``turn_detection: null`` means "no server VAD" and must reach the wire;
        # dropping it would let a hosted server fall back to its default VAD.
        audio_in = self.audio.input if self.audio else None
        if audio_in is not None and "turn_detection" in audio_in.model_fields_set:
            data.setdefault("audio", {}).setdefault("input", {})["turn_detection"] = (
                audio_in.turn_detection
            )
        return data


def session_config(
    *,
    model: str | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    speed: float | None = None,
    tools: list[dict[str, Any]] | None = None,
    output_modalities: list[str] | None = None,
    transcribe_input: bool = True,
    transcription: dict[str, Any] | None = None,
    noise_reduction: str | None = None,
    turn_detection: dict[str, Any] | None = None,
) -> SessionConfig:
    """Build the GA session object the bridge sends: PCM16 24 kHz both ways.

    By default the bridge owns the turns, so ``turn_detection`` is explicitly ``None`` (sent as
    JSON null); an agent under test that takes its own turns gets its ``server_vad`` or
    ``semantic_vad`` settings here.
    ``transcription`` is the input transcription setting (``{"model", "language"}``; default
    ``whisper-1``); ``noise_reduction`` is ``near_field`` or ``far_field`` (None/``off``: none).
    """
    pcm = AudioFormat(type="audio/pcm", rate=SAMPLE_RATE_HZ)
    audio_input = AudioInputConfig(format=pcm, turn_detection=turn_detection)
    if transcribe_input:
        audio_input.transcription = dict(transcription or {"model": "whisper-1"})
    if noise_reduction and noise_reduction != "off":
        audio_input.noise_reduction = {"type": noise_reduction}
    return SessionConfig(
        type="realtime",
        model=model,
        instructions=instructions,
        output_modalities=output_modalities or ["audio"],  # type: ignore[arg-type]
        audio=AudioConfig(
            input=audio_input,
            output=AudioOutputConfig(format=pcm, voice=voice, speed=speed),
        ),
        tools=[FunctionTool.model_validate(t) for t in tools] if tools else None,
        tool_choice="auto" if tools else None,
    )


# --------------------------------------------------------------------------------------------
# Conversation items
# --------------------------------------------------------------------------------------------


class ContentPart(_Model):
    type: Literal["input_text", "input_audio", "output_text", "output_audio", "text", "audio"]
    text: str | None = None
    audio: str | None = None
    transcript: str | None = None


class MessageItem(_Model):
    type: Literal["message"] = "message"
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None
    role: Literal["user", "assistant", "system"]
    content: list[ContentPart]


class FunctionCallItem(_Model):
    type: Literal["function_call"] = "function_call"
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None
    call_id: str | None = None
    name: str
    arguments: str


class FunctionCallOutputItem(_Model):
    type: Literal["function_call_output"] = "function_call_output"
    id: str | None = None
    object: Literal["realtime.item"] | None = None
    status: Literal["completed", "incomplete", "in_progress"] | None = None
    call_id: str
    output: str


Item = Annotated[
    MessageItem | FunctionCallItem | FunctionCallOutputItem, Field(discriminator="type")
]


def text_message(text: str, role: Literal["user", "assistant", "system"] = "user") -> MessageItem:
    """A message item carrying plain text (the text route forwards speech this way)."""
    kind = "output_text" if role == "assistant" else "input_text"
    return MessageItem(role=role, content=[ContentPart(type=kind, text=text)])


def function_output(call_id: str, output: dict[str, Any] | str) -> FunctionCallOutputItem:
    """A ``function_call_output`` item; dict outputs are JSON-encoded as the protocol wants."""
    text = output if isinstance(output, str) else json.dumps(output, separators=(",", ":"))
    return FunctionCallOutputItem(call_id=call_id, output=text)


# --------------------------------------------------------------------------------------------
# Client events (client -> server)
# --------------------------------------------------------------------------------------------


class _ClientEvent(_Model):
    event_id: str | None = None


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"] = "session.update"
    session: SessionConfig

    def dump(self) -> dict[str, Any]:
        # The session's own dump keeps an explicit ``turn_detection: null``; the generic
        # ``exclude_none`` dump of this event would silently drop it.
        return {**super().dump(), "session": self.session.dump()}


class InputAudioBufferAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: str


class InputAudioBufferCommit(_ClientEvent):
    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClear(_ClientEvent):
    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class ConversationItemCreate(_ClientEvent):
    type: Literal["conversation.item.create"] = "conversation.item.create"
    previous_item_id: str | None = None
    item: Item


class ConversationItemTruncate(_ClientEvent):
    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int = 0
    audio_end_ms: int = Field(ge=0)


class ConversationItemDelete(_ClientEvent):
    type: Literal["conversation.item.delete"] = "conversation.item.delete"
    item_id: str


BARGE_IN_METADATA_KEY = "dualagent_barge_in"
"""``response.metadata`` key (value ``"1"``) of a response that cuts in while the other party
is still talking. The embedded server's brains read it as :attr:`BrainInput.barge_in`; hosted
models ignore metadata, so for them the call core also adds a note to the instructions."""


class ResponseParams(_Model):
    instructions: str | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    conversation: str | None = None
    metadata: dict[str, str] | None = None  # string -> string, as the Realtime API defines it

    @property
    def barge_in(self) -> bool:
        """Whether this response cuts in on the other party (see :data:`BARGE_IN_METADATA_KEY`)."""
        return (self.metadata or {}).get(BARGE_IN_METADATA_KEY) == "1"


class ResponseCreate(_ClientEvent):
    type: Literal["response.create"] = "response.create"
    response: ResponseParams | None = None


class ResponseCancel(_ClientEvent):
    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


ClientEvent = Annotated[
    SessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear
    | ConversationItemCreate
    | ConversationItemTruncate
    | ConversationItemDelete
    | ResponseCreate
    | ResponseCancel,
    Field(discriminator="type"),
]
CLIENT_EVENT_TYPES: tuple[str, ...] = (
    "session.update",
    "input_audio_buffer.append",
    "input_audio_buffer.commit",
    "input_audio_buffer.clear",
    "conversation.item.create",
    "conversation.item.truncate",
    "conversation.item.delete",
    "response.create",
    "response.cancel",
)
_client_event_adapter: TypeAdapter[Any] = TypeAdapter(ClientEvent)


class ProtocolError(ValueError):
    """A client event the server cannot accept; carries the Realtime error fields."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid_request_error",
        param: str | None = None,
        event_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.event_id = event_id


def parse_client_event(raw: str | bytes | dict[str, Any]) -> Any:
    """Parse and validate one client event (beta names accepted); raise :class:`ProtocolError`."""
    if isinstance(raw, (str, bytes)):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ProtocolError(
                f"We were unable to parse your JSON: {exc.msg} at position {exc.pos}",
                code="invalid_json",
            ) from exc
    else:
        data = raw
    if not isinstance(data, dict):
        raise ProtocolError("An event must be a JSON object", code="invalid_json")
    event_id = data.get("event_id") if isinstance(data.get("event_id"), str) else None
    data = normalize_client_event(data)
    kind = data.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(
            "Missing required parameter: 'type'.",
            code="missing_required_parameter",
            param="type",
            event_id=event_id,
        )
    if kind not in CLIENT_EVENT_TYPES:
        raise ProtocolError(
            f"Invalid value: '{kind}'. Supported values are: "
            + ", ".join(f"'{t}'" for t in CLIENT_EVENT_TYPES)
            + ".",
            code="invalid_value",
            param="type",
            event_id=event_id,
        )
    try:
        return _client_event_adapter.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = _param_path(data, first["loc"])
        missing = first["type"] == "missing"
        raise ProtocolError(
            (f"Missing required parameter: '{location}'." if missing else f"Invalid '{location}': ")
            + ("" if missing else first["msg"]),
            code="missing_required_parameter" if missing else "invalid_value",
            param=location or None,
            event_id=event_id,
        ) from exc


def _param_path(data: Any, loc: tuple[Any, ...]) -> str:
    """The dotted JSON path of a validation error, without discriminated-union tags.

    Pydantic puts the tag (``"conversation.item.create"``, ``"function_call_output"``) in the
    error location; the client's JSON has no such key, so ``param`` must skip it.
    """
    parts: list[str] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("type") == part:
            continue
        parts.append(str(part))
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return ".".join(parts)


# --------------------------------------------------------------------------------------------
# Beta -> GA normalisation
# --------------------------------------------------------------------------------------------

BETA_TO_GA_SERVER_EVENTS: dict[str, str] = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}
"""Beta event names and their GA equivalents.

``conversation.item.created`` is kept by GA servers too; we map it for old servers that only
send it, and callers treat ``added`` and ``created`` alike.
"""

_BETA_CONTENT_TYPES = {"text": "output_text", "audio": "output_audio"}


def normalize_server_event(event: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a beta server event to its GA name (in place when nothing changes)."""
    kind = event.get("type")
    if kind in BETA_TO_GA_SERVER_EVENTS and kind != "conversation.item.created":
        event = {**event, "type": BETA_TO_GA_SERVER_EVENTS[kind]}
    return event


def normalize_session(session: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a beta (flat) session object to the GA nested shape.

    Beta: ``{"modalities", "voice", "input_audio_format", "output_audio_format",
    "turn_detection", "input_audio_transcription", "max_response_output_tokens", "speed"}``.
    GA: ``{"type": "realtime", "output_modalities", "audio": {"input": {...}, "output": {...}}}``.
    """
    beta_keys = {
        "modalities",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "turn_detection",
        "input_audio_transcription",
        "max_response_output_tokens",
        "speed",
    }
    if not beta_keys & session.keys():
        return session
    ga = {k: v for k, v in session.items() if k not in beta_keys}
    ga.setdefault("type", "realtime")
    audio = dict(ga.get("audio") or {})
    audio_in = dict(audio.get("input") or {})
    audio_out = dict(audio.get("output") or {})
    if "modalities" in session:
        # Beta asked for ["text", "audio"] to get audio; GA allows one output modality.
        modalities = session["modalities"] or []
        ga["output_modalities"] = ["audio"] if "audio" in modalities else ["text"]
    if "voice" in session:
        audio_out["voice"] = session["voice"]
    if "speed" in session:
        audio_out["speed"] = session["speed"]
    for key, target in (("input_audio_format", audio_in), ("output_audio_format", audio_out)):
        if key in session:
            target["format"] = _beta_format(session[key])
    if "turn_detection" in session:
        audio_in["turn_detection"] = session["turn_detection"]
    if "input_audio_transcription" in session:
        audio_in["transcription"] = session["input_audio_transcription"]
    if "max_response_output_tokens" in session:
        ga["max_output_tokens"] = session["max_response_output_tokens"]
    if audio_in:
        audio["input"] = audio_in
    if audio_out:
        audio["output"] = audio_out
    if audio:
        ga["audio"] = audio
    return ga


def _beta_format(value: Any) -> dict[str, Any]:
    names = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}
    if isinstance(value, str):
        fmt: dict[str, Any] = {"type": names.get(value, value)}
        if fmt["type"] == "audio/pcm":
            fmt["rate"] = SAMPLE_RATE_HZ
        return fmt
    return value


def normalize_client_event(event: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a beta client event (flat session, beta content types) to GA."""
    kind = event.get("type")
    if kind == "session.update" and isinstance(event.get("session"), dict):
        return {**event, "session": normalize_session(event["session"])}
    if kind == "response.create" and isinstance(event.get("response"), dict):
        response = event["response"]
        if "modalities" in response:
            response = {k: v for k, v in response.items() if k != "modalities"}
            response["output_modalities"] = (
                ["audio"] if "audio" in (event["response"]["modalities"] or []) else ["text"]
            )
            return {**event, "response": response}
    if kind == "conversation.item.create" and isinstance(event.get("item"), dict):
        item = event["item"]
        if item.get("type") == "message" and item.get("role") == "assistant":
            content = [
                {**part, "type": _BETA_CONTENT_TYPES.get(part.get("type"), part.get("type"))}
                if isinstance(part, dict)
                else part
                for part in item.get("content") or []
            ]
            return {**event, "item": {**item, "content": content}}
    return event
