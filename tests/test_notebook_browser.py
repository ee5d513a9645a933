"""01_explore in a real JupyterLab, as a new user meets it: Run All, then press *Run call*.

JupyterLab runs headless on 127.0.0.1 with its own temporary config, data, runtime and IPython
folders (a developer's settings cannot leak in), no news or update checks, and a kernelspec
that is this venv's Python. Debian's Chromium is driven by Playwright through
``executable_path``, as in tests/test_monitor_browser.py (Playwright's own browser download is
not used). The page may reach 127.0.0.1 only; any other request is blocked and fails the test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "01_explore.ipynb"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
async_api = pytest.importorskip("playwright.async_api")
pytest.importorskip("jupyterlab")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(1200),  # two real-speech calls and a browser on two busy cores
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="needs Debian's chromium (apt-get install chromium)"
    ),
]

TIMEOUT_MS = 480_000  # generous: every wait ends on what is shown, never on a stopwatch
SERVER_START_S = 240.0  # how long JupyterLab may take to answer at all on a busy machine

# Server settings: nothing may phone home (news feed, update check, PyPI extension listings),
# and the only kernel is the one this test installs (no "native" fallback kernel).
SERVER_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
    "ServerApp": {"terminals_enabled": False},
    "KernelSpecManager": {"ensure_native_kernel": False},
}
# The announcements plugin would ask "receive official Jupyter news?" on first start.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]

    def api(self, path: str) -> object:
        request = urllib.request.Request(
            f"{self.url}{path}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)


def artifacts_dir() -> Path | None:
    """``DUALAGENT_ARTIFACTS``: where CI keeps screenshots. tests/conftest.py clears every
    ``DUALAGENT_*`` variable at import (a hermetic suite), so read the environment this process
    started with as well."""
    value = os.environ.get("DUALAGENT_ARTIFACTS")
    initial = Path("/proc/self/environ")
    if value is None and initial.is_file():
        for entry in initial.read_bytes().split(b"\0"):
            if entry.startswith(b"DUALAGENT_ARTIFACTS="):
                value = entry.split(b"=", 1)[1].decode()
    return Path(value) if value else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def hermetic_env(base: Path) -> dict[str, str]:
    """Environment for JupyterLab and its kernel: every Jupyter/IPython folder is temporary."""
    dirs = {
        "JUPYTER_CONFIG_DIR": base / "config",
        "JUPYTER_DATA_DIR": base / "data",
        "JUPYTER_RUNTIME_DIR": base / "runtime",
        "JUPYTERLAB_SETTINGS_DIR": base / "config" / "lab" / "user-settings",
        "JUPYTERLAB_WORKSPACES_DIR": base / "config" / "lab" / "workspaces",
        "IPYTHONDIR": base / "ipython",
        "MPLCONFIGDIR": base / "matplotlib",
    }
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON"))}
    env.update({name: str(path) for name, path in dirs.items()})
    env["JUPYTER_PATH"] = str(base / "kernel" / "share" / "jupyter")  # our kernelspec first
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with running_lab(tmp_path) as server:
        yield server


@contextlib.contextmanager
def running_lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a free 127.0.0.1 port over a folder holding a copy of 01_explore."""
    base = tmp_path / "jupyter"
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    env = hermetic_env(base)
    (base / "config" / "jupyter_server_config.json").write_text(json.dumps(SERVER_CONFIG))
    (base / "config" / "labconfig").mkdir()
    (base / "config" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
    # The notebook's kernel ("python3") is this venv's Python, wherever Jupyter looks.
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(base / "kernel")],
        env=env,
        check=True,
        capture_output=True,
    )
    token = secrets.token_hex(16)
    port = free_port()
    log = tmp_path / "jupyterlab.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.allow_root=True",  # CI runs as root; the server is ours alone
                f"--IdentityProvider.token={token}",
                f"--ServerApp.root_dir={root}",
            ],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kernel goes down with it
        )
    server = Lab(f"http://127.0.0.1:{port}", token, root, log, process)
    try:
        wait_until_serving(server)
        yield server
    finally:
        stop(server)


def wait_until_serving(lab: Lab) -> None:
    """Poll the status API until it answers; fail with the log if the server exits."""
    deadline = time.monotonic() + SERVER_START_S
    while True:
        if lab.process.poll() is not None:
            pytest.fail(f"JupyterLab exited:\n{lab.log.read_text()[-4000:]}")
        try:
            lab.api("/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer:\n{lab.log.read_text()[-4000:]}")
            time.sleep(0.5)


def stop(lab: Lab) -> None:
    """Shut the server down (it stops its kernels); kill what it started if they linger."""
    if lab.process.poll() is not None:
        return
    started: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        # Kernels run in their own sessions: remember them by id before the server goes.
        started = psutil.Process(lab.process.pid).children(recursive=True)
    request = urllib.request.Request(
        f"{lab.url}/api/shutdown", method="POST", headers={"Authorization": f"token {lab.token}"}
    )
    try:
        urllib.request.urlopen(request, timeout=30).close()
        lab.process.wait(timeout=60)
    except (urllib.error.URLError, OSError, subprocess.TimeoutExpired):
        lab.process.kill()
        lab.process.wait(timeout=60)
    for process in started:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(started, timeout=60)


async def test_01_explore_runs_in_jupyterlab_and_the_app_makes_a_call(lab: Lab, tmp_path: Path):
    # The notebook's kernel is this venv's Python, from the spec this test installed.
    specs = lab.api("/api/kernelspecs")
    assert isinstance(specs, dict) and list(specs["kernelspecs"]) == ["python3"]
    assert Path(specs["kernelspecs"]["python3"]["spec"]["argv"][0]) == Path(sys.executable)

    shot = tmp_path / "01_explore_call_app.png"
    outside: list[str] = []  # requests that tried to leave 127.0.0.1
    problems: list[str] = []  # page errors, shown if a wait fails
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 2000})
            page.set_default_timeout(TIMEOUT_MS)

            async def local_only(route: async_api.Route) -> None:
                url = route.request.url
                if url.startswith((lab.url, f"blob:{lab.url}", "data:")):  # the page's own
                    await route.continue_()
                else:
                    outside.append(url)
                    await route.abort()

            await page.route("**/*", local_only)
            page.on("pageerror", lambda error: problems.append(str(error)))
            try:
                outcome = await run_all_and_call(page, lab)
            except async_api.TimeoutError:
                await page.screenshot(path=str(shot), full_page=False)
                keep_screenshots(tmp_path)
                pytest.fail(
                    f"JupyterLab did not show what was expected (screenshot {shot}); "
                    f"page errors: {problems}\nserver log:\n{lab.log.read_text()[-3000:]}"
                )
            await page.screenshot(path=str(shot), full_page=False)
        finally:
            await browser.close()

    keep_screenshots(tmp_path)
    assert not outside, f"the page tried to leave 127.0.0.1: {outside}"
    assert shot.stat().st_size > 10_000
    # The defaults make a call that reaches its goal (docs/notebooks.md).
    assert "completed" in outcome and "success" in outcome, outcome
    calls = [p for p in (lab.root / "agent_conversations").iterdir() if p.is_dir()]
    assert len(calls) == 2, calls  # the deep dive's call and the app's


async def run_all_and_call(page: async_api.Page, lab: Lab) -> str:
    """Open the notebook, Run All, press the app's Run call; the outcome table's text."""
    step("open the notebook")
    await page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
    await page.wait_for_selector(".jp-NotebookPanel .jp-CodeCell")
    # The kernel is up and idle (the status bar; Run All before that asks for a kernel).
    await page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").wait_for()

    step("run all cells")
    # Run → Run All Cells, through the menu bar as a user would.
    await page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    await page.locator("li[data-command='runmenu:run-all']").click()

    # The call app renders in its cell: press its Run call button.
    app = page.locator(".jp-CodeCell").filter(has=page.get_by_role("button", name="Run call"))
    run_call = app.get_by_role("button", name="Run call")
    step("wait for the app")
    await run_call.wait_for(state="visible")
    await run_call.scroll_into_view_if_needed()
    await run_call.click()

    step("wait for the transcript and the players")
    # The live transcript fills in, then the call's players appear in the app (not the deep
    # dive's further down, which are outside this cell).
    await app.locator("b", has_text="AGENT:").first.wait_for(state="attached")
    await app.locator("b", has_text="CALLER:").first.wait_for(state="attached")
    await app.locator("audio").nth(2).wait_for(state="attached")  # stereo, caller, agent
    await app.get_by_text("Done:").wait_for(state="attached")
    assert await app.locator("audio").count() == 3
    await app.scroll_into_view_if_needed()
    await app.screenshot(path=str(Path(lab.root).parent / "01_explore_call_app_cell.png"))
    outcome = await app.locator("table").first.inner_text()

    step("wait for Run All to finish")
    # Typing into widgets while a cell still runs can leave an update in the page's widget
    # buffer (ipywidgets sends one message per model until the kernel reports it idle): let
    # the last cell finish first, as it would for a user reading down to the builder.
    last = page.locator(".jp-NotebookPanel .jp-CodeCell").last
    await last.locator(".jp-InputPrompt", has_text=re.compile(r"\[\d+\]")).wait_for()
    await page.locator(".jp-StatusBar-Widget", has_text="Python 3 (ipykernel) | Idle").wait_for()

    step("the scenario builder tab")
    await app.get_by_role("tab", name="Scenario builder").click()
    await app.get_by_text("✓ valid").wait_for()
    name = app.get_by_role("textbox", name="Name", exact=True)
    await name.fill("my scenario")  # typed: the form says what is wrong, naming the field
    await app.get_by_text("✗ scenario: name:").wait_for()
    await name.fill("my_scenario")
    await app.get_by_text("✓ valid").wait_for()
    await app.screenshot(path=str(Path(lab.root).parent / "01_explore_call_app_builder.png"))
    return outcome


def step(what: str) -> None:
    """Say where the test is (shown with a failure: which wait did not end)."""
    print(f"{time.strftime('%H:%M:%S')} {what}", flush=True)


def keep_screenshots(tmp_path: Path) -> None:
    """Copy the screenshots to ``DUALAGENT_ARTIFACTS`` when CI sets it."""
    artifacts = artifacts_dir()
    if artifacts is None:
        return
    artifacts.mkdir(parents=True, exist_ok=True)
    for png in tmp_path.glob("01_explore_call_app*.png"):
        shutil.copy(png, artifacts / png.name)
