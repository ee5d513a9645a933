"""The real service on 127.0.0.1 for tests: uvicorn in-process on the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
import websockets

from dualagent.service.server import uvicorn_config
from dualagent.service.settings import ServiceSettings

STARTUP_TIMEOUT_S = 180.0  # engines load on the first start
CALL_TIMEOUT_S = 300.0


@dataclass
class RunningService:
    settings: ServiceSettings
    server: uvicorn.Server
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def app(self) -> Any:
        return self.server.config.app


@contextlib.asynccontextmanager
async def running_service(
    settings: ServiceSettings, **uvicorn: Any
) -> AsyncIterator[RunningService]:
    """Serve ``create_app(settings)`` on 127.0.0.1 (a free port, whatever ``settings.host``
    says: a public bind is only ever simulated) until the block ends."""
    options = {"log_config": None, **uvicorn}
    server = _Server(uvicorn_config(settings, host="127.0.0.1", port=0, **options))
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(STARTUP_TIMEOUT_S):
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the service stopped during startup")
            await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield RunningService(settings, server, port)
    finally:
        server.should_exit = True
        await task


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # leave pytest's own Ctrl-C handling alone
        yield


async def read_call(websocket: Any, timeout_s: float = CALL_TIMEOUT_S) -> list[dict[str, Any]]:
    """Every event of a call's stream, until the service closes it."""
    events = []
    async with asyncio.timeout(timeout_s):
        with contextlib.suppress(websockets.ConnectionClosedOK):
            async for message in websocket:
                events.append(json.loads(message))
    return events


async def wait_for(predicate: Any, timeout_s: float = CALL_TIMEOUT_S, every_s: float = 0.1) -> Any:
    """Poll ``predicate()`` (sync or async) until it returns something truthy; return it."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = predicate()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            await asyncio.sleep(every_s)
