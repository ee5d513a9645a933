"""Shared fixtures: a real embedded Realtime server on 127.0.0.1, started once per test session."""

from __future__ import annotations

import os

# The suite is hermetic: a developer's own settings (a real OpenAI key, a judge switched on,
# natural TTS variation that breaks "same seed, same call") must not leak into it. Cleared
# before dualagent is imported, since some are read at import time.
_KEPT = ("DUALAGENT_ARTIFACTS",)  # where tests may leave screenshots for CI: not a setting
for _name in [
    n
    for n in os.environ
    if (n.startswith("DUALAGENT_") and n not in _KEPT) or n == "OPENAI_API_KEY"
]:
    del os.environ[_name]

import asyncio  # noqa: E402
import gc  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import psutil  # noqa: E402
import pytest  # noqa: E402
import pytest_asyncio  # noqa: E402

from dualagent.realtime.local.server import LocalRealtimeServer  # noqa: E402


@pytest_asyncio.fixture(scope="session")
async def local_server():
    """A running LocalRealtimeServer (engines warm), shared by all tests."""
    async with LocalRealtimeServer() as server:
        yield server


# ------------------------------------------------------------------------------ leak check
# No test may leave tasks, threads, child processes or open files behind (issue 17). What lives
# as long as the process on purpose is allowed: the engine thread pool, the recognition worker
# processes, asyncio's default executor, Dask's offload thread and multiprocessing's resource
# tracker, matplotlib's open fonts, and whatever a wider-scoped fixture holds (it is set up
# before a test's snapshot is taken). Stragglers get a grace period, not a stopwatch.

LEAK_GRACE_S = 20.0
ALLOWED_THREADS = ("dualagent-engine", "asyncio_", "MainThread", "Dask-Offload")
ALLOWED_PROCESSES = ("asr_worker.py", "multiprocessing.resource_tracker")
ALLOWED_FILES = (
    ".onnxruntime",  # ONNX Runtime's own telemetry database
    "mpl-data/fonts",  # matplotlib keeps the fonts it has drawn with open (its font cache)
)


def _leak_snapshot() -> dict[str, set[Any]]:
    process = psutil.Process()
    threads = {
        (t.ident, t.name) for t in threading.enumerate() if not t.name.startswith(ALLOWED_THREADS)
    }
    children = set()
    for child in process.children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if any(a in part for part in child.cmdline() for a in ALLOWED_PROCESSES):
                continue  # the recognition workers live as long as the engines, and so on
            children.add((child.pid, " ".join(child.cmdline())[:120]))
        except psutil.Error:  # it ended while we looked
            continue
    files = {f.path for f in process.open_files() if not any(a in f.path for a in ALLOWED_FILES)}
    try:
        tasks = {t for t in asyncio.all_tasks() if not t.done()}
        tasks.discard(asyncio.current_task())
    except RuntimeError:  # no running loop
        tasks = set()
    return {"threads": threads, "processes": children, "files": files, "tasks": tasks}


def _leaked(before: dict[str, set[Any]], after: dict[str, set[Any]]) -> dict[str, list[str]]:
    out = {}
    for kind, now in after.items():
        new = now - before[kind]
        if kind == "tasks":
            new = {t for t in new if not t.done()}
            shown = sorted(f"{t.get_name()}: {t.get_coro()!r}"[:160] for t in new)
        else:
            shown = sorted(str(x) for x in new)
        if shown:
            out[kind] = shown
    return out


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def no_leaks(request):
    """Fail a test that leaves tasks, threads, child processes or open files behind."""
    if request.node.get_closest_marker("leaks_ok"):
        yield
        return
    before = _leak_snapshot()
    yield
    deadline = time.monotonic() + LEAK_GRACE_S
    leaked = _leaked(before, _leak_snapshot())
    while leaked and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # let closing things finish: tasks run, processes exit
        gc.collect()
        leaked = _leaked(before, _leak_snapshot())
    if leaked:
        pytest.fail(f"the test left behind (tests/conftest.py leak check): {leaked}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "leaks_ok: the test may leave resources behind on purpose (say why)"
    )
