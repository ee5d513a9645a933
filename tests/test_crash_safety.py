"""A process killed in the middle of a call (SIGKILL: no handler runs) leaves a recording that
opens, says the call crashed, and keeps what was said up to its last checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from dualagent.call.record import load_call
from dualagent.call.recording import CallRecorder

TIMEOUT_S = 120


def wait_for(condition, what: str) -> None:
    """Poll until ``condition()`` holds; a hang guard, not a measurement."""
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def turns_on_disk(folder: Path) -> int:
    try:
        return len(json.loads((folder / "transcript.json").read_text(encoding="utf-8"))["turns"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_a_call_killed_with_sigkill_leaves_files_that_open_and_reads_as_crashed(tmp_path):
    folder = tmp_path / "agent_conversations" / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dualagent", "run", "--conversation-id", "killed", "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: turns_on_disk(folder) >= 3 or proc.poll() is not None, "three turns")
        assert proc.poll() is None, "the call ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()

    record = load_call(folder)
    assert record.status == "crashed"
    assert record.success is False
    assert len(record.turns) >= 2 and record.turns[0]["speaker"] == "cs"
    assert record.events(), "the event journal keeps the events up to the last checkpoint"
    for name in ("stereo_recording", "caller_audio", "cs_audio"):
        info = sf.info(folder / f"{name}.wav")
        assert info.frames > 0, name
        data, _ = sf.read(folder / f"{name}.wav")
        assert len(data) == info.frames  # the header counts what is there
    json.loads((folder / "function_calls.json").read_text(encoding="utf-8"))

    shown = subprocess.run(
        [sys.executable, "-m", "dualagent", "analyze", str(folder)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert shown.returncode == 0, shown.stderr
    assert "crashed" in shown.stdout


def test_a_running_call_of_a_live_process_is_running_and_a_finished_one_has_no_journal(
    tmp_path: Path,
) -> None:
    recorder = CallRecorder(tmp_path, "live")
    recorder.add_turn({"speaker": "cs", "text": "Hello.", "start_s": 0.0, "end_s": 1.0})
    recorder.add_event("cs", "received", {"type": "response.done"}, 1.0)
    recorder.checkpoint(force=True)
    live = load_call(tmp_path / "live")
    assert live.status == "running"  # this process is alive: not a crash
    assert [e["type"] for e in live.events()] == ["response.done"]
    assert [t["text"] for t in live.turns] == ["Hello."]

    recorder.close()
    done = load_call(tmp_path / "live")
    assert done.status == "completed"
    assert not (tmp_path / "live" / "session_events.jsonl").exists()
    assert [e["type"] for e in done.events()] == ["response.done"]
    assert "process" not in done.metadata  # only a running call says who records it


def test_a_call_whose_process_is_gone_reads_as_crashed(tmp_path: Path) -> None:
    recorder = CallRecorder(tmp_path, "orphan")
    recorder.checkpoint(force=True)
    path = tmp_path / "orphan" / "call_metadata.json"
    metadata = json.loads(path.read_text(encoding="utf-8"))
    assert metadata["status"] == "running"
    metadata["process"]["create_time"] -= 1000  # same pid, another process: ours is gone
    path.write_text(json.dumps(metadata), encoding="utf-8")
    assert load_call(tmp_path / "orphan").status == "crashed"
    metadata["process"]["host"] = "another-machine"  # cannot be checked from here
    path.write_text(json.dumps(metadata), encoding="utf-8")
    assert load_call(tmp_path / "orphan").status == "running"
    recorder.close()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.slow
@pytest.mark.parametrize("sigint", ["default", "ignored"])
def test_sigterm_ends_a_run_like_ctrl_c_with_a_finalised_recording(
    tmp_path: Path, sigint: str
) -> None:
    """Also when the process started with SIGINT ignored, as a shell script's background job
    does (a scheduler stopping it with SIGTERM must still get a finalised recording)."""
    folder = tmp_path / "agent_conversations" / "termed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "dualagent", "run", "--conversation-id", "termed", "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if sigint == "ignored" else None,
    )
    try:
        wait_for(lambda: turns_on_disk(folder) >= 2 or proc.poll() is not None, "two turns")
        assert proc.poll() is None, "the call ended before it could be stopped"
        proc.terminate()  # SIGTERM
        _, stderr = proc.communicate(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    record = load_call(folder)
    assert (record.status, record.end_reason) == ("interrupted", "interrupted")
    assert record.load_error is None
    assert not (folder / "session_events.jsonl").exists()  # closed: the final files are there
    assert sf.info(folder / "stereo_recording.wav").frames > 0
