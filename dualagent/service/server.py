"""Running the app on uvicorn: the limits that live in the server (websocket message size)."""

from __future__ import annotations

from typing import Any

import uvicorn

from dualagent.service.app import create_app
from dualagent.service.settings import ServiceSettings


def uvicorn_config(
    settings: ServiceSettings,
    *,
    host: str | None = None,
    port: int | None = None,
    **overrides: Any,
) -> uvicorn.Config:
    """A uvicorn config serving ``create_app(settings)`` on ``host``/``port`` (default: the
    settings'). Inbound websocket messages over ``max_message_bytes`` close the connection
    (1009)."""
    options: dict[str, Any] = {
        "host": host or settings.host,
        "port": settings.port if port is None else port,
        "ws_max_size": settings.max_message_bytes,
        "h11_max_incomplete_event_size": settings.max_message_bytes,
        "lifespan": "on",
        "server_header": False,
        "log_level": "info",
        **overrides,
    }
    return uvicorn.Config(create_app(settings), **options)


async def serve(settings: ServiceSettings) -> None:
    """Serve until cancelled or interrupted (Ctrl-C); running calls are finalised first."""
    server = uvicorn.Server(uvicorn_config(settings))
    await server.serve()
