"""CallOptions: one model of a call's parameters, its precedence rule, and the views of it."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dualagent
from dualagent.call.options import NOT_FLAGS, CallOptions, cli_fields
from dualagent.call.plan import plan_call
from dualagent.call.result import CallResult
from dualagent.cli.main import build_parser
from dualagent.errors import InputError
from dualagent.scenarios import load_scenario
from dualagent.widgets import CallApp

NOT_OPTIONS = {"help", "verbose", "json"}  # flags of `run` about printing, not about the call


def run_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def test_every_field_has_a_run_flag_and_every_flag_a_field() -> None:
    flags = {a.dest for a in run_parser()._actions} - NOT_OPTIONS
    fields = set(CallOptions.model_fields)
    assert flags == set(cli_fields()), "a run flag without a field, or a field without a flag"
    assert fields - flags == set(NOT_FLAGS)
    for action in run_parser()._actions:
        if action.dest in fields:
            assert action.option_strings[0] == "--" + action.dest.replace("_", "-")
            assert action.help, f"--{action.dest} has no help text"


def test_an_unset_flag_reaches_the_model_as_unset() -> None:
    args = run_parser().parse_args(["--scenario", "hurried_interrupter", "--route", "text"])
    given = {name: getattr(args, name) for name in cli_fields() if hasattr(args, name)}
    assert given == {"scenario": "hurried_interrupter", "route": "text"}


def test_precedence_explicit_over_scenario_over_default(tmp_path: Path) -> None:
    scenario = load_scenario("hurried_interrupter")
    assert scenario.duration_s == 240

    from_scenario = plan_call(CallOptions(scenario="hurried_interrupter", output_dir=tmp_path))
    assert from_scenario.settings.max_duration_s == 240
    assert from_scenario.persona.name == "hurried"
    assert from_scenario.settings.max_turns == scenario.turn_limit

    explicit = plan_call(
        CallOptions(scenario="hurried_interrupter", duration=90, max_turns=3, output_dir=tmp_path)
    )
    assert (explicit.settings.max_duration_s, explicit.settings.max_turns) == (90, 3)

    default = plan_call(CallOptions(output_dir=tmp_path))
    assert default.settings.max_duration_s == 300
    assert default.persona.name == "typical"
    assert default.metadata["line"]["name"] == "clean"


def test_another_caller_type_plays_the_scenarios_goal(tmp_path: Path) -> None:
    scenario = load_scenario("dispute_unknown_charge")
    assert scenario.goal is not None
    plan = plan_call(
        CallOptions(scenario="dispute_unknown_charge", caller_type="hurried", output_dir=tmp_path)
    )
    assert plan.persona.name == "hurried"
    assert plan.persona.personality.type.value == "hurried"
    assert plan.persona.goal == scenario.goal


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"duration": 5000}, "duration: out of range; valid: 1 to 1800 seconds (got 5000)"),
        ({"route": "tcp"}, "route: Input should be 'audio' or 'text' (got 'tcp')"),
        ({"durration": 60}, "durration: unknown field (valid fields: duration, max_turns"),
        ({"backend": "http://x"}, "valid choices: local, openai, or a ws:// / wss:// URL"),
        ({"max_turns": 0}, "max_turns: not allowed; valid: a positive number"),
        ({"caller_type": "angry"}, "valid choices: elderly, frustrated, hurried, typical"),
        ({"scenario": "nope"}, "unknown scenario 'nope'"),
        ({"intent": "refund"}, "invalid intent 'refund'; valid choices: lost_card"),
    ],
)
async def test_bad_options_fail_in_one_line_before_anything_is_written(
    values, needle, tmp_path: Path
) -> None:
    out = tmp_path / "calls"
    with pytest.raises(InputError) as info:
        await dualagent.simulate(output_dir=out, **values)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
    assert not out.exists()


def test_run_uses_the_scenarios_duration_unless_told_otherwise(tmp_path: Path) -> None:
    """`dualagent run --scenario hurried_interrupter` once ran with the flag's 300 s default."""

    def run(*args: str) -> dict:
        proc = subprocess.run(
            [sys.executable, "-m", "dualagent", "run", "--route", "text", "--json", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        metadata = tmp_path / summary["path"] / "call_metadata.json"
        return json.loads(metadata.read_text(encoding="utf-8"))

    scenario = run("--scenario", "hurried_interrupter", "--output-dir", "a")
    assert scenario["duration_limit_s"] == 240
    assert scenario["scenario"]["name"] == "hurried_interrupter"
    explicit = run("--scenario", "hurried_interrupter", "--duration", "120", "--output-dir", "b")
    assert explicit["duration_limit_s"] == 120


async def test_options_object_and_keywords_give_the_same_call(tmp_path: Path, local_server):
    options = CallOptions(route="text", seed=4, caller_type="frustrated")
    a = await dualagent.simulate(
        options=options, output_dir=tmp_path / "a", local_server=local_server
    )
    b = await dualagent.simulate(
        "frustrated", route="text", seed=4, output_dir=tmp_path / "b", local_server=local_server
    )
    assert [t["text"] for t in a.turns] == [t["text"] for t in b.turns]
    assert a.metadata["seed"] == b.metadata["seed"] == 4


def test_a_transcript_with_markup_renders_escaped_in_a_notebook(tmp_path: Path) -> None:
    folder = tmp_path / "call"
    folder.mkdir()
    (folder / "call_metadata.json").write_text(
        json.dumps({"conversation_id": "call", "status": "completed", "turn_count": 1})
    )
    turn = {"speaker": "caller", "text": "<script>alert(1)</script>", "start_s": 0.0}
    (folder / "transcript.json").write_text(json.dumps({"turns": [turn]}))
    (folder / "function_calls.json").write_text(json.dumps({"calls": []}))
    html = CallResult(folder)._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_the_widgets_are_a_view_of_call_options(tmp_path: Path) -> None:
    app = CallApp(output_dir=tmp_path)
    app.scenario.value = "hurried_interrupter"
    assert app.caller_type.value == "hurried"  # the scenario's caller, shown
    assert app.duration.value == 240  # and its limit
    app.route.value = "text"
    options = app.options()
    assert isinstance(options, CallOptions)
    assert (options.scenario, options.route, options.duration) == (
        "hurried_interrupter",
        "text",
        240,
    )
    assert app.max_turns == load_scenario("hurried_interrupter").turn_limit
