"""``RealtimeConnection``: a Realtime websocket client (OpenAI, any compatible URL, or local).

Thin on purpose: connect, send typed or dict events, iterate normalised (GA) server events
(dicts, as received) or read them typed with :meth:`RealtimeConnection.recv_event`, close. Errors at connect time are turned into :class:`RealtimeConnectionError` with a message
that says which URL failed and why; API keys never appear in messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect

from dualagent.realtime.protocol import normalize_server_event
from dualagent.realtime.server_events import ServerEvent, parse_server_event

CLOSE_TIMEOUT_S = 2.0
"""How long :meth:`RealtimeConnection.close` waits for the server's closing handshake."""


class RealtimeConnectionError(ConnectionError):
    """The Realtime server could not be reached or refused the connection.

    ``transient`` says whether trying again later may help (refused port, timeout, HTTP 429 or
    5xx) or not (bad URL, HTTP 401/403/404).
    """

    def __init__(self, message: str, *, transient: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status


def redact_url(url: str) -> str:
    """The URL without its query string (which may carry credentials)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class RealtimeConnection:
    """One Realtime websocket session."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self._ws = ws
        self.url = url
        self._closing = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        open_timeout_s: float = 10.0,
    ) -> RealtimeConnection:
        """Open a session at ``url`` (``ws://`` or ``wss://``)."""
        scheme = urlsplit(url).scheme
        if scheme not in ("ws", "wss"):
            raise RealtimeConnectionError(
                f"invalid Realtime URL {redact_url(url)!r}: it must start with ws:// or wss://"
            )
        try:
            ws = await connect(
                url,
                additional_headers=dict(headers or {}),
                open_timeout=open_timeout_s,
                max_size=None,
                compression=None,
                close_timeout=CLOSE_TIMEOUT_S,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            hint = {401: " (check the API key)", 403: " (no access)", 404: " (wrong URL or model)"}
            raise RealtimeConnectionError(
                f"Realtime server at {redact_url(url)} refused the connection: HTTP {status}"
                + hint.get(status, ""),
                transient=status == 429 or status >= 500,
                status=status,
            ) from None
        except (TimeoutError, OSError, websockets.InvalidURI, websockets.InvalidHandshake) as exc:
            reason = (
                exc.strerror
                if isinstance(exc, OSError) and exc.strerror
                else str(exc) or type(exc).__name__
            )
            raise RealtimeConnectionError(
                f"cannot connect to Realtime server at {redact_url(url)}: {reason}",
                transient=isinstance(exc, (OSError, TimeoutError)),
            ) from None
        return cls(ws, url)

    async def send(self, event: Any) -> dict[str, Any]:
        """Send one client event (a protocol model or a dict); returns the dict sent."""
        data = event.dump() if hasattr(event, "dump") else dict(event)
        await self._ws.send(json.dumps(data))
        return data

    async def recv(self) -> dict[str, Any]:
        """The next server event, normalised to GA names."""
        return normalize_server_event(json.loads(await self._receive()))

    async def recv_event(self) -> ServerEvent:
        """The next server event as a typed model (see :func:`parse_server_event`)."""
        return parse_server_event(json.loads(await self._receive()))

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        while not self._closing:  # events after close() are not delivered
            try:
                message = await self._receive()
            except websockets.ConnectionClosedOK:
                return
            yield normalize_server_event(json.loads(message))

    async def _receive(self) -> str | bytes:
        if self._closing:  # close() is discarding events: wait, then raise ConnectionClosed
            await self._ws.wait_closed()
        return await self._ws.recv()

    @property
    def closed(self) -> bool:
        return self._ws.close_code is not None

    async def close(self) -> None:
        """Close the session; returns within :data:`CLOSE_TIMEOUT_S` whatever the server does.

        While closing, events nobody reads any more are discarded: once the receive queue is
        full the socket stops being read, and the server's answer to our close frame would
        never arrive. A cancelled close drops the TCP connection rather than leave it open.
        """
        self._closing = True
        drain = asyncio.create_task(self._discard_incoming())
        try:
            await self._ws.close()
        except asyncio.CancelledError:
            self._ws.transport.abort()
            raise
        finally:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain

    async def _discard_incoming(self) -> None:
        while True:
            try:
                await self._ws.recv()
            except websockets.ConcurrencyError:  # a recv() begun before close() still waits
                await asyncio.sleep(0.005)
            except Exception:  # closed (or broken): nothing more to discard
                return

    async def __aenter__(self) -> RealtimeConnection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
