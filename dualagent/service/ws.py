"""The websocket routes: ``/agent-conversation`` starts a call and streams it; ``/conversations/
{id}/live`` watches a running one.

Refusals are a JSON ``error`` event, then a close: 1008 for a bad parameter (the event names
the parameter and its valid values; the close reason holds as much as fits in 123 bytes), 1013
when the service is at capacity. A client may send ``{"type": "end_call"}`` to end its call
(finalised as interrupted); anything else it sends is answered with an ``error`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, WebSocket

from dualagent.call.recording import validate_conversation_id
from dualagent.errors import InputError
from dualagent.service.calls import (
    CallManager,
    CapacityError,
    ParameterError,
    ended_info,
    parse_call_parameters,
)
from dualagent.service.live import LiveCall, Subscriber

log = logging.getLogger(__name__)

router = APIRouter()

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # bad parameters
CLOSE_TRY_AGAIN_LATER = 1013  # at capacity
MAX_CLOSE_REASON_BYTES = 123  # what a websocket close frame can carry

_VALID = re.compile(r"valid(?: values| parameters| choices)?: (.+)$")
_CLIENT_LEFT = {"type": "_client_left"}  # the receiver's note to the sender


def close_reason(info: dict[str, Any]) -> str:
    """The refusal as JSON in at most 123 bytes (a close frame's limit): the error, the
    parameter and the valid values, shortened with ``...`` when they do not fit."""
    short = {k: v for k, v in info.items() if k != "message"}
    if "valid" not in short and "message" in info:
        short["message"] = info["message"]
    key = "valid" if "valid" in short else "message"
    text = json.dumps(short, separators=(",", ":"))
    value = str(short.get(key, ""))
    while value and len(text.encode()) > MAX_CLOSE_REASON_BYTES:
        value = value[:-4]
        text = json.dumps({**short, key: value + "..."}, separators=(",", ":"))
    return text[:MAX_CLOSE_REASON_BYTES]


def _parameter_refusal(exc: ParameterError) -> dict[str, Any]:
    info: dict[str, Any] = {"error": "invalid_parameter", "parameter": exc.parameter}
    valid = _VALID.search(str(exc))
    if valid:
        info["valid"] = valid.group(1).strip()
    return {**info, "message": str(exc)}


async def refuse(websocket: WebSocket, code: int, info: dict[str, Any]) -> None:
    with contextlib.suppress(Exception):  # the client may be gone already
        await websocket.send_json({"type": "error", **info})
        await websocket.close(code=code, reason=close_reason(info))


def _manager(websocket: WebSocket) -> CallManager:
    return websocket.app.state.manager


@router.websocket("/agent-conversation")
async def agent_conversation(websocket: WebSocket) -> None:
    """Start a call (query parameters: CallOptions fields, audio, detach) and stream its events."""
    manager = _manager(websocket)
    await websocket.accept()
    try:
        options, flags = parse_call_parameters(
            websocket.query_params.multi_items(), manager.settings.output_dir
        )
        live = await manager.start(options, detach=flags["detach"])
    except ParameterError as exc:
        await refuse(websocket, CLOSE_POLICY, _parameter_refusal(exc))
        return
    except InputError as exc:  # found while planning (e.g. an intent, an existing id)
        await refuse(websocket, CLOSE_POLICY, {"error": "invalid_parameter", "message": str(exc)})
        return
    except CapacityError as exc:
        info = {"error": "capacity", "active": exc.active, "max": exc.maximum}
        await refuse(websocket, CLOSE_TRY_AGAIN_LATER, {**info, "message": str(exc)})
        return
    await stream(websocket, live, manager, audio=flags["audio"], owner=True)


@router.websocket("/conversations/{conversation_id}/live")
async def watch_conversation(websocket: WebSocket, conversation_id: str) -> None:
    """Watch a running call (its events so far, then live); a finished one sends ``call.ended``."""
    manager = _manager(websocket)
    await websocket.accept()
    params = dict(websocket.query_params)
    unknown = sorted(set(params) - {"audio", "token"})
    if unknown:
        info = {
            "error": "invalid_parameter",
            "parameter": unknown[0],
            "message": f"unknown parameter {unknown[0]!r}; valid parameters: audio, token",
        }
        await refuse(websocket, CLOSE_POLICY, info)
        return
    try:
        validate_conversation_id(conversation_id)
    except ValueError as exc:
        info = {"error": "invalid_parameter", "parameter": "conversation_id", "message": str(exc)}
        await refuse(websocket, CLOSE_POLICY, info)
        return
    live = manager.calls.get(conversation_id)
    if live is not None:
        audio = params.get("audio", "0") in ("1", "true")
        await stream(websocket, live, manager, audio=audio, owner=False)
        return
    folder = manager.settings.output_dir / conversation_id
    if not folder.is_dir():
        info = {"error": "not_found", "message": f"no conversation {conversation_id!r}"}
        await refuse(websocket, CLOSE_POLICY, info)
        return
    ended = await asyncio.to_thread(ended_info, folder, conversation_id)
    with contextlib.suppress(Exception):
        await websocket.send_json(
            {"type": "call.ended", "conversation_id": conversation_id, **ended}
        )
        await websocket.close(code=CLOSE_NORMAL)


async def stream(
    websocket: WebSocket, live: LiveCall, manager: CallManager, *, audio: bool, owner: bool
) -> None:
    """Send the call's events until it ends. If the owner leaves first, the call is stopped
    (unless detached); a watcher leaving changes nothing."""
    subscriber = live.subscribe(audio=audio)
    receiver = asyncio.create_task(_receive(websocket, live, manager, subscriber))
    left = False
    try:
        while True:
            event = await subscriber.queue.get()
            if event is None:
                break
            if event is _CLIENT_LEFT:
                left = True
                break
            try:
                await websocket.send_json(event)
            except Exception:  # the client is gone (its close is still on the way)
                left = True
                break
    finally:
        live.unsubscribe(subscriber)
        receiver.cancel()
        with contextlib.suppress(BaseException):
            await receiver
    if left:
        if owner and not live.detached:
            await manager.stop(live, "client_left")
        return
    with contextlib.suppress(Exception):
        await websocket.close(code=CLOSE_NORMAL)


async def _receive(
    websocket: WebSocket, live: LiveCall, manager: CallManager, subscriber: Subscriber
) -> None:
    """Read what the client sends until it leaves; ``end_call`` ends the call."""
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            request = _json(message.get("text"))
            if request.get("type") == "end_call":
                manager.stop_soon(live, "client_request")
            else:
                subscriber.queue.put_nowait(
                    {
                        "type": "error",
                        "conversation_id": live.conversation_id,
                        "error": "invalid_message",
                        "message": 'valid messages: {"type": "end_call"}',
                    }
                )
    except Exception:  # a broken connection is a client that left
        pass
    subscriber.queue.put_nowait(_CLIENT_LEFT)


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
