"""Which transport carries one agent's session, chosen by its endpoint URL's scheme.

The bridge talks to both agents through :class:`Connection`: send a client event (a protocol
model or a dict), iterate server events (dicts, normalised to GA names), close. What is on the
other side differs by scheme:

- ``ws://`` / ``wss://``: a Realtime server over a websocket
  (:class:`~dualagent.realtime.client.RealtimeConnection`; retried when the failure may pass);
- ``memory://``: an embedded server's session in this process, joined without JSON or a
  socket (:mod:`dualagent.realtime.memory`);
- ``twilio+ws://`` / ``twilio+wss://``: a voice bot that speaks the phone-stream (Twilio Media
  Streams) protocol, adapted to Realtime events (:mod:`dualagent.realtime.phone_stream`).

Every transport reports failures the same way, so the bridge needs no case for any of them:
an open that fails raises :class:`~dualagent.realtime.client.RealtimeConnectionError`; the
other side ending the session stops the iteration; a line that drops raises
:class:`ConnectionError` (or the websockets library's ``ConnectionClosed``). A transport whose
other side can end a call by closing (a phone bot hanging up) says so with ``hung_up = True``
before its iteration stops: the call then ends as completed, not as an error.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit

from dualagent.realtime.client import (
    DEFAULT_RETRY,
    RealtimeConnectionError,
    RetryPolicy,
    connect_with_retry,
)
from dualagent.realtime.redact import redact_url

__all__ = ["SCHEMES", "Connection", "open_connection", "transport_name"]


@runtime_checkable
class Connection(Protocol):
    """One agent's session, whatever carries it."""

    url: str

    async def send(self, event: Any) -> dict[str, Any]:
        """Send one client event (a protocol model or a dict); returns the dict sent."""
        ...

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        """Server events as dicts, normalised to GA names, until the session ends."""
        ...

    @property
    def closed(self) -> bool: ...

    async def close(self) -> None:
        """End the session; bounded in time whatever the other side does."""
        ...


Opener = Callable[..., Awaitable[Connection]]


async def _open_websocket(
    url: str, *, headers: Mapping[str, str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> Connection:
    return await connect_with_retry(url, headers=headers, policy=policy)


# scheme -> (transport name shown in recordings, opener or "module:function" imported on use)
SCHEMES: dict[str, tuple[str, Opener | str]] = {
    "ws": ("websocket", _open_websocket),
    "wss": ("websocket", _open_websocket),
    "memory": ("memory", "dualagent.realtime.memory:open_connection"),
    "twilio+ws": ("phone-stream", "dualagent.realtime.phone_stream:open_connection"),
    "twilio+wss": ("phone-stream", "dualagent.realtime.phone_stream:open_connection"),
    "replay": ("replay", "dualagent.realtime.replay:open_connection"),
}


def _scheme(url: str) -> str:
    try:
        return urlsplit(url).scheme
    except ValueError:
        return ""


def transport_name(url: str) -> str:
    """``websocket``, ``memory``, ``phone-stream`` or ``replay`` for a URL; ``unknown``
    otherwise."""
    entry = SCHEMES.get(_scheme(url))
    return entry[0] if entry else "unknown"


async def open_connection(
    url: str, *, headers: Mapping[str, str] | None = None, policy: RetryPolicy = DEFAULT_RETRY
) -> Connection:
    """Open the session at ``url`` with the transport its scheme names."""
    entry = SCHEMES.get(_scheme(url))
    if entry is None:
        choices = ", ".join(f"{scheme}://" for scheme in SCHEMES)
        raise RealtimeConnectionError(
            f"invalid Realtime URL {redact_url(url)!r}: it must start with one of {choices}"
        )
    opener = entry[1]
    if isinstance(opener, str):
        module_name, _, function = opener.partition(":")
        opener = getattr(importlib.import_module(module_name), function)
    return await opener(url, headers=headers, policy=policy)
