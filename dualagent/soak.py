"""The soak: many calls on one embedded server, and what the process holds before and after.

``dualagent bench --soak`` runs 10 concurrent full-audio calls, then 200 text-route calls, on
one warm :class:`~dualagent.realtime.local.server.LocalRealtimeServer`, and reports open file
descriptors, threads, child processes and memory (this process and its recognition workers)
measured after a warm-up call and again at the end. Anything that grows with the number of
calls is a leak: a long batch or a server that runs for days would run out of it.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from dualagent.call.simulate import simulate

PERSONAS = ("typical", "frustrated", "elderly", "hurried")
# Threads of bounded pools (the engines', asyncio's default executor): they start on demand up
# to their limit and then stay, so they are not counted as growth.
POOLED_THREADS = ("dualagent-engine", "asyncio_")


@dataclass(frozen=True)
class Holdings:
    """What the process holds at one moment."""

    open_fds: int
    threads: int  # outside the bounded pools
    child_processes: int
    rss_mb: float  # this process plus its children

    @classmethod
    def now(cls) -> Holdings:
        gc.collect()
        process = psutil.Process()
        children = [c for c in process.children(recursive=True) if _alive(c)]
        rss = process.memory_info().rss
        for child in children:
            try:
                rss += child.memory_info().rss
            except psutil.Error:
                continue
        return cls(
            open_fds=process.num_fds(),
            threads=sum(not t.name.startswith(POOLED_THREADS) for t in threading.enumerate()),
            child_processes=len(children),
            rss_mb=round(rss / 2**20, 1),
        )


@dataclass(frozen=True)
class SoakReport:
    audio_calls: int
    text_calls: int
    completed: int
    before: Holdings
    after: Holdings

    @property
    def leaked(self) -> dict[str, int]:
        """Counts that grew (memory is reported, not judged: allocators keep freed pages)."""
        grown = {
            "open_fds": self.after.open_fds - self.before.open_fds,
            "threads": self.after.threads - self.before.threads,
            "child_processes": self.after.child_processes - self.before.child_processes,
        }
        return {name: n for name, n in grown.items() if n > 0}

    def as_dict(self) -> dict[str, Any]:
        return {
            "audio_calls": self.audio_calls,
            "text_calls": self.text_calls,
            "completed": self.completed,
            "before": asdict(self.before),
            "after": asdict(self.after),
            "rss_growth_mb": round(self.after.rss_mb - self.before.rss_mb, 1),
            "leaked": self.leaked,
        }

    def lines(self) -> list[str]:
        b, a = self.before, self.after
        return [
            f"soak: {self.audio_calls} concurrent audio calls, then {self.text_calls} text calls "
            f"({self.completed} completed)",
            f"  open files      {b.open_fds:>6} -> {a.open_fds}",
            f"  threads         {b.threads:>6} -> {a.threads}",
            f"  child processes {b.child_processes:>6} -> {a.child_processes}",
            f"  memory (MB)     {b.rss_mb:>6} -> {a.rss_mb}",
            "  leaked: nothing" if not self.leaked else f"  LEAKED: {self.leaked}",
        ]


async def run_soak(
    audio_calls: int = 10,
    text_calls: int = 200,
    *,
    text_parallel: int = 16,
    output_dir: str | Path | None = None,
) -> SoakReport:
    """Run the soak on a new embedded server; recordings go to ``output_dir`` (default: a
    temporary folder, removed afterwards)."""
    from dualagent.realtime.local.server import LocalRealtimeServer

    with tempfile.TemporaryDirectory(prefix="dualagent-soak-") as scratch:
        out = Path(output_dir) if output_dir is not None else Path(scratch)
        async with LocalRealtimeServer() as server:

            async def one(index: int, route: str, max_turns: int | None = None) -> bool:
                result = await simulate(
                    PERSONAS[index % len(PERSONAS)],
                    route=route,
                    seed=index,
                    max_turns=max_turns,
                    output_dir=out,
                    conversation_id=f"soak-{route}-{index:04d}",
                    local_server=server,
                )
                return result.status == "completed"

            await one(10_000, "audio", max_turns=2)  # warm: engines, workers, caches exist
            before = Holdings.now()
            done = await asyncio.gather(*(one(i, "audio", 6) for i in range(audio_calls)))
            gate = asyncio.Semaphore(text_parallel)

            async def text(index: int) -> bool:
                async with gate:
                    return await one(index, "text")

            done += await asyncio.gather(*(text(i) for i in range(text_calls)))
            await asyncio.sleep(0.5)  # connections finish closing
            after = Holdings.now()
    return SoakReport(audio_calls, text_calls, sum(done), before, after)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
