"""The events a recording keeps: copies with base64 audio replaced by its size.

The recorder keeps every Realtime event of a call (``session_events.json``); an event's audio
(deltas, appends, audio nested in items) would make that file as large as the audio files, so
it is replaced by ``"<N bytes>"``. Copies, so that nothing changes a recorded event later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

# Event types whose `delta` field is base64 audio (GA name and the older beta name).
AUDIO_DELTA_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})
# Server events of text and numbers only (no audio, no items): many per call, kept uncopied
# when the recorder is handed them (:func:`recorded_event`'s ``owned``).
FLAT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.output_text.done",
        "response.output_audio_transcript.delta",
        "response.output_audio_transcript.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "rate_limits.updated",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
    }
)


def b64_size(payload: Any) -> str:
    """Describe a base64 payload as ``"<N bytes>"`` without decoding it."""
    if isinstance(payload, str):
        n = len(payload)
        padding = 2 if payload.endswith("==") else 1 if payload.endswith("=") else 0
        return f"<{max(n * 3 // 4 - padding, 0)} bytes>"
    if isinstance(payload, bytes | bytearray | memoryview):
        return f"<{len(payload)} bytes>"
    return f"<{type(payload).__name__}>"


def _json_copy(value: Any) -> Any:
    """Copy JSON-like data (dicts/lists of scalars), scrubbing nested base64 ``audio`` strings.

    It catches audio embedded deeper in an event (e.g. ``conversation.item.create`` with
    ``input_audio`` content). Most events have none: they are copied by a round trip through
    orjson (C), several times cheaper than walking them in Python.
    """
    try:
        raw = orjson.dumps(value)
    except TypeError:  # not plain JSON data (a stray object): walk it
        return _scrubbed_copy(value)
    if b'"audio":"' in raw:
        return _scrubbed_copy(value)
    return orjson.loads(raw)


def _scrubbed_copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: b64_size(v) if k == "audio" and isinstance(v, str) else _scrubbed_copy(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrubbed_copy(v) for v in value]
    return value


def scrub_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a Realtime event with base64 audio payloads replaced by their size.

    Hot path (one call per audio chunk): audio events get a shallow copy with the payload
    swapped out; only other (small) events are copied recursively.
    """
    etype = event.get("type")
    if etype == "input_audio_buffer.append" and "audio" in event:
        out = dict(event)
        out["audio"] = b64_size(out["audio"])
        return out
    if etype in AUDIO_DELTA_TYPES and "delta" in event:
        out = dict(event)
        out["delta"] = b64_size(out["delta"])
        return out
    return _json_copy(event)


def recorded_event(event: Mapping[str, Any], *, owned: bool = False) -> Any:
    """What the recording keeps of ``event``: a scrubbed copy, or, when the caller hands the
    event over (``owned``: it will not change it) and it carries neither audio nor items,
    the event itself."""
    if owned and event.get("type") in FLAT_EVENTS:
        return event
    return scrub_event(event)
