"""Calls of a batch as Dask tasks (``executor="dask://HOST:PORT"`` or a ``distributed.Client``).

Each task runs ``dualagent.simulate`` in the worker, on the worker's own embedded backend (kept
from task to task, with its event loop), and writes the recording straight into the batch folder (which must be shared
with the client at the same absolute path). The client side is asynchronous: an
``asynchronous=True`` client on the batch's event loop, one awaited future per call, so the
local and the Dask runs share the same scheduling, cancellation and bookkeeping
(:func:`dualagent.batch.runner._run_calls`). This module is imported as ``dualagent.batch.dask``;
it imports the real ``distributed`` package by absolute name.
"""

from __future__ import annotations

import contextlib
import platform
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dualagent.batch.config import BatchConfig
from dualagent.batch.plan import CallSpec, call_kwargs
from dualagent.errors import InputError


def run_call_in_worker(kwargs: dict[str, Any]) -> dict[str, Any]:
    """A Dask task: one call on the worker thread's own embedded backend (started by its first
    task and kept, as in a batch's worker process); returns its figures.

    Writes the recording to ``kwargs["output_dir"]`` (the batch folder, which must be shared
    with the client).
    """
    from dualagent.batch.processes import run_call_here

    record = run_call_here(kwargs)
    record["worker_host"] = platform.node()
    return record


def scheduler_address(executor: str) -> str:
    """``dask://HOST:PORT`` -> ``tcp://HOST:PORT`` (``tcp://`` and ``tls://`` stay as given)."""
    return "tcp://" + executor.split("://", 1)[1] if executor.startswith("dask://") else executor


@contextlib.asynccontextmanager
async def dask_calls(
    executor: Any, config: BatchConfig, output_dir: str
) -> AsyncIterator[tuple[Callable[[CallSpec], Awaitable[dict[str, Any]]], int]]:
    """An asynchronous client on this loop; yields (run one call as a task, cluster threads).

    A ``distributed.Client`` given as the executor is used as is when it is asynchronous;
    a synchronous one (it runs its own loop in a thread) lends its scheduler's address to an
    asynchronous client opened here. On the way out, tasks still queued or running are
    cancelled on the cluster (a task already running on a worker finishes there: Dask cannot
    interrupt it) and a client opened here is closed.
    """
    try:
        from distributed import Client
    except ImportError:
        raise InputError(
            "the dask executor needs dask.distributed: pip install 'dualagent[dask]'"
        ) from None
    if isinstance(executor, str):
        client, own = None, True
        address = scheduler_address(executor)
    else:
        own = not getattr(executor, "asynchronous", False)
        client = None if own else executor
        address = executor.scheduler.address
    if client is None:
        client = await Client(address, asynchronous=True, set_as_default=False)
    in_flight: set[Any] = set()
    try:

        async def call(spec: CallSpec) -> dict[str, Any]:
            future = client.submit(
                run_call_in_worker,
                call_kwargs(spec, config, output_dir),
                key=f"dualagent-{spec.call_id}-{uuid.uuid4().hex[:8]}",
                pure=False,
            )
            in_flight.add(future)
            record = await future  # a task or worker failure (KilledWorker...) raises here
            in_flight.discard(future)
            return record

        threads = max(1, sum((await client.nthreads()).values()))
        yield call, threads
    finally:
        pending = [f for f in in_flight if not f.done()]
        if pending:
            with contextlib.suppress(Exception):
                await client.cancel(pending)
        if own:
            await client.close()
