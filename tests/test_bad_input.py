"""The bad-input matrix (issue 17, item 4): what a user sees when an input is wrong.

Every case goes through the real command line (a subprocess in a fresh folder) or through
``dualagent.simulate`` and asserts the same three things: exit code 2, exactly one line on
stderr naming the bad value and the valid choices (or the valid range or shape), and nothing
written (the folder is exactly as it was before).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dualagent
from dualagent.errors import InputError

EXIT_USAGE = 2

# -------------------------------------------------------------------------------- helpers


def _snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root`` with (is a dir, size, mtime): any write changes it."""
    return {
        str(p.relative_to(root)): (p.is_dir(), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


def _env() -> dict[str, str]:
    """The test process's environment without keys or tokens (conftest cleared DUALAGENT_*)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "DUALAGENT_TOKEN")}
    env["PYTHONWARNINGS"] = "ignore"  # a library's warning is not the product's error line
    return env


def assert_refused(cwd: Path, *args: str, names: tuple[str, ...]) -> str:
    """``dualagent ARGS`` in ``cwd``: exit 2, one stderr line containing every one of
    ``names`` (the value, the choices or range), nothing written under ``cwd``."""
    before = _snapshot(cwd)
    proc = subprocess.run(
        [sys.executable, "-m", "dualagent", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == EXIT_USAGE, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert _snapshot(cwd) == before, "files were written"
    return lines[0]


# ------------------------------------------------------------------------- input files

PERSONA = """\
name: mine
personality:
  type: custom
  patience_level: 5
  tendency_to_interrupt: 0.3
goal:
  primary_goal: Replace my card
"""

SCENARIO = """\
name: mine
persona: typical
intent: lost_card
checks:
  card blocked:
    kind: tool_called
    name: block_card
"""

# name -> (file text, what the one line must name)
BAD_PERSONAS = {
    "missing-field": (
        PERSONA.replace("goal:\n  primary_goal: Replace my card\n", ""),
        ("goal", "missing"),
    ),
    "wrong-type": (
        PERSONA.replace("patience_level: 5", "patience_level: high"),
        ("patience_level", "'high'"),
    ),
    "patience-11": (
        PERSONA.replace("patience_level: 5", "patience_level: 11"),
        ("patience_level", "11", "10"),
    ),
    "interrupt-1.5": (
        PERSONA.replace("tendency_to_interrupt: 0.3", "tendency_to_interrupt: 1.5"),
        ("tendency_to_interrupt", "1.5", "1"),
    ),
    "unknown-field": (PERSONA + "mood: grumpy\n", ("mood", "unknown field", "personality")),
    "invalid-yaml": ("name: mine\npersonality: [unclosed\n", ("persona.yaml", "not valid YAML")),
    "not-a-mapping": ("- just\n- a list\n", ("persona.yaml",)),
}

BAD_SCENARIOS = {
    "missing-persona": (SCENARIO.replace("persona: typical\n", ""), ("persona", "missing")),
    "unknown-persona": (
        SCENARIO.replace("persona: typical", "persona: angry"),
        ("angry", "typical"),
    ),
    "unknown-check-kind": (
        SCENARIO.replace("kind: tool_called", "kind: telepathy"),
        ("telepathy", "tool_called"),
    ),
    "wrong-type": (SCENARIO + "max_turns: many\n", ("max_turns", "'many'")),
    "out-of-range": (SCENARIO + "duration_s: 4000\n", ("duration_s", "4000", "1800")),
    "invalid-yaml": ("name: mine\npersona: {typical\n", ("scenario.yaml", "not valid YAML")),
}


# ------------------------------------------------------------------------ dualagent run

LONG_ID = "a" * 129
RUN_CASES = {
    # name -> (flags, what the one line must name)
    "caller-type": (["--caller-type", "angry"], ("'angry'", "typical", "frustrated")),
    "caller-type-missing-file": (["--caller-type", "nope.yaml"], ("nope.yaml", "not found")),
    "scenario": (["--scenario", "nope"], ("'nope'", "lost_gold_card")),
    "backend-http": (["--backend", "http://x"], ("'http://x'", "local, openai", "ws://")),
    "backend-ftp": (["--backend", "ftp://x"], ("'ftp://x'", "local, openai", "ws://")),
    "cs-backend": (["--cs-backend", "tcp:1"], ("'tcp:1'", "local, openai", "ws://")),
    "route": (["--route", "fax"], ("'fax'", "audio", "text")),
    "pace": (["--pace", "slow"], ("'slow'", "fast", "realtime")),
    "audio-format": (["--audio-format", "mp3"], ("'mp3'", "wav", "flac", "ogg")),
    "line": (["--line", "tin-can"], ("tin-can", "clean", "telephone", "noisy")),
    "intent": (["--intent", "mortgage"], ("'mortgage'", "lost_card")),
    "duration-0": (["--duration", "0"], ("duration", "0", "1 to 1800")),
    "duration-negative": (["--duration", "-5"], ("duration", "-5", "1 to 1800")),
    "duration-over-30-min": (["--duration", "1801"], ("duration", "1801", "1 to 1800")),
    "duration-not-a-number": (["--duration", "soon"], ("'soon'", "--duration", "float")),
    "max-turns-0": (["--max-turns", "0"], ("max_turns", "0", "positive")),
    "seed-not-a-number": (["--seed", "x"], ("'x'", "--seed", "int")),
    "id-slash": (["--conversation-id", "a/b"], ("'a/b'", "letters, digits")),
    "id-dotdot": (["--conversation-id", ".."], ("'..'", "letters, digits")),
    "id-too-long": (["--conversation-id", LONG_ID], (LONG_ID[:20], "128")),
    "id-space": (["--conversation-id", "a b"], ("'a b'", "letters, digits")),
    "hosted-without-key": (["--backend", "openai"], ("openai", "OPENAI_API_KEY")),
    "hosted-caller-without-key": (["--caller-backend", "openai"], ("openai", "OPENAI_API_KEY")),
    "unknown-flag": (["--colour", "red"], ("--colour",)),
}


@pytest.mark.parametrize("flags, names", RUN_CASES.values(), ids=RUN_CASES.keys())
def test_run_refuses_bad_flags(tmp_path: Path, flags: list[str], names: tuple[str, ...]) -> None:
    assert_refused(tmp_path, "run", *flags, names=names)


@pytest.mark.parametrize("text, names", BAD_PERSONAS.values(), ids=BAD_PERSONAS.keys())
def test_run_refuses_bad_persona_file(tmp_path: Path, text: str, names: tuple[str, ...]) -> None:
    (tmp_path / "persona.yaml").write_text(text)
    assert_refused(tmp_path, "run", "--caller-type", "persona.yaml", names=names)


@pytest.mark.parametrize("text, names", BAD_SCENARIOS.values(), ids=BAD_SCENARIOS.keys())
def test_run_refuses_bad_scenario_file(tmp_path: Path, text: str, names: tuple[str, ...]) -> None:
    (tmp_path / "scenario.yaml").write_text(text)
    assert_refused(tmp_path, "run", "--scenario", "scenario.yaml", names=names)


def test_run_refuses_an_existing_conversation_and_leaves_it_alone(tmp_path: Path) -> None:
    folder = tmp_path / "agent_conversations" / "mine"
    folder.mkdir(parents=True)
    (folder / "call_metadata.json").write_text('{"status": "completed"}')
    assert_refused(tmp_path, "run", "--conversation-id", "mine", names=("'mine'", "already exists"))
    assert (folder / "call_metadata.json").read_text() == '{"status": "completed"}'


OUTPUT_DIR_CASES = {
    "a-file": ("out", ("out", "not a folder")),
    "under-a-file": ("out/sub", ("out", "not a folder")),
}


@pytest.mark.parametrize(
    "output_dir, names", OUTPUT_DIR_CASES.values(), ids=OUTPUT_DIR_CASES.keys()
)
def test_run_refuses_an_output_dir_it_cannot_write(
    tmp_path: Path, output_dir: str, names: tuple[str, ...]
) -> None:
    (tmp_path / "out").write_text("a file, not a folder")
    assert_refused(tmp_path, "run", "--output-dir", output_dir, names=names)


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: permission bits do not stop root from writing (the path-under-a-"
    "file case covers an unwritable output dir)",
)
def test_run_refuses_a_read_only_output_dir(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        assert_refused(tmp_path, "run", "--output-dir", "locked", names=("locked", "not writable"))
    finally:
        locked.chmod(0o700)


# ------------------------------------------------------------------- dualagent.simulate


SIMULATE_CASES = {
    "id-nul": ({"conversation_id": "a\x00b"}, ("'a\\x00b'", "letters, digits")),
    "id-dotdot": ({"conversation_id": ".."}, ("'..'", "letters, digits")),
    "caller-type": ({"caller_type": "angry"}, ("'angry'", "typical")),
    "duration-0": ({"duration": 0}, ("duration", "0", "1 to 1800")),
    "route": ({"route": "fax"}, ("route", "'fax'", "audio", "text")),
    "unknown-field": ({"colour": "red"}, ("colour", "unknown field", "caller_type")),
}


@pytest.mark.parametrize("fields, names", SIMULATE_CASES.values(), ids=SIMULATE_CASES.keys())
async def test_simulate_raises_one_line(
    tmp_path: Path, fields: dict[str, object], names: tuple[str, ...]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(InputError) as info:
        await dualagent.simulate(output_dir=out, **fields)
    message = str(info.value)
    assert "\n" not in message, message
    for name in names:
        assert name in message, (name, message)
    assert not out.exists()


# ---------------------------------------------------------------------- dualagent batch

BATCH_CASES = {
    "unknown-config": (["--config", "nope"], ("'nope'", "default", "difficult_customers")),
    "repeat-0": (["--config", "default", "--repeat", "0"], ("'0'", "positive")),
    "caller-types": (["--caller-types", "typical,angry"], ("'angry'", "typical", "frustrated")),
    "bad-config-file": (["--config", "bad.yaml"], ("bad.yaml", "colour", "unknown field")),
    "invalid-config-yaml": (["--config", "broken.yaml"], ("broken.yaml", "not valid YAML")),
    "duration": (["--config", "default", "--duration", "0"], ("duration", "0", "1 to 1800")),
    "batch-id": (["--config", "default", "--batch-id", "../x"], ("'../x'", "letters, digits")),
}


@pytest.mark.parametrize("flags, names", BATCH_CASES.values(), ids=BATCH_CASES.keys())
def test_batch_refuses_bad_input(tmp_path: Path, flags: list[str], names: tuple[str, ...]) -> None:
    (tmp_path / "bad.yaml").write_text("name: bad\ncaller_types: [typical]\ncolour: red\n")
    (tmp_path / "broken.yaml").write_text("name: bad\ncaller_types: [typical\n")
    assert_refused(tmp_path, "batch", *flags, names=names)


# ---------------------------------------------------------------------- dualagent serve


SERVE_CASES = {
    "public-host-without-token": (["--host", "0.0.0.0"], ("'0.0.0.0'", "token", "127.0.0.1")),
    "hostname-without-token": (["--host", "example.org"], ("'example.org'", "token")),
    "short-token": (["--token", "abc"], ("token", "8 characters")),
    "port": (["--port", "70000"], ("port", "70000", "65535")),
    "max-conversations-0": (["--max-conversations", "0"], ("max_conversations", "0", "1")),
    "retention-days": (["--retention-days", "-1"], ("retention_days", "-1", "0")),
    "executor": (["--executor", "ftp://x"], ("'ftp://x'", "local", "dask://")),
}


@pytest.mark.parametrize("flags, names", SERVE_CASES.values(), ids=SERVE_CASES.keys())
def test_serve_refuses_before_binding(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    names: tuple[str, ...],
) -> None:
    """In-process, with the server replaced: a refusal must come before anything binds."""
    from dualagent.cli.main import main
    from dualagent.service import server

    async def must_not_serve(settings: object) -> None:
        raise AssertionError("the service was started")

    monkeypatch.setattr(server, "serve", must_not_serve)
    monkeypatch.delenv("DUALAGENT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["serve", *flags])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE, err
    assert len(err.splitlines()) == 1, err
    for name in names:
        assert name in err, (name, err)
    assert list(tmp_path.iterdir()) == []
