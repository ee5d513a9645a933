"""``dualagent bench``: measure the figures we promise, on this machine, and print them.

Benchmarks, not tests: they print numbers with their targets and never fail a build. Each part
runs real calls on the embedded backend, as a user would (server in-process, fast pacing). The
bridge-overhead figures are the CPU time the bridge's own thread spends per event (see
``dualagent.call.bridge.BridgeStats``), so the speech engines' threads are not counted against it.

Batch figures: :func:`bench_throughput` (calls per minute per route and parallelism) and
:func:`bench_memory` (peak RSS of concurrent calls, this process plus its recognition workers,
via ``psutil``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dualagent.realtime.protocol import pcm16_duration_s

SENTENCES = [
    "Thank you for calling First Bank, this is Alex. How can I help you today?",
    "My name is Nancy Wilson, and my date of birth is March fourteenth nineteen fifty eight.",
    "Your replacement card has been ordered and will arrive in five to seven business days.",
]


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str
    target: str
    ok: bool | None

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        mark = {True: "ok", False: "MISSED", None: ""}[self.ok]
        return f"{self.name:<44} {value:>10} {self.unit:<12} target {self.target:<10} {mark}"


def _check(value: float | None, target: float, below: bool = True) -> bool | None:
    if value is None:
        return None
    return value < target if below else value >= target


def bench_engines() -> list[Figure]:
    """Real-time factors of Piper TTS and PocketSphinx ASR (compute time / audio time)."""
    from dualagent.realtime.local import engines

    engines.warm_up()
    tts, asr = engines.get_tts(), engines.get_asr()
    tts_time = asr_time = audio_s = 0.0
    for sentence in SENTENCES * 2:
        started = time.perf_counter()
        pcm = b"".join(tts.synthesize(sentence, voice="coral", speed=1.0))
        tts_time += time.perf_counter() - started
        started = time.perf_counter()
        asr.transcribe(pcm)
        asr_time += time.perf_counter() - started
        audio_s += pcm16_duration_s(pcm)
    return [
        Figure(
            "Piper TTS real-time factor",
            tts_time / audio_s,
            "x",
            "<= 0.15",
            tts_time / audio_s <= 0.15,
        ),
        Figure(
            "PocketSphinx ASR real-time factor",
            asr_time / audio_s,
            "x",
            "<= 0.4",
            asr_time / audio_s <= 0.4,
        ),
    ]


async def _calls(server: Any, out: Path, n: int, audio_format: str = "wav") -> list[dict[str, Any]]:
    import dualagent

    results = []
    for i in range(n):
        result = await dualagent.simulate(
            ["typical", "frustrated", "elderly", "hurried"][i % 4],
            local_server=server,
            output_dir=out,
            conversation_id=f"bench_{audio_format}_{i}",
            audio_format=audio_format,
            seed=i,
        )
        results.append(result.metadata)
    return results


def bench_calls(n: int = 4) -> list[Figure]:
    """Bridge overhead, turn switch, session readiness, recording overhead, speed, storage."""
    from dualagent.realtime.local.server import LocalRealtimeServer

    async def main(out: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with LocalRealtimeServer() as server:
            metas = await _calls(server, out, n)
            ogg = (await _calls(server, out, 1, audio_format="ogg"))[0]
        return metas, ogg

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        metas, ogg = asyncio.run(main(out))
        ogg_dir = out / ogg["conversation_id"]
        storage_mb_per_min = (
            sum(f.stat().st_size for f in ogg_dir.iterdir()) / 1e6 / (ogg["timeline_s"] / 60)
        )
    chunk_p99 = max(m["bridge_stats"]["audio_chunk_p99_ms"] for m in metas)
    switch_p99 = max(m["bridge_stats"]["turn_switch_p99_ms"] for m in metas)
    ready = max(m["sessions_ready_s"] for m in metas)
    overhead = 100 * max(m["recording_overhead_share"] for m in metas)
    speed = min(m["timeline_s"] / m["wall_time_s"] for m in metas)
    return [
        Figure(
            "bridge routing overhead per audio chunk p99 (CPU)",
            chunk_p99,
            "ms",
            "< 1",
            _check(chunk_p99, 1),
        ),
        Figure("turn switch p99 (CPU)", switch_p99, "ms", "< 5", _check(switch_p99, 5)),
        Figure("both sessions ready (warm engines)", ready, "s", "< 0.5", _check(ready, 0.5)),
        Figure("recording overhead (wav)", overhead, "% of wall", "< 2", _check(overhead, 2)),
        Figure(
            "recording overhead (ogg, Vorbis encode)",
            100 * ogg["recording_overhead_share"],
            "% of wall",
            "info",
            None,
        ),
        Figure(
            "full-audio call speed (worst of n)",
            speed,
            "x realtime",
            ">= 3",
            _check(speed, 3, below=False),
        ),
        Figure(
            "storage with compressed audio (ogg)",
            storage_mb_per_min,
            "MB/call-min",
            "<= 1",
            storage_mb_per_min <= 1,
        ),
    ]


def rss_mb() -> float:
    """Resident memory (MB) of this process and all its children, now.

    The children are the speech-recognition worker processes (``DUALAGENT_ASR_PROCESSES``):
    their memory is part of what a call costs.
    """
    import psutil

    process = psutil.Process()
    total = process.memory_info().rss
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += child.memory_info().rss  # a worker that just ended is skipped
    return total / 2**20


def memory_probe(n: int, route: str = "audio") -> dict[str, float]:
    """RSS (MB) with a warm server, and its peak during ``n`` concurrent calls (this process).

    Meant for a fresh process (:func:`bench_memory` starts one per probe). The peak is sampled
    every 20 ms while the calls run; the process's own high-water mark would be dominated by
    the engines' warm-up, which happens before any call.
    """
    from dualagent import batch
    from dualagent.realtime.local.server import LocalRealtimeServer

    async def go() -> dict[str, float]:
        async with LocalRealtimeServer() as server:
            baseline = rss_mb()
            samples = [baseline]
            stop = threading.Event()

            def sample() -> None:
                while not stop.wait(0.02):
                    samples.append(rss_mb())

            sampler = threading.Thread(target=sample, name="dualagent-rss-sampler", daemon=True)
            sampler.start()
            try:
                with tempfile.TemporaryDirectory(prefix="dualagent-mem-") as tmp:
                    result = await batch.run(
                        caller_types=["typical"],
                        repeat=n,
                        parallel=n,
                        route=route,
                        output_dir=tmp,
                        progress=False,
                        local_server=server,
                        batch_id="mem",
                    )
            finally:
                stop.set()
                sampler.join()
            return {
                "calls": len(result.calls),
                "errors": result.errors,
                "baseline_mb": baseline,
                "peak_mb": float(np.max(samples)),
            }

    return asyncio.run(go())


def _probe(n: int, route: str) -> dict[str, Any]:
    """``n`` concurrent calls in a fresh process (:func:`memory_probe`)."""
    code = (
        "import json; from dualagent.bench import memory_probe; "
        f"print(json.dumps(memory_probe({n}, {route!r})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=1800
    )
    if proc.returncode != 0:
        return {"calls": 0, "errors": n, "peak_mb": None, "baseline_mb": None}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_memory(
    n: int = 10, route: str = "audio", *, print_table: bool = True
) -> dict[str, float | str | None]:
    """Peak RSS of ``n`` concurrent full-audio calls vs 1, each in a fresh subprocess.

    Each probe starts a warm shared server, notes its RSS (with the recognition workers), runs
    the calls and samples the peak. Returns (and prints) the figures and the MB each extra
    concurrent call costs.
    """
    one, many = _probe(1, route), _probe(n, route)

    def mb(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    extra = None
    if None not in (one["peak_mb"], many["peak_mb"], one["baseline_mb"], many["baseline_mb"]):
        extra_1 = one["peak_mb"] - one["baseline_mb"]
        extra_n = many["peak_mb"] - many["baseline_mb"]
        extra = round((extra_n - extra_1) / max(1, n - 1), 1)
    figures: dict[str, float | str | None] = {
        "n": n,
        "route": route,
        "warm_server_mb": mb(one["baseline_mb"]),
        "peak_1_call_mb": mb(one["peak_mb"]),
        f"peak_{n}_calls_mb": mb(many["peak_mb"]),
        "mb_per_extra_call": extra,
        "errors": one["errors"] + many["errors"],
    }
    if print_table:
        print(f"dualagent batch memory ({route} route, peak RSS, fresh process each)")
        for key, value in figures.items():
            print(f"  {key:<20} {value}")
    return figures


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


def bench_concurrency(audio_calls: int = 10, text_calls: int = 100) -> list[Figure]:
    """Concurrent calls without errors, throughput, and memory per extra conversation.

    Memory per conversation is the growth of peak RSS from 2 to ``audio_calls`` concurrent
    calls, per call: from 2 calls on, both speech-engine threads are busy, so what grows is
    what each conversation holds. The growth from 1 call (which adds the second engine
    thread's working memory, a fixed cost) is printed too.
    """
    one, two, many = _probe(1, "audio"), _probe(2, "audio"), _probe(audio_calls, "audio")
    text = bench_throughput(routes=("text",), parallel=(16,), calls=text_calls, print_table=False)
    row = text.iloc[0]

    def per_call(low: dict[str, Any], k: int) -> float | None:
        if not (low.get("peak_mb") and many.get("peak_mb")):
            return None
        return (many["peak_mb"] - low["peak_mb"]) / (audio_calls - k)

    ok_audio = many["calls"] - many["errors"]
    ok_text = int(row["calls"]) - int(row["errors"])
    from_two, from_one = per_call(two, 2), per_call(one, 1)
    return [
        Figure(
            f"concurrent full-audio calls ok (of {audio_calls})",
            ok_audio,
            "calls",
            f">= {audio_calls}",
            ok_audio >= audio_calls,
        ),
        Figure(
            f"text-route calls ok (of {text_calls}, 16 at a time)",
            ok_text,
            "calls",
            f">= {text_calls}",
            ok_text >= text_calls,
        ),
        Figure(
            "text-route throughput (16 at a time)",
            float(row["calls_per_min"]),
            "calls/min",
            "info",
            None,
        ),
        Figure(
            "extra memory per concurrent conversation", from_two, "MB", "< 20", _check(from_two, 20)
        ),
        Figure("  (same, counted from 1 call)", from_one, "MB", "info", None),
        Figure("peak RSS, warm server + 1 audio call", one.get("peak_mb"), "MB", "info", None),
    ]


def run_bench(parts: list[str] | None = None, as_json: bool = False) -> int:
    """Run the chosen parts (engines, calls, concurrency) and print the figures."""
    parts = parts or ["engines", "calls", "concurrency"]
    runners = {"engines": bench_engines, "calls": bench_calls, "concurrency": bench_concurrency}
    figures: list[Figure] = []
    print(f"dualagent bench on {os.cpu_count()} cores (figures are measured now, on this machine)")
    for part in parts:
        started = time.perf_counter()
        new = runners[part]()
        figures += new
        if not as_json:
            for figure in new:
                print(figure.line(), flush=True)
            print(f"  ({part}: {time.perf_counter() - started:.0f} s)", flush=True)
    if as_json:
        print(json.dumps([f.__dict__ for f in figures]))
    return 0
