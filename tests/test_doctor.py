"""`dualagent doctor` checks a real installation and writes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def doctor(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "dualagent", "doctor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


@pytest.mark.slow
def test_doctor_passes_here_and_writes_nothing(tmp_path: Path) -> None:
    proc = doctor(cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for check in ("speech engines load", "speech round trip", "embedded Realtime server answers"):
        [line] = [x for x in lines if check in x]
        assert line.startswith("ok"), line
    assert any(x.startswith("skip") and "OPENAI_API_KEY" in x for x in lines)
    assert list(tmp_path.iterdir()) == []  # not even the output folder


@pytest.mark.slow
def test_doctor_names_an_output_folder_it_cannot_write(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = doctor("--output-dir", str(blocker / "calls"), cwd=tmp_path)
    assert proc.returncode == 1
    [line] = [x for x in proc.stdout.splitlines() if "output folder writable" in x]
    assert line.startswith("FAIL") and "is a file" in line
    assert "fix: choose another --output-dir" in proc.stdout


@pytest.mark.slow
def test_local_server_selftest_hears_what_it_said(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dualagent", "local-server", "--selftest"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    said, heard = proc.stdout.splitlines()[:2]
    assert said.startswith("said:") and heard.startswith("heard:")
    assert "first bank" in heard and "alex" in heard
