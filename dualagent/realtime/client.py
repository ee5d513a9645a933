"""``RealtimeConnection``: a Realtime websocket client (OpenAI, any compatible URL, or local).

Thin on purpose: connect, send typed or dict events, iterate normalised (GA) server events
(dicts, as received) or read them typed with :meth:`RealtimeConnection.recv_event`, close.
Errors at connect time are turned into :class:`RealtimeConnectionError` with a message that
says which URL failed and why. Credentials never appear in a message or a log record: URLs
are shown through :func:`~dualagent.realtime.redact.redact_url`, and the websockets library
(which logs the request line and every header at DEBUG) logs through a
:class:`~dualagent.realtime.redact.RedactingLogger`.

:func:`connect_with_retry` retries transient failures with jittered exponential backoff and
waits at least what a ``Retry-After`` header asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import websockets
from websockets.asyncio.client import ClientConnection, connect

from dualagent.realtime.protocol import normalize_server_event
from dualagent.realtime.redact import RedactingLogger, redact_url, secret_values
from dualagent.realtime.server_events import ServerEvent, parse_server_event

__all__ = [
    "RealtimeConnection",
    "RealtimeConnectionError",
    "RetryPolicy",
    "connect_with_retry",
    "redact_url",
]

CLOSE_TIMEOUT_S = 2.0
"""How long :meth:`RealtimeConnection.close` waits for the server's closing handshake."""

WIRE_LOGGER = logging.getLogger("dualagent.realtime.wire")
"""Where the websockets library's records for our connections go (always redacted)."""


class RealtimeConnectionError(ConnectionError):
    """The Realtime server could not be reached or refused the connection.

    ``transient`` says whether trying again later may help (refused port, timeout, HTTP 408,
    429 or 5xx) or not (bad URL, HTTP 401/403/404). ``retry_after_s``: the server's
    ``Retry-After``, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.retry_after_s = retry_after_s


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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
        """Open a session at ``url`` (``ws://`` or ``wss://``) sending ``headers``."""
        shown = redact_url(url)
        try:
            scheme = urlsplit(url).scheme
        except ValueError:
            scheme = ""
        if scheme not in ("ws", "wss"):
            raise RealtimeConnectionError(
                f"invalid Realtime URL {shown!r}: it must start with ws:// or wss://"
            )
        logger = RedactingLogger(WIRE_LOGGER, secret_values(url, headers))
        failure: RealtimeConnectionError | None = None
        try:
            ws = await connect(
                url,
                additional_headers=dict(headers or {}),
                open_timeout=open_timeout_s,
                max_size=None,
                compression=None,
                close_timeout=CLOSE_TIMEOUT_S,
                logger=logger,
            )
        except websockets.InvalidStatus as exc:
            status = exc.response.status_code
            hint = {401: " (check the API key)", 403: " (no access)", 404: " (wrong URL or model)"}
            failure = RealtimeConnectionError(
                f"Realtime server at {shown} refused the connection: HTTP {status}"
                + hint.get(status, ""),
                transient=status in (408, 429) or status >= 500,
                status=status,
                retry_after_s=parse_retry_after(exc.response.headers.get("Retry-After")),
            )
        except websockets.InvalidURI:
            failure = RealtimeConnectionError(f"invalid Realtime URL {shown!r}")
        except (TimeoutError, OSError, websockets.InvalidHandshake, ValueError) as exc:
            if isinstance(exc, OSError) and exc.strerror:
                reason = exc.strerror
            elif isinstance(exc, ValueError):  # its message may quote the URL
                reason = type(exc).__name__
            else:
                reason = logger.redact(str(exc)) or type(exc).__name__
            failure = RealtimeConnectionError(
                f"cannot connect to Realtime server at {shown}: {reason}",
                transient=isinstance(exc, (OSError, TimeoutError)),
            )
        if failure is not None:  # raised here, so no traceback chains to the library's error
            raise failure
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


# ------------------------------------------------------------------------------ retries


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to connect again after a transient failure.

    Delays grow exponentially with full jitter (uniform between 0 and ``base_delay_s * 2**n``,
    capped at ``max_delay_s``), so calls that failed together do not come back together; a
    ``Retry-After`` answer is waited for at least (up to ``max_retry_after_s``).
    """

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 60.0

    def delay_s(self, retry: int, error: RealtimeConnectionError, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first) after ``error``."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2**retry)
        delay = rng.uniform(0.0, ceiling)
        if error.retry_after_s is not None:
            delay = max(delay, min(error.retry_after_s, self.max_retry_after_s))
        return delay


DEFAULT_RETRY = RetryPolicy()


async def connect_with_retry(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    policy: RetryPolicy = DEFAULT_RETRY,
    rng: random.Random | None = None,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> RealtimeConnection:
    """Connect, retrying transient failures (refused, timeouts, HTTP 408/429/5xx).

    Authentication and not-found answers are final: retrying them cannot help. ``rng`` and
    ``sleep`` are injectable, so tests check the delays without waiting for them.
    """
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            return await RealtimeConnection.connect(url, headers=headers)
        except RealtimeConnectionError as exc:
            if not exc.transient or attempt == policy.attempts - 1:
                raise
            await sleep(policy.delay_s(attempt, exc, rng))
    raise AssertionError("unreachable")
