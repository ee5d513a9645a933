"""Batch throughput for ``dualagent bench``: calls per minute by route and parallelism on one
warm server (:func:`bench_throughput`), and a text batch run as a user runs one
(:func:`text_sweep`: its defaults, worker processes included)."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PERSONAS = ["typical", "frustrated", "elderly", "hurried"]


def bench_throughput(
    routes: Sequence[str] = ("text", "audio"),
    parallel: Sequence[int] = (1, 2, 4),
    calls: int | dict[str, int] | None = None,
    *,
    print_table: bool = True,
):  # -> pandas.DataFrame
    """Calls per minute per route and parallelism, on one warm shared embedded server.

    ``calls``: calls per measurement (an int, or per route; default text 48, audio 2 × the
    largest parallelism). The four caller types take turns. Prints the table and returns it.
    """
    import pandas as pd

    from dualagent import batch
    from dualagent.personas import list_personas
    from dualagent.realtime.local.server import LocalRealtimeServer

    defaults = {"text": 48, "audio": 2 * max(parallel)}
    per_route = (
        calls if isinstance(calls, dict) else dict.fromkeys(routes, calls) if calls else defaults
    )

    async def measure() -> list[dict[str, Any]]:
        rows = []
        types = list_personas()
        async with LocalRealtimeServer() as server:
            with tempfile.TemporaryDirectory(prefix="dualagent-bench-") as tmp:
                for route in routes:
                    n = int(per_route.get(route) or defaults.get(route, 8))
                    for p in parallel:
                        started = time.perf_counter()
                        result = await batch.run(
                            caller_types=types,
                            repeat=math.ceil(n / len(types)),
                            parallel=p,
                            route=route,
                            output_dir=tmp,
                            progress=False,
                            local_server=server,
                            batch_id=f"bench-{route}-p{p}",
                        )
                        wall = time.perf_counter() - started
                        done = len(result.calls)
                        call_wall = result.calls["wall_time_s"].dropna().to_numpy(dtype=float)
                        rows.append(
                            {
                                "route": route,
                                "parallel": p,
                                "calls": done,
                                "wall_s": round(wall, 2),
                                "calls_per_min": round(done / wall * 60, 1),
                                "errors": result.errors,
                                "mean_call_wall_s": round(float(np.mean(call_wall)), 3)
                                if len(call_wall)
                                else None,
                            }
                        )
                        shutil.rmtree(Path(tmp) / f"bench-{route}-p{p}", ignore_errors=True)
        return rows

    frame = pd.DataFrame(asyncio.run(measure()))
    if print_table:
        print(f"dualagent batch throughput ({os.cpu_count()} CPU cores)")
        print(frame.to_string(index=False))
    return frame


def text_sweep(calls: int) -> dict[str, Any]:
    """A text-route batch of ``calls`` calls (the four caller types) as a user runs one: its
    defaults (worker processes, one per core, from 64 calls), its own embedded backends.

    Wall time from the call of ``batch.run`` to its return, worker starts included; CPU time
    of this process and the workers (reaped by then) per call.
    """
    import resource

    from dualagent import batch
    from dualagent.batch import load_batch

    def cpu_s() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    with tempfile.TemporaryDirectory(prefix="dualagent-bench-") as tmp:
        cpu, started = cpu_s(), time.perf_counter()
        result = asyncio.run(
            batch.run(
                caller_types=PERSONAS,
                repeat=math.ceil(calls / len(PERSONAS)),
                route="text",
                output_dir=tmp,
                progress=False,
                batch_id="sweep",
            )
        )
        wall, cpu = time.perf_counter() - started, cpu_s() - cpu
        manifest = load_batch(Path(tmp) / "sweep").manifest
    done = len(result.calls)
    return {
        "calls": done,
        "errors": result.errors,
        "calls_per_min": done / wall * 60,
        "cpu_ms_per_call": 1000 * cpu / max(done, 1),
        "processes": manifest.get("processes"),
    }
