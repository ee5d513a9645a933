"""Batches in worker processes (``processes``): the same calls, other cores, Ctrl-C, scripts."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dualagent import batch
from dualagent.batch import BatchConfig
from dualagent.batch.processes import AUTO_MIN_CALLS, auto_processes


def manifest(batch_dir: Path) -> dict:
    return json.loads((batch_dir / "batch.json").read_text(encoding="utf-8"))


def finished_calls(batch_dir: Path) -> set[str]:
    """The calls whose recording says completed (call_metadata.json is replaced atomically)."""
    done = set()
    for path in batch_dir.glob("*/call_metadata.json") if batch_dir.exists() else []:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(path.read_text(encoding="utf-8"))["status"] == "completed":
                done.add(path.parent.name)
    return done


def run_script(script: Path) -> list[str]:
    """Run a Python script in a new interpreter; the lines it printed (it must succeed)."""
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def transcript_text(call_dir: Path) -> list[str]:
    turns = json.loads((call_dir / "transcript.json").read_text(encoding="utf-8"))["turns"]
    return [t["text"] for t in turns]


async def test_worker_processes_run_the_same_calls_as_this_process(tmp_path, local_server):
    common = dict(
        caller_types=["typical", "frustrated", "elderly", "hurried"],
        repeat=2,
        route="text",
        output_dir=tmp_path,
        progress=False,
        seed=7,
    )
    here = await batch.run(**common, batch_id="here", local_server=local_server)
    there = await batch.run(**common, batch_id="there", processes=2)

    assert here.errors == 0 and there.errors == 0
    doc = manifest(tmp_path / "there")
    assert doc["status"] == "completed" and doc["processes"] == 2
    assert manifest(tmp_path / "here")["processes"] == 1
    pids = {c["worker_pid"] for c in doc["calls"]}
    assert os.getpid() not in pids and len(pids) == 2  # both workers took calls
    for entry in doc["calls"]:
        a, b = tmp_path / "here" / entry["path"], tmp_path / "there" / entry["path"]
        assert transcript_text(b) == transcript_text(a)  # same seed, same call
        meta = json.loads((b / "call_metadata.json").read_text(encoding="utf-8"))
        assert meta["status"] == "completed" and meta["seed"] == entry["seed"]
    assert list(there.calls["success"]) == list(here.calls["success"])


def test_big_fast_text_batches_use_every_core_by_default():
    cores = os.cpu_count() or 1
    text = BatchConfig(caller_types=["typical"], route="text")
    assert auto_processes(text, AUTO_MIN_CALLS) == (min(cores, 16) if cores > 1 else 1)
    assert auto_processes(text, AUTO_MIN_CALLS - 1) == 1  # a worker's start would not pay
    assert auto_processes(BatchConfig(caller_types=["typical"], route="audio"), 1000) == 1
    paced = BatchConfig(caller_types=["typical"], route="text", pace="realtime")
    assert auto_processes(paced, 1000) == 1  # calls that mostly wait share one loop fine
    assert auto_processes(text.model_copy(update={"parallel": 1}), 1000) == 1


def test_a_script_without_a_main_guard_runs_its_batch_once(tmp_path):
    # Worker processes must not import the program that started the batch (multiprocessing's
    # spawn would run this script again in every worker).
    script = tmp_path / "sweep.py"
    script.write_text(
        "import asyncio\n"
        "from dualagent import batch\n"
        f"r = asyncio.run(batch.run(caller_types=['typical', 'hurried'], repeat=2, route='text',"
        f" processes=2, output_dir={str(tmp_path / 'out')!r}, batch_id='sweep',"
        " progress=False))\n"
        "print('DONE', len(r.calls), r.errors)\n",
        encoding="utf-8",
    )
    assert run_script(script) == ["DONE 4 0"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["sweep"]
    assert manifest(tmp_path / "out" / "sweep")["processes"] == 2


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_to_the_group_stops_a_batch_in_workers_and_leaves_every_recording_valid(
    tmp_path, signum
):
    # Sent to the whole process group, as a terminal's Ctrl-C or a service manager's stop.
    out = tmp_path / "out"
    args = [sys.executable, "-m", "dualagent", "batch", "--route", "text"]
    args += ["--caller-types", "typical", "--repeat", "400", "--processes", "2"]
    args += ["--batch-id", "stop", "--output-dir", str(out), "--no-progress"]
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    batch_dir = out / "stop"
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until some calls have finished in the workers
            if len(finished_calls(batch_dir)) >= 4 or process.poll() is not None:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the batch ended before it could be interrupted"
        workers = psutil.Process(process.pid).children()
        os.killpg(process.pid, signum)
        _stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr[-2000:]
    doc = manifest(batch_dir)
    assert doc["status"] == "interrupted"
    statuses = {c["status"] for c in doc["calls"]}
    assert "running" not in statuses and "pending" in statuses  # it stopped handing out calls
    completed = {c["call_id"] for c in doc["calls"] if c["status"] == "completed"}
    assert completed <= finished_calls(batch_dir)  # the manifest says what the recordings say
    for call_dir in (p for p in batch_dir.iterdir() if p.is_dir()):
        meta = json.loads((call_dir / "call_metadata.json").read_text(encoding="utf-8"))
        assert meta["status"] in ("completed", "interrupted"), (call_dir.name, meta["status"])
    _gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive  # the workers ended with the batch


def test_a_tool_defined_in_the_script_keeps_the_batch_in_its_process(tmp_path):
    # A worker does not import the running script, so it could not rebuild a tool defined
    # there: asked for, processes=2 is refused up front (exit-2 style, nothing written);
    # by default such a batch stays in this process and runs.
    script = tmp_path / "own_tool.py"
    script.write_text(
        "import asyncio\n"
        "from dualagent import batch\n"
        "from dualagent.agent_spec import agent_from_dict\n"
        "from dualagent.batch.processes import AUTO_MIN_CALLS\n"
        "from dualagent.errors import InputError\n"
        "def lookup(arguments):\n"
        "    return {'ok': True}\n"
        "if __name__ == '__main__':\n"
        "    spec = agent_from_dict({'name': 'mine', 'instructions': 'Help.',\n"
        "                            'tools': [{'name': 'lookup', 'python': '__main__:lookup'}]})\n"
        f"    out = {str(tmp_path / 'out')!r}\n"
        "    common = dict(route='text', agent=spec, output_dir=out, progress=False, max_turns=2)\n"
        "    try:\n"
        "        asyncio.run(batch.run(caller_types=['typical'], repeat=2, processes=2,\n"
        "                              batch_id='asked', **common))\n"
        "    except InputError as exc:\n"
        "        print('refused', exc)\n"
        "    r = asyncio.run(batch.run(caller_types=['typical'], repeat=AUTO_MIN_CALLS,\n"
        "                              batch_id='auto', **common))\n"
        "    print('auto', r.errors, r.manifest['processes'])\n",
        encoding="utf-8",
    )
    refused, auto = run_script(script)
    assert refused.startswith("refused processes=2:") and "processes=1" in refused
    assert auto == "auto 0 1"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["auto"]  # nothing for 'asked'
