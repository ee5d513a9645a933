"""A stand-in for OpenAI's hosted Realtime endpoint, for tests (the real one is unreachable here).

It checks what the hosted service checks (path ``/v1/realtime``, ``model`` query, ``Authorization:
Bearer`` key), relays the GA protocol to our embedded server for the actual conversation, and
injects the faults the hosted service produces, with its documented error shapes. The hosted
model name means nothing to the embedded server, whose model names its brain: like a hosted
model that reads its instructions, the relay picks the brain from the role in the session's
instructions (``local-caller`` or ``local-cs``).

- ``fail_connects=N``: the first N handshakes get HTTP 503 (transient; the bridge retries).
- ``fault="rate_limit"``: the Nth ``response.create`` gets an ``error`` event
  (``rate_limit_exceeded``) instead of a response.
- ``fault="server_error"``: the Nth ``response.create`` gets a response that fails
  (``response.done`` with ``status: failed`` and a ``server_error``).
- ``fault="session_expired"``: after N client events, an ``error`` event ``session_expired`` and
  the connection closes, as when a session hits its maximum duration.
- ``fault="drop"``: the connection drops (no close frame reason) after N client events.
- ``fault="session_rejected"``: the ``session.update`` is answered with an ``error`` naming its
  ``event_id`` (a voice the service does not have), as the hosted service does; the session
  keeps its defaults.
- ``fault="transcription_failed"``: the Nth input transcription fails
  (``conversation.item.input_audio_transcription.failed``) instead of completing.
- ``fault="incomplete"``: the Nth ``response.done`` ends ``incomplete``
  (``max_output_tokens``), with its output as it was.

Handshakes are checked like a provider would: ``required_headers`` must arrive with these exact
values (HTTP 401 otherwise), and the headers of every handshake are kept in ``headers_seen``.
``fail_status``/``retry_after`` shape the refusals of ``fail_connects`` (503 by default).
Transcriptions report their usage (``transcription_seconds`` per item) as the hosted service
does for duration-billed models. The websockets server logs through a redacting logger, as
a real service would never echo a key into our process's logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from urllib.parse import parse_qs, urlsplit

import websockets
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from dualagent.realtime.local.brains.registry import LOCAL_CALLER_MODEL, LOCAL_CS_MODEL
from dualagent.realtime.local.profile import parse_profile
from dualagent.realtime.redact import RedactingLogger


class FakeOpenAIRealtime:
    def __init__(
        self,
        upstream_url: str,
        *,
        api_key: str = "sk-test-fake-key-0123456789",
        fault: str | None = None,
        fault_after: int = 2,
        fail_connects: int = 0,
        fail_status: int = 503,
        retry_after: str | None = None,
        required_headers: dict[str, str] | None = None,
        transcription_seconds: float | None = 1.5,
    ) -> None:
        self.upstream_url = upstream_url
        self.api_key = api_key
        self.fault = fault
        self.fault_after = fault_after
        self.fail_connects = fail_connects
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.required_headers = required_headers or {}
        self.transcription_seconds = transcription_seconds
        self.headers_seen: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.handshakes = 0
        self.open_connections = 0
        self.transcriptions = 0  # of both connections: the Nth fault happens once per fake
        self.responses_done = 0
        self.models: list[str] = []
        self.client_events: list[dict] = []
        self._server = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    async def __aenter__(self) -> FakeOpenAIRealtime:
        secrets = [self.api_key, *self.required_headers.values()]
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._check,
            max_size=None,
            logger=RedactingLogger(logging.getLogger("tests.fake_openai"), secrets),
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        await self._server.wait_closed()

    def _check(self, connection: ServerConnection, request):
        self.handshakes += 1
        self.headers_seen.append(dict(request.headers.raw_items()))
        self.paths.append(request.path)
        if self.fail_connects > 0:
            self.fail_connects -= 1
            response = connection.respond(self.fail_status, "upstream overloaded\n")
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        parts = urlsplit(request.path)
        if parts.path != "/v1/realtime":
            return connection.respond(404, "not found\n")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return connection.respond(401, "invalid api key\n")
        if any(request.headers.get(k) != v for k, v in self.required_headers.items()):
            return connection.respond(401, "missing or wrong provider header\n")
        query = parse_qs(parts.query)
        model = (query.get("model") or query.get("deployment") or [""])[0]
        if not model:
            return connection.respond(400, "missing model\n")
        self.models.append(model)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        self.open_connections += 1
        try:
            await self._serve(ws)
        finally:
            self.open_connections -= 1

    async def _serve(self, ws: ServerConnection) -> None:
        # Until the session's instructions say otherwise, the agent brain answers.
        async with connect(
            f"{self.upstream_url}?model={LOCAL_CS_MODEL}", max_size=None
        ) as upstream:
            down = asyncio.create_task(self._relay_down(upstream, ws))
            try:
                await self._relay_up(ws, upstream)
            finally:
                down.cancel()
                with contextlib.suppress(BaseException):
                    await down

    async def _relay_down(self, upstream, ws: ServerConnection) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in upstream:
                event = json.loads(message)
                kind = event.get("type")
                if kind == "conversation.item.input_audio_transcription.completed":
                    self.transcriptions += 1
                    if (
                        self.fault == "transcription_failed"
                        and self.transcriptions == self.fault_after
                    ):
                        message = json.dumps(_transcription_failed(event))
                    elif self.transcription_seconds is not None:
                        usage = {"type": "duration", "seconds": self.transcription_seconds}
                        message = json.dumps({**event, "usage": usage})
                elif kind == "response.done":
                    self.responses_done += 1
                    if self.fault == "incomplete" and self.responses_done == self.fault_after:
                        response = {
                            **event["response"],
                            "status": "incomplete",
                            "status_details": {"type": "incomplete", "reason": "max_output_tokens"},
                        }
                        message = json.dumps({**event, "response": response})
                await ws.send(message)

    async def _relay_up(self, ws: ServerConnection, upstream) -> None:
        creates = 0
        count = 0
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in ws:
                event = json.loads(message)
                self.client_events.append(event)
                count += 1
                if event.get("type") == "response.create":
                    creates += 1
                    if self.fault == "rate_limit" and creates == self.fault_after:
                        await ws.send(
                            json.dumps(
                                _error(
                                    "rate_limit_exceeded", "Rate limit reached for requests.", event
                                )
                            )
                        )
                        continue
                    if self.fault == "server_error" and creates == self.fault_after:
                        await self._failed_response(ws)
                        continue
                if self.fault == "session_expired" and count == self.fault_after:
                    await ws.send(
                        json.dumps(
                            _error(
                                "session_expired",
                                "Your session hit the maximum duration of 30 minutes.",
                                None,
                                kind="invalid_request_error",
                            )
                        )
                    )
                    await ws.close(1000, "session expired")
                    return
                if self.fault == "drop" and count == self.fault_after:
                    ws.transport.abort()
                    return
                if self.fault == "session_rejected" and event.get("type") == "session.update":
                    error = _error(
                        "invalid_value",
                        "Invalid value: 'robot'. Supported values are: 'alloy', 'ash', 'coral'.",
                        event,
                    )
                    error["error"]["param"] = "session.audio.output.voice"
                    await ws.send(json.dumps(error))
                    continue
                if event.get("type") == "session.update" and "instructions" in event["session"]:
                    message = json.dumps(_with_local_brain(event))
                await upstream.send(message)

    async def _failed_response(self, ws: ServerConnection) -> None:
        response = {
            "object": "realtime.response",
            "id": "resp_fake_failed",
            "status": "in_progress",
            "output": [],
        }
        await ws.send(
            json.dumps(
                {"type": "response.created", "event_id": "event_fake_1", "response": response}
            )
        )
        failed = {
            **response,
            "status": "failed",
            "status_details": {
                "type": "failed",
                "error": {
                    "type": "server_error",
                    "code": "server_error",
                    "message": "The server had an error while processing your request.",
                },
            },
        }
        await ws.send(
            json.dumps({"type": "response.done", "event_id": "event_fake_2", "response": failed})
        )


def _error(
    code: str, message: str, event: dict | None, kind: str = "invalid_request_error"
) -> dict:
    return {
        "type": "error",
        "event_id": "event_fake_err",
        "error": {
            "type": kind,
            "code": code,
            "message": message,
            "param": None,
            "event_id": (event or {}).get("event_id"),
        },
    }


def _with_local_brain(update: dict) -> dict:
    """``update`` naming the embedded server's brain for the role its instructions describe."""
    role = parse_profile(update["session"]["instructions"] or "").get("role")
    model = LOCAL_CALLER_MODEL if role == "caller" else LOCAL_CS_MODEL
    return {**update, "session": {**update["session"], "model": model}}


def _transcription_failed(completed: dict) -> dict:
    """The ``failed`` event the hosted service sends instead of ``completed``."""
    return {
        "type": "conversation.item.input_audio_transcription.failed",
        "event_id": completed.get("event_id"),
        "item_id": completed.get("item_id"),
        "content_index": completed.get("content_index", 0),
        "error": {
            "type": "transcription_error",
            "code": "audio_unintelligible",
            "message": "The audio could not be transcribed.",
            "param": None,
        },
    }
