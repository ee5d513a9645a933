"""The errors the embedded server sends for client events it refuses, as the hosted service words them.

Clients match on the ``code`` (and some on the message: LiveKit ignores an error whose message
starts with "Cancellation failed"), so codes and messages follow the hosted GA service wherever
it is known. Each function returns a :class:`~dualagent.realtime.protocol.ProtocolError`; the
session adds the ``event_id`` of the client event that caused it.
"""

from __future__ import annotations

from dualagent.realtime.protocol import ProtocolError


def commit_empty(buffer_ms: float) -> ProtocolError:
    return ProtocolError(
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        f"audio, but buffer only has {buffer_ms:.2f}ms of audio.",
        code="input_audio_buffer_commit_empty",
    )


def active_response(response_id: str) -> ProtocolError:
    return ProtocolError(
        f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one.",
        code="conversation_already_has_active_response",
    )


def cancel_not_active() -> ProtocolError:
    return ProtocolError(
        "Cancellation failed: no active response found.", code="response_cancel_not_active"
    )


def duplicate_item(item_id: str) -> ProtocolError:
    return ProtocolError(
        f"Error adding item: an item with id '{item_id}' already exists.",
        code="item_create_duplicate_item_id",
    )


def unknown_previous_item(item_id: str) -> ProtocolError:
    return ProtocolError(
        f"Error adding item: the previous item with id '{item_id}' does not exist.",
        code="item_create_invalid_previous_item_id",
        param="previous_item_id",
    )


def unknown_item(verb: str, item_id: str) -> ProtocolError:
    """``verb`` is ``truncate`` or ``delete`` (codes ``item_<verb>_invalid_item_id``)."""
    gerund = {"truncate": "truncating", "delete": "deleting"}[verb]
    return ProtocolError(
        f"Error {gerund} item: the item with id '{item_id}' does not exist.",
        code=f"item_{verb}_invalid_item_id",
        param="item_id",
    )


def not_truncatable(item_id: str) -> ProtocolError:
    return ProtocolError(
        f"Only assistant messages with audio can be truncated; item '{item_id}' is not one.",
        code="invalid_value",
        param="item_id",
    )


def truncate_beyond_audio(audio_end_ms: int, total_ms: int) -> ProtocolError:
    return ProtocolError(
        f"audio_end_ms {audio_end_ms} is beyond the item's audio ({total_ms} ms).",
        code="invalid_value",
        param="audio_end_ms",
    )


def input_audio_item() -> ProtocolError:
    return ProtocolError(
        "input_audio items are not supported; append to the input buffer instead",
        code="unsupported_content",
        param="item.content",
    )


def invalid_value(message: str, param: str) -> ProtocolError:
    return ProtocolError(message, code="invalid_value", param=param)
