"""Shared fixtures: a real embedded Realtime server on 127.0.0.1, started once per test session."""

from __future__ import annotations

import pytest_asyncio

from dualagent.realtime.local.server import LocalRealtimeServer


@pytest_asyncio.fixture(scope="session")
async def local_server():
    """A running LocalRealtimeServer (engines warm), shared by all tests."""
    async with LocalRealtimeServer() as server:
        yield server
