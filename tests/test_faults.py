"""Faults injected on purpose into the embedded server: the call survives every one of them.

The sweep aims every fault at each agent, early and late in the call; each run must end with
the right status and end_reason and leave a complete, valid recording that keeps everything
said before the fault. Outcomes only: timeouts are hang guards, never assertions.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf

import dualagent
from dualagent.call.record import load_call
from dualagent.realtime.local.faults import (
    FAULTS,
    UNKNOWN_EVENT_TYPE,
    FaultPlan,
    FaultSpecError,
)
from dualagent.realtime.local.server import LocalRealtimeServer

SEED = 3
# The bridge's idle timeout in the text sweep: the injected stall outlasts it, and nothing else
# in a text call (no speech engines) comes near it, even on a machine busy with other work.
IDLE_S = 6.0
AUDIO_IDLE_S = 60.0  # audio calls wait for speech engines: only a fault may stall them
HANG_GUARD_S = 300.0  # a hang fails the test; a busy machine is not a hang
FILES = (
    "caller_audio.wav",
    "cs_audio.wav",
    "stereo_recording.wav",
    "transcript.json",
    "function_calls.json",
    "call_metadata.json",
    "session_events.json",
)
SPEC_OF = {"stall": "stall=9", "slow": "slow=0.01"}  # values kept small: the suite stays fast
WHEN = {"early": 1, "late": 5}  # the agent's 1st and 5th response (a text call has >= 7 each)


def expected(fault: str, agent: str, baseline: tuple[str, str]) -> tuple[str, str]:
    """(status, end_reason) a call ends with when ``fault`` hits ``agent``."""
    return {
        "drop": ("error", f"{agent}_disconnected"),
        "close": ("error", f"{agent}_disconnected"),
        "error": ("error", "service_error"),
        "malformed": ("error", f"{agent}_bad_event"),
        "stall": ("error", "stalled"),
    }.get(fault, baseline)  # unknown events are ignored, slow audio only slows, a swap of two
    # deltas is repaired by the item's .done text: as without


async def call(server: LocalRealtimeServer, out: Path, name: str, route: str = "text", **kw):
    kw.setdefault("idle_timeout_s", IDLE_S if route == "text" else AUDIO_IDLE_S)
    return await asyncio.wait_for(
        dualagent.simulate(
            "typical",
            route=route,
            seed=SEED,
            output_dir=out,
            conversation_id=name,
            local_server=server,
            **kw,
        ),
        HANG_GUARD_S,
    )


def check_recording(folder: Path, status: str, end_reason: str) -> list[tuple[str, str]]:
    """Every file exists and reads; returns the transcript as (speaker, text)."""
    for name in FILES:
        assert (folder / name).is_file(), f"{folder.name}: {name} missing"
    frames = {name: sf.info(folder / name).frames for name in FILES[:3]}
    assert len(set(frames.values())) == 1, frames  # three channels of one timeline
    for name in FILES[3:]:
        json.loads((folder / name).read_text(encoding="utf-8"))
    record = load_call(folder)
    assert record.load_error is None
    assert (record.status, record.end_reason) == (status, end_reason), record.metadata.get("error")
    return [(t["speaker"], t["text"]) for t in record.turns]


def fault_turn(turns: list[tuple[str, str]], agent: str, at: int) -> int:
    """Index of ``agent``'s ``at``-th turn in a fault-free transcript."""
    return [i for i, (speaker, _) in enumerate(turns) if speaker == agent][at - 1]


async def test_every_fault_on_each_agent_early_and_late_leaves_a_valid_recording(
    tmp_path: Path,
) -> None:
    async with LocalRealtimeServer(warm=False) as server:
        base = await call(server, tmp_path, "baseline")
        baseline_turns = check_recording(base.path, "completed", base.end_reason)
        baseline = (base.status, base.end_reason)
        runs = 0
        for fault in FAULTS:
            for agent in ("caller", "cs"):
                for when, at in WHEN.items():
                    server.faults = FaultPlan.parse(f"{SPEC_OF.get(fault, fault)}@{agent}:{at}")
                    name = f"{fault}_{agent}_{when}"
                    result = await call(server, tmp_path, name)
                    status, end_reason = expected(fault, agent, baseline)
                    turns = check_recording(result.path, status, end_reason)
                    n = fault_turn(baseline_turns, agent, at)
                    # Nothing said before the fault is lost.
                    assert turns[:n] == baseline_turns[:n], name
                    if (status, end_reason) == baseline:
                        assert turns == baseline_turns, name
                    if fault == "unknown":  # it did arrive, and was kept
                        events = (result.path / "session_events.json").read_text()
                        assert UNKNOWN_EVENT_TYPE in events, name
                    runs += 1
    assert runs >= 20


@pytest.mark.parametrize(
    ("spec", "agent", "fault"),
    [("drop@cs:2", "cs", "drop"), ("close=1011@caller:1", "caller", "close"),
     ("malformed@cs:2", "cs", "malformed"), ("slow=0.01@cs:1", "cs", "slow")],
)  # fmt: skip
async def test_audio_calls_survive_faults(spec, agent, fault, tmp_path: Path) -> None:
    async with LocalRealtimeServer() as server:  # warm: loading engines is not a fault
        base = await call(server, tmp_path, "baseline", route="audio", max_turns=4)
        server.faults = FaultPlan.parse(spec)
        result = await call(server, tmp_path, "faulted", route="audio", max_turns=4)
    status, end_reason = expected(fault, agent, (base.status, base.end_reason))
    turns = check_recording(result.path, status, end_reason)
    baseline_turns = [(t["speaker"], t["text"]) for t in base.turns]
    n = fault_turn(baseline_turns, agent, FaultPlan.parse(spec).faults[0].at or 1)
    assert turns[:n] == baseline_turns[:n]
    if n:  # the audio of every whole turn before the fault is on disk
        duration = sf.info(result.path / "stereo_recording.wav").duration
        assert duration >= result.turns[n - 1]["end_s"] - 0.05


async def test_events_out_of_order_leave_a_valid_recording_and_the_call_goes_on(
    tmp_path: Path,
) -> None:
    """The CS agent's first response arrives backwards from its first delta on: its
    ``response.done`` before its item's deltas and ``.done``."""
    async with LocalRealtimeServer(warm=False, faults="reorder=10@cs:1") as server:
        result = await call(server, tmp_path, "backwards")
    events = json.loads((result.path / "session_events.json").read_text())["events"]
    received = [e["type"] for e in events if e["agent"] == "cs" and e["direction"] == "received"]
    first_done = received.index("response.done")
    assert "response.output_text.delta" in received[first_done : first_done + 10]
    turns = check_recording(result.path, "completed", result.end_reason)
    assert len(turns) > 4  # the call went on past the scrambled greeting


def test_random_faults_are_reproducible_for_a_seed() -> None:
    plan = FaultPlan.parse("drop@cs:random,seed=5")
    draws = [plan.for_connection("local-cs", n).pending[0][1] for n in range(1, 20)]
    again = [plan.for_connection("local-cs", n).pending[0][1] for n in range(1, 20)]
    assert draws == again and all(1 <= d <= 6 for d in draws) and len(set(draws)) > 1
    assert plan.for_connection("local-caller", 1) is None  # aimed at the CS agent only


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("boom@cs", "'boom'"),
        ("drop", "no agent"),
        ("drop@cs:0", "'0'"),
        ("close=1006@cs", "close code"),
        ("stall=x@cs", "'x'"),
        ("error=3@cs", "takes no value"),
        ("seed=a,drop@cs", "seed"),
        ("seed=1", "no fault"),
    ],
)
def test_a_bad_spec_names_the_bad_part(spec: str, named: str) -> None:
    with pytest.raises(FaultSpecError, match=named):
        FaultPlan.parse(spec)


def test_the_cli_refuses_a_bad_spec_in_one_line_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dualagent", "local-server", "--faults", "drop@cs,oops@cs"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "'oops@cs'" in done.stderr
    assert "drop, close, error, malformed, unknown, stall, slow, reorder" in done.stderr
