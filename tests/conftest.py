"""Shared fixtures: a real embedded Realtime server on 127.0.0.1, started once per test session."""

from __future__ import annotations

import os

# The suite is hermetic: a developer's own settings (a real OpenAI key, a judge switched on,
# natural TTS variation that breaks "same seed, same call") must not leak into it. Cleared
# before dualagent is imported, since some are read at import time.
for _name in [n for n in os.environ if n.startswith("DUALAGENT_") or n == "OPENAI_API_KEY"]:
    del os.environ[_name]

import pytest_asyncio  # noqa: E402

from dualagent.realtime.local.server import LocalRealtimeServer  # noqa: E402


@pytest_asyncio.fixture(scope="session")
async def local_server():
    """A running LocalRealtimeServer (engines warm), shared by all tests."""
    async with LocalRealtimeServer() as server:
        yield server
