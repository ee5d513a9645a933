"""The package as users get it: a wheel, installed without ``-e``, runs from any folder."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.mark.slow
def test_a_built_wheel_runs_a_call_lists_scenarios_and_loads_the_notebooks_imports(
    tmp_path: Path,
) -> None:
    # Build offline from this checkout (the build backend is already installed).
    dist = tmp_path / "dist"
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        dist,
        ROOT,
        cwd=tmp_path,
    )
    [wheel] = dist.glob("dualagent-*.whl")
    # Every data file the package reads at run time is in the wheel.
    names = set(zipfile.ZipFile(wheel).namelist())
    package_data = [
        p.relative_to(ROOT).as_posix()
        for pattern in ("data/**/*.yaml", "**/templates/*.j2", "service/static/*")
        for p in (ROOT / "dualagent").glob(pattern)
    ]
    assert package_data and not [f for f in package_data if f not in names]

    # A fresh venv with only the wheel installed; its dependencies come from this test's
    # environment through a path entry (not its .pth hooks, so our editable install stays out).
    env = tmp_path / "venv"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = Path(
        run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "-q",
        wheel,
        cwd=tmp_path,
    )

    work = tmp_path / "work"  # not the checkout: nothing may come from the source tree
    work.mkdir()
    where = run(python, "-c", "import dualagent; print(dualagent.__file__)", cwd=work).stdout
    assert str(site) in where, where

    listing = run(python, "-m", "dualagent", "scenarios", cwd=work).stdout
    assert "hurried_interrupter" in listing and "lost_gold_card" in listing
    personas = run(python, "-m", "dualagent", "personas", cwd=work).stdout
    assert all(name in personas for name in ("typical", "frustrated", "elderly", "hurried"))
    run(python, "-m", "dualagent", "run", "--route", "text", "--conversation-id", "w1", cwd=work)
    assert (work / "agent_conversations" / "w1" / "call_metadata.json").is_file()

    # What the notebooks import, and the package data they need (templates, configs).
    code = (
        "from dualagent import analysis\n"
        "from dualagent.analysis import plots, report\n"
        "from dualagent.widgets import CallApp\n"
        "from dualagent.realtime.local.server import LocalRealtimeServer\n"
        "import dualagent.batch\n"
        "print(dualagent.batch.list_configs())\n"
        "from dualagent.call.result import CallResult\n"
        "print(CallResult(__import__('pathlib').Path('agent_conversations/w1'))._repr_html_())\n"
    )
    out = run(python, "-c", code, cwd=work).stdout
    assert "w1" in out and "<table>" in out
