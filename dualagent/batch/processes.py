"""Calls of a batch in worker processes on this machine (``BatchConfig.processes``).

A text-route call on the embedded backend is pure Python from end to end (both sessions, the
bridge, the brains, the recording), so in one process every call shares one core: more calls at
a time only interleave on the same interpreter. Worker processes, each with its own embedded
backend and event loop kept from call to call, put the other cores to work.

A worker is ``python -m dualagent.batch.worker``: it imports nothing of the program that started
the batch (a script without a ``__main__`` guard, a notebook), runs one call at a time and
writes its recording straight into the batch folder. The batch's own process keeps the
manifest, the progress bar and the retries, exactly as for calls in this process
(:func:`dualagent.batch.runner._run_calls`). Workers ignore Ctrl-C and SIGTERM: the batch's process
decides. Interrupted, it hands out no more calls, lets the running ones finish (their
recordings complete) and marks the rest interrupted.

Protocol on the worker's stdin/stdout, one request at a time: a 4-byte big-endian length, then
a pickle: the ``simulate()`` keyword arguments in, the call's figures out (:func:`run_call_here`).
End of input ends the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import struct
import sys
import threading
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from dualagent.batch.config import BatchConfig
from dualagent.batch.manifest import error_figures, recorded_figures
from dualagent.batch.plan import CallSpec, call_kwargs

# Below this many calls a text batch stays in this process: starting a worker (a new
# interpreter importing dualagent) costs about as much as a few dozen text calls.
AUTO_MIN_CALLS = 64
_HEADER = struct.Struct(">I")
_here = threading.local()  # this thread's event loop and embedded server, kept between calls


class WorkerDiedError(RuntimeError):
    """A batch worker process ended in the middle of a call."""


def auto_processes(config: BatchConfig, calls: int) -> int:
    """Worker processes for a batch whose config leaves ``processes`` unset: one per core for
    a fast text batch of :data:`AUTO_MIN_CALLS` calls or more, else 1 (this process)."""
    cores = os.cpu_count() or 1
    fast_text = config.route == "text" and config.pace in (None, "fast")
    if not fast_text or calls < AUTO_MIN_CALLS or cores < 2:
        return 1
    return min(cores, config.parallel or cores)


def runs_elsewhere(kwargs: dict[str, Any]) -> bool:
    """Whether a worker process can rebuild these call options: not when they name objects of
    the running script or notebook (``__main__``, e.g. a tool ``python: __main__:lookup``),
    which a worker does not import."""
    try:
        return b"__main__" not in pickle.dumps(kwargs, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # not picklable at all
        return False


def run_call_here(kwargs: dict[str, Any]) -> dict[str, Any]:
    """One call on this thread's own embedded backend (started once, kept); its figures.

    The recording goes to ``kwargs["output_dir"]``. A failing call is returned as its error
    figures (with a short traceback), never raised. Used by batch workers and Dask tasks.
    """
    from dualagent.call.simulate import simulate

    call_dir = Path(kwargs["output_dir"]) / kwargs["conversation_id"]
    try:
        loop, server = _loop_and_server(warm=kwargs.get("route") != "text")
        result = loop.run_until_complete(simulate(**kwargs, local_server=server))
        record = recorded_figures(result.path)
    except Exception as exc:
        record = error_figures(call_dir, exc)
        record["traceback"] = traceback.format_exc(limit=5)
    record["worker_pid"] = os.getpid()
    return record


def _loop_and_server(*, warm: bool) -> tuple[asyncio.AbstractEventLoop, Any]:
    from dualagent.realtime.local.server import LocalRealtimeServer

    loop = getattr(_here, "loop", None)
    if loop is None:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(LocalRealtimeServer(warm=warm).start())
        _here.loop, _here.server = loop, server
    return loop, _here.server


def pack(obj: Any) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


class _Worker:
    """One worker process and its pipes (used by one call at a time)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dualagent.batch.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def run(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(pack(kwargs))
            await stdin.drain()
            (size,) = _HEADER.unpack(await stdout.readexactly(_HEADER.size))
            return pickle.loads(await stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self.process.wait()
            raise WorkerDiedError(
                f"batch worker process {self.process.pid} ended during the call (exit code {code})"
            ) from exc

    async def stop(self) -> None:
        """End of input: the worker finishes its call (if any) and exits."""
        if self.process.stdin is not None and not self.process.stdin.is_closing():
            self.process.stdin.close()
        await self.process.wait()


@contextlib.asynccontextmanager
async def process_calls(
    config: BatchConfig, output_dir: str, processes: int
) -> AsyncIterator[Callable[[CallSpec], Awaitable[dict[str, Any]]]]:
    """Yields "run one call in a worker process", with up to ``processes`` workers (started
    as calls need them). On the way out the workers finish their running calls and exit."""
    idle: list[_Worker] = []
    started: list[_Worker] = []
    free = asyncio.Semaphore(processes)

    async def call(spec: CallSpec) -> dict[str, Any]:
        kwargs = call_kwargs(spec, config, output_dir)
        async with free:
            worker = idle.pop() if idle else None
            if worker is None:
                worker = await _Worker.start()
                started.append(worker)
            # Cancelled while it runs, the worker finishes that call unwatched: it is not
            # given back, and is stopped (after its call) on the way out.
            record = await worker.run(kwargs)
            if worker.process.returncode is None:
                idle.append(worker)
        return record

    try:
        yield call
    finally:
        await asyncio.gather(*(w.stop() for w in started), return_exceptions=True)
