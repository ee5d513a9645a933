"""``memory://``: a session of an embedded server in this process, joined without a socket.

The bridge's core and the local session's core are both without I/O, so nothing but a pair of
queues needs to sit between them. A :class:`MemoryConnection` hands client events (dicts) to
the server's :class:`~dualagent.realtime.local.server.SessionDriver` (the same driver, session
core, engines and brains as a websocket connection) and iterates the server events it
delivers: the same events, as dicts of JSON types, without JSON encoding, websocket framing or
a socket in between. Audio stays base64 in the events (the call core and the recording read it
so), which costs little next to the rest.

URLs: ``memory://NAME/v1/realtime?model=MODEL``, where ``NAME`` is the
:attr:`~dualagent.realtime.local.server.LocalRealtimeServer.memory_name` of a server started in
this process (its :attr:`~dualagent.realtime.local.server.LocalRealtimeServer.memory_url`).

Failures look as on a websocket: no such server raises
:class:`~dualagent.realtime.client.RealtimeConnectionError`; the server ending the session
normally stops the iteration; a dropped line (an injected ``drop`` or ``close`` fault) raises
:class:`ConnectionError`; a malformed message (injected) raises :class:`json.JSONDecodeError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dualagent.realtime.client import DEFAULT_RETRY, RealtimeConnectionError, RetryPolicy
from dualagent.realtime.local.brains.registry import LOCAL_CS_MODEL
from dualagent.realtime.local.server import REALTIME_PATH, RUNNING, SessionDriver
from dualagent.realtime.protocol import normalize_server_event
from dualagent.realtime.redact import redact_url

__all__ = ["CLOSE_TIMEOUT_S", "MemoryConnection", "open_connection"]

CLOSE_TIMEOUT_S = 2.0
"""How long :meth:`MemoryConnection.close` waits for the session's work to stop."""

NORMAL_CLOSE_CODES = (1000, 1001)  # as websockets' ConnectionClosedOK


class _End:
    """The session ended: normally (iteration stops) or not (:class:`ConnectionError`)."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason  # None: a normal end


class _Transport:
    def __init__(self, line: _MemoryLine) -> None:
        self._line = line

    def abort(self) -> None:
        self._line.end("the memory line was dropped")


class _MemoryLine:
    """The server's side of one in-memory session: its outlet, and the stand-in for a
    websocket that injected faults act on (``send`` a raw message, ``close``, ``abort``)."""

    def __init__(self) -> None:
        self.to_client: asyncio.Queue[dict[str, Any] | str | _End] = asyncio.Queue()
        self.to_server: asyncio.Queue[dict[str, Any] | _End] = asyncio.Queue()
        self.ended = False
        self.transport = _Transport(self)
        self.line = self  # the Outlet protocol: what faults act on

    async def deliver(self, event: dict[str, Any]) -> None:
        if not self.ended:
            self.to_client.put_nowait(event)

    async def send(self, message: str | bytes) -> None:
        """A raw message (injected faults only): the client parses it as JSON."""
        if not self.ended:
            self.to_client.put_nowait(message if isinstance(message, str) else message.decode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        normal = code in NORMAL_CLOSE_CODES
        self.end(None if normal else f"session closed by the server: code {code} ({reason})")

    def end(self, reason: str | None) -> None:
        """End the session both ways (``reason``: why the line dropped; None: a normal end)."""
        if self.ended:
            return
        self.ended = True
        self.to_client.put_nowait(_End(reason))
        self.to_server.put_nowait(_End())

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """Client events for the server, until the session ends."""
        while not isinstance(message := await self.to_server.get(), _End):
            yield message


class MemoryConnection:
    """One session of an in-process embedded server (see the module's docstring)."""

    def __init__(self, url: str, line: _MemoryLine, driver: SessionDriver) -> None:
        self.url = url
        self._line = line
        self.driver = driver
        self._server_task: asyncio.Task[None] | None = None
        self._closing = False

    async def send(self, event: Any) -> dict[str, Any]:
        """Send one client event (a protocol model or a dict); returns the dict sent.

        Raises :class:`ConnectionError` once the session has ended (as a closed websocket
        raises ``ConnectionClosed``)."""
        if self._line.ended:
            raise ConnectionError(f"memory session {redact_url(self.url)} is closed")
        data = event.dump() if hasattr(event, "dump") else dict(event)
        self._line.to_server.put_nowait(data)
        return data

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        queue = self._line.to_client
        while not self._closing:  # events after close() are not delivered
            message = await queue.get()
            if isinstance(message, _End):
                queue.put_nowait(message)  # a second reader ends too
                if message.reason is not None:
                    raise ConnectionError(message.reason)
                return
            if isinstance(message, str):  # an injected raw message: JSON, or malformed
                message = json.loads(message)
            yield normalize_server_event(message)

    @property
    def closed(self) -> bool:
        return self._line.ended

    async def close(self) -> None:
        """End the session; its running work (transcriptions, a response) is stopped, within
        :data:`CLOSE_TIMEOUT_S`."""
        self._closing = True
        self._line.end(None)
        task = self._server_task
        if task is None or task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_S)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        except asyncio.CancelledError:
            task.cancel()
            raise


async def open_connection(
    url: str, *, headers: Mapping[str, str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> MemoryConnection:
    """Open a session at ``memory://NAME/v1/realtime?model=MODEL`` (``headers`` and ``policy``
    are accepted for the transport interface; nothing here is worth retrying)."""
    del headers, policy
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise RealtimeConnectionError(f"invalid Realtime URL {shown!r}") from None
    path = parts.path.rstrip("/")
    if parts.scheme != "memory" or path not in (REALTIME_PATH, "/realtime", ""):
        raise RealtimeConnectionError(
            f"invalid memory URL {shown!r}: expected memory://NAME{REALTIME_PATH}?model=MODEL"
        )
    server = RUNNING.get(parts.hostname or "")
    if server is None:
        running = ", ".join(sorted(RUNNING)) or "none"
        raise RealtimeConnectionError(
            f"no embedded server {parts.hostname!r} is running in this process (running: "
            f"{running}); memory:// reaches only a LocalRealtimeServer started here"
        )
    model = (parse_qs(parts.query).get("model") or [LOCAL_CS_MODEL])[0]
    line = _MemoryLine()
    driver = server.open_session(model, line)
    connection = MemoryConnection(url, line, driver)
    connection._server_task = asyncio.create_task(
        server.serve_session(driver, line.messages()), name=f"memory-{driver.session.session_id}"
    )
    return connection
