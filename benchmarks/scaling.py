"""How batch throughput grows with ``--parallel`` on one machine and with Dask workers.

    python benchmarks/scaling.py                 # the README's "Scaling" table (~10 min, 2 cores)
    python benchmarks/scaling.py --quick         # every row, tiny batches (a smoke run)
    python benchmarks/scaling.py --output scaling.json

Every row is a real batch on the embedded backend (``dualagent.batch.run``), the four caller
types taking turns:

- ``local``: one warm embedded server in this process shared by the batch's calls (what
  ``dualagent batch`` does), for each ``--parallel``; text and audio route. Each row starts
  with empty engine caches and its own seeds (no row is served from an earlier row's speech).
- ``procs``: a text batch of 1,000 calls in 1, 2 and 3 worker processes (``processes``: each
  its own embedded backend, one call at a time), as ``dualagent batch`` runs a big text batch
  by default; the wall time includes starting the workers.
- ``dask``: a ``distributed.LocalCluster`` on 127.0.0.1 with 1, then 2 worker processes (one
  thread each), each running its calls on its own embedded backend. A first, unmeasured batch
  loads each worker's engines (a long-running cluster would have them loaded); the measured
  rows use other seeds.

Printed per row: calls, wall seconds, calls per minute, and for audio the aggregate speed (the
sum of the calls' lengths / wall time, "x real time"), and the machine's load average: the
figures are this machine's, now (a busy machine gives pessimistic ones).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PERSONAS = ["typical", "frustrated", "elderly", "hurried"]


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: want positive integers like 1,2,4")
    return values


def _load() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def _row(kind: str, route: str, width: int, result: Any, wall_s: float) -> dict[str, Any]:
    calls = result.calls
    call_s = float(calls["duration_s"].fillna(0).sum()) if len(calls) else 0.0
    return {
        "executor": kind,
        "route": route,
        "parallel": width,
        "calls": len(calls),
        "errors": int(result.errors),
        "wall_s": round(wall_s, 2),
        "calls_per_min": round(len(calls) / wall_s * 60, 1),
        "speed_x": round(call_s / wall_s, 2) if route == "audio" else None,
        "load": _load(),
    }


def _print(row: dict[str, Any]) -> None:
    speed = "" if row["speed_x"] is None else f"{row['speed_x']:>7.2f}x"
    print(
        f"{row['executor']:<6} {row['route']:<6} {row['parallel']:>3} "
        f"{row['calls']:>5} {row['errors']:>3} {row['wall_s']:>8.1f} "
        f"{row['calls_per_min']:>10.1f} {speed:>8}   load {row['load']}",
        flush=True,
    )


async def _batch(
    route: str,
    calls: int,
    out: str,
    batch_id: str,
    *,
    max_turns: int | None,
    parallel: int | None = None,
    **kwargs: Any,
) -> tuple[Any, float]:
    from dualagent import batch

    started = time.perf_counter()
    result = await batch.run(
        caller_types=PERSONAS,
        repeat=max(1, -(-calls // len(PERSONAS))),
        parallel=parallel,
        route=route,
        output_dir=out,
        progress=False,
        batch_id=batch_id,
        max_turns=max_turns,
        **kwargs,
    )
    return result, time.perf_counter() - started


async def local_rows(args: argparse.Namespace, out: str) -> list[dict[str, Any]]:
    """One warm server; a batch per route and parallelism."""
    from dualagent.realtime.local.engine_cache import configure_caches
    from dualagent.realtime.local.server import LocalRealtimeServer

    rows = []
    async with LocalRealtimeServer() as server:
        # Unmeasured: what a process does once (imports on a call's first use of a tool...).
        for route in ("text", "audio"):
            await _batch(route, 1, out, f"local-warm-{route}", max_turns=2, local_server=server)
        plan = [("text", p, args.text_calls, None) for p in args.text_parallel]
        plan += [("audio", p, args.audio_calls, args.audio_max_turns) for p in args.audio_parallel]
        plan = [row for row in plan if row[0] in args.routes]
        for i, (route, width, calls, turns) in enumerate(plan, start=1):
            configure_caches()  # empty: every row pays for its own speech
            result, wall = await _batch(
                route,
                calls,
                out,
                f"local-{route}-p{width}",
                max_turns=turns,
                parallel=width,
                local_server=server,
                seed=1000 * i,
            )
            rows.append(_row("local", route, width, result, wall))
            _print(rows[-1])
    return rows


async def process_rows(args: argparse.Namespace, out: str) -> list[dict[str, Any]]:
    """Text batches in N worker processes (each its own embedded backend), as a user runs
    a sweep: worker starts included in the wall time."""
    rows = []
    for i, n in enumerate(args.text_processes, start=1):
        result, wall = await _batch(
            "text",
            args.process_text_calls,
            out,
            f"procs-text-{n}",
            max_turns=None,
            processes=n,
            seed=7000 * i,
        )
        rows.append(_row("procs", "text", n, result, wall))
        _print(rows[-1])
    return rows


def _empty_caches() -> None:
    from dualagent.realtime.local.engine_cache import configure_caches

    configure_caches()


async def dask_rows(args: argparse.Namespace, out: str) -> list[dict[str, Any]]:
    """A LocalCluster of 1, then 2 (...) single-threaded worker processes."""
    import distributed

    rows = []
    for workers in args.dask_workers:

        def start(n: int = workers) -> distributed.LocalCluster:
            return distributed.LocalCluster(
                n_workers=n,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            )

        cluster = await asyncio.to_thread(start)
        try:
            executor = "dask://" + cluster.scheduler_address.split("://", 1)[1]
            # Unmeasured: every worker loads its engines (one short audio call each).
            await _batch("audio", workers, out, f"dask{workers}-warm", max_turns=2,
                         executor=executor)  # fmt: skip
            client = await asyncio.to_thread(distributed.Client, cluster)
            try:  # ... and forgets that call's speech: rows start with empty engine caches
                await asyncio.to_thread(client.run, _empty_caches)
            finally:
                await asyncio.to_thread(client.close)
            for i, (route, calls, turns) in enumerate(
                (
                    ("text", args.dask_text_calls, None),
                    ("audio", args.audio_calls, args.audio_max_turns),
                ),
                start=1,
            ):
                if route not in args.routes:
                    continue
                result, wall = await _batch(
                    route, calls, out, f"dask{workers}-{route}", max_turns=turns,
                    executor=executor, seed=100_000 * workers + 1000 * i,
                )  # fmt: skip
                rows.append(_row("dask", route, workers, result, wall))
                _print(rows[-1])
        finally:
            await asyncio.to_thread(cluster.close)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-parallel", type=_ints, default=[1, 2, 4, 8, 16])
    parser.add_argument("--audio-parallel", type=_ints, default=[1, 2, 3])
    parser.add_argument("--dask-workers", type=_ints, default=[1, 2])
    parser.add_argument(
        "--text-processes", type=_ints, default=[1, 2, 3], help="worker processes per text row"
    )
    parser.add_argument(
        "--process-text-calls", type=int, default=1000, help="per worker-process row (1000)"
    )
    parser.add_argument("--text-calls", type=int, default=200, help="per row (default 200)")
    parser.add_argument("--dask-text-calls", type=int, default=40, help="per row (default 40)")
    parser.add_argument("--audio-calls", type=int, default=6, help="per row (default 6)")
    parser.add_argument(
        "--audio-max-turns", type=int, default=8, help="turns per audio call (default 8)"
    )
    parser.add_argument(
        "--routes", default="text,audio", help="comma list of text, audio (default both)"
    )
    parser.add_argument("--no-dask", action="store_true", help="local rows only")
    parser.add_argument("--quick", action="store_true", help="tiny batches: a smoke run")
    parser.add_argument("--output", metavar="FILE", help="also write the rows (JSON)")
    args = parser.parse_args(argv)
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    bad = [r for r in routes if r not in ("text", "audio")]
    if bad or not routes:
        parser.error(f"--routes {args.routes!r}: valid choices are text, audio")
    if args.quick:
        args.text_parallel, args.audio_parallel = [1, 2], [1, 2]
        args.text_processes, args.process_text_calls = [2], 8
        args.text_calls, args.dask_text_calls, args.audio_calls, args.audio_max_turns = 8, 4, 2, 2
    args.routes = routes
    print(
        f"scaling on {os.cpu_count()} cores, load {_load()} (this machine, now)\n"
        f"{'where':<6} {'route':<6} {'par':>3} {'calls':>5} {'err':>3} {'wall s':>8} "
        f"{'calls/min':>10} {'speed':>8}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="dualagent-scaling-") as out:
        rows = asyncio.run(local_rows(args, out))
        if "text" in args.routes:
            rows += asyncio.run(process_rows(args, out))
        if not args.no_dask:
            rows += asyncio.run(dask_rows(args, out))
    if args.output:
        Path(args.output).write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
