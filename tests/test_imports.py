"""Importing dualagent's modules does no work: no speech engines, no threads, no malloc tuning.

Each import runs in a fresh interpreter, so what another test loaded cannot hide a side effect.
"""

import json
import subprocess
import sys

import pytest

HEAVY_MODULES = ("piper", "pocketsphinx", "onnxruntime")

PROBE = """
import json, sys, threading
import {module}
engines = sys.modules.get("dualagent.realtime.local.engines")
print(json.dumps({{
    "heavy": [name for name in {heavy!r} if name in sys.modules],
    "threads": threading.active_count(),
    "engines_imported": engines is not None,
    "pool_started": engines is not None and engines._pool is not None,
    "malloc_tuned": engines is not None and engines._malloc_tuned,
}}))
"""


def import_in_fresh_interpreter(module: str) -> dict:
    probe = PROBE.format(module=module, heavy=HEAVY_MODULES)
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def assert_no_side_effects(found: dict) -> None:
    assert found["heavy"] == [], f"imported speech engines: {found['heavy']}"
    assert found["threads"] == 1, "started a thread"
    assert not found["pool_started"], "started the engine thread pool"
    assert not found["malloc_tuned"], "changed malloc settings"


@pytest.mark.parametrize(
    "module",
    ["dualagent.realtime.local.server", "dualagent.realtime.protocol", "dualagent.call.core"],
)
def test_importing_does_not_load_engines_start_threads_or_tune_malloc(module: str) -> None:
    assert_no_side_effects(import_in_fresh_interpreter(module))


def test_the_server_module_brings_the_engines_module_but_does_not_start_it() -> None:
    found = import_in_fresh_interpreter("dualagent.realtime.local.server")
    assert found["engines_imported"]  # so the checks above did look at it
    assert_no_side_effects(found)


def test_importing_the_package_does_no_work() -> None:
    assert_no_side_effects(import_in_fresh_interpreter("dualagent"))
