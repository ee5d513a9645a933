"""dualagent in the user's CI: ``batch --min-success RATE`` (exit 1 below it) and ``--junit FILE``.

Real text-route batches on the embedded server. The failing call is an honest one: in
``cannot_verify_identity`` the caller gives a wrong date of birth, the agent rightly transfers
the call, and the caller's goal (a replacement card) fails by the scenario's own criteria.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import dualagent.cli
from dualagent import batch
from dualagent.batch.ci import Gate, write_junit
from dualagent.call.record import load_call
from dualagent.errors import InputError

ITEMS = ["--caller-types", "typical", "--scenarios", "lost_gold_card,cannot_verify_identity"]


def cli(*args: str) -> int:
    try:
        return dualagent.cli.main(["batch", *args])
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        return int(exc.code or 0)


def manifest(batch_dir: Path) -> dict:
    return json.loads((batch_dir / "batch.json").read_text(encoding="utf-8"))


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("classname"): case for case in root.iter("testcase")}


def case_properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name"): p.get("value") for p in case.iter("property")}


def test_min_success_gates_the_exit_code_and_junit_lists_every_call(tmp_path, capsys):
    out, report = tmp_path / "runs", tmp_path / "results.xml"
    common = ["--route", "text", "--output-dir", str(out), "--no-progress"]

    # Above the observed rate: the batch runs, says so in one line and exits 1.
    code = cli(*ITEMS, *common, "--batch-id", "ci", "--min-success", "0.9", "--junit", str(report))
    printed = capsys.readouterr()
    calls = {c["call_id"]: c for c in manifest(out / "ci")["calls"]}
    assert calls["cannot_verify_identity-000"]["outcome"] == "failure"  # the honest failure
    figures = manifest(out / "ci")["overall"]
    rate = figures["success_rate"]
    assert figures["judged"] == 3 and rate < 0.9
    assert code == 1, printed
    [line] = [x for x in printed.err.splitlines() if "min_success" in x]
    assert line == (
        f"dualagent: success rate {rate:.4g} ({figures['successes']} of 3 judged calls) "
        "is below min_success 0.9"
    )
    assert f"junit:    {report}" in printed.out

    # The report: a suite per scenario or caller type, a case per call, failures explained.
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    failed = 3 - figures["successes"]
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "3",
        str(failed),
        "0",
        "0",
    )
    assert [s.get("name") for s in root.iter("testsuite")] == [
        "typical",
        "lost_gold_card",
        "cannot_verify_identity",
    ]
    by_class = cases(root)
    for item, case in by_class.items():
        entry = next(c for c in calls.values() if c["item"] == item)
        assert case.get("name") == f"{entry['call_id']} (seed {entry['seed']})"
        props = case_properties(case)
        assert Path(props["recording"]) == (out / "ci" / entry["call_id"]).resolve()
        assert load_call(props["recording"]).conversation_id == entry["call_id"]
        assert props["outcome"] == entry["outcome"]
        failure = case.find("failure")
        assert (failure is None) == (entry["outcome"] == "success")
    failure = by_class["cannot_verify_identity"].find("failure")
    record = load_call(out / "ci" / "cannot_verify_identity-000")
    unmet = record.outcome_details["unmet_criteria"]
    assert failure.get("type") == record.end_reason == "transferred_to_human"
    assert f"unmet: {', '.join(unmet)}" in failure.get("message")
    assert "failure conditions met: transferred to human" in failure.get("message")
    assert "end reason transferred_to_human" in failure.get("message")
    assert "unmet criteria:\n  - card replacement confirmed: " in failure.text
    assert "utterances:\n" in failure.text and "transfer you to a colleague" in failure.text

    # At the observed rate: the gate is met (resume re-runs nothing, it re-checks the batch).
    code = cli(
        *common, "--resume", "--batch-id", "ci", "--min-success", str(rate), "--junit", str(report)
    )
    printed = capsys.readouterr()
    assert code == 0, printed
    assert f"reaches min_success {rate:g}" in printed.out and "min_success" not in printed.err
    assert manifest(out / "ci")["counts"]["resumed"] == 3
    assert ET.parse(report).getroot().get("failures") == str(failed)


async def test_the_gate_from_python_and_from_a_config(tmp_path, local_server):
    settings = {
        "scenarios": ["lost_gold_card", "cannot_verify_identity"],
        "route": "text",
        "min_success": 1.0,  # a config holds the threshold, as it holds repeat and retries
    }
    result = await batch.run(
        settings,
        output_dir=tmp_path,
        batch_id="py",
        progress=False,
        local_server=local_server,
        junit=tmp_path / "py.xml",
    )
    gate = result.gate
    assert isinstance(gate, Gate) and not gate.passed
    assert (gate.successes, gate.judged, gate.success_rate) == (1, 2, 0.5)
    assert gate.message() == "success rate 0.5 (1 of 2 judged calls) is below min_success 1"
    assert batch.load_batch(result.path).gate == gate  # kept with the batch (batch.json)
    assert ET.parse(tmp_path / "py.xml").getroot().get("tests") == "2"

    # A run's value beats the config's; none at all: no gate.
    lowered = await batch.run(
        settings,
        min_success=0.5,
        output_dir=tmp_path,
        batch_id="py",
        resume=True,
        progress=False,
        local_server=local_server,
    )
    assert lowered.gate.passed and lowered.gate.min_success == 0.5
    assert manifest(tmp_path / "py")["config"]["min_success"] == 0.5
    no_gate = {k: v for k, v in settings.items() if k != "min_success"}
    plain = await batch.run(
        no_gate,
        output_dir=tmp_path,
        batch_id="py",
        resume=True,
        progress=False,
        local_server=local_server,
    )
    assert plain.gate is None


def test_junit_shows_errors_unjudged_and_unfinished_calls(tmp_path):
    """A batch folder written by hand: the verdicts a real batch rarely shows at once."""

    def call(call_id: str, status: str, end_reason: str | None, outcome: str | None) -> dict:
        meta = {"conversation_id": call_id, "status": status, "end_reason": end_reason}
        if status == "error":
            meta["error"] = "RealtimeConnectionError: connection refused"
        if outcome:
            meta["outcome"] = {
                "result": outcome,
                "unmet_criteria": [] if outcome == "success" else ["card replacement confirmed"],
                "failure_conditions_met": [],
            }
        (tmp_path / call_id).mkdir()
        (tmp_path / call_id / "call_metadata.json").write_text(json.dumps(meta))
        entry = {"call_id": call_id, "kind": "caller_type", "item": "typical", "seed": 7}
        return {**entry, "path": call_id, **load_call(tmp_path / call_id).summary()}

    doc = {
        "batch_id": "hand",
        "started_at": "2026-11-27T10:00:00.000+00:00",
        "config": {"repeat": 5, "min_success": 0.5},
        "calls": [
            call("typical-000", "completed", "caller_hung_up", "success"),
            call("typical-001", "completed", "max_turns", "incomplete"),
            call("typical-002", "error", "connection_failed", None),
            call("typical-003", "completed", "caller_hung_up", None),  # never judged
            {
                "call_id": "typical-004",
                "kind": "caller_type",
                "item": "typical",
                "seed": 7,
                "status": "interrupted",  # the batch was cancelled while it ran
                "path": "typical-004",
            },
        ],
    }
    (tmp_path / "batch.json").write_text(json.dumps(doc))
    result = batch.load_batch(tmp_path)
    write_junit(result, tmp_path / "r.xml")
    root = ET.parse(tmp_path / "r.xml").getroot()
    [suite] = root.iter("testsuite")
    assert suite.get("timestamp") == doc["started_at"]
    counts = ("tests", "failures", "errors", "skipped")
    assert [root.get(c) for c in counts] == [suite.get(c) for c in counts] == ["5", "1", "1", "2"]
    by_name = {c.get("name").split()[0]: c for c in suite.iter("testcase")}
    assert list(by_name["typical-000"]) == [by_name["typical-000"].find("properties")]
    assert "unmet: card replacement confirmed" in by_name["typical-001"].find("failure").get(
        "message"
    )
    error = by_name["typical-002"].find("error")
    assert error.get("type") == "connection_failed" and "connection refused" in error.get("message")
    assert "not judged" in by_name["typical-003"].find("skipped").get("message")
    assert by_name["typical-004"].find("skipped").get("message") == "not finished: interrupted"
    # The unjudged call is left out of the rate, as in the batch summary: 1 of 3.
    assert result.gate.message() == (
        "success rate 0.3333 (1 of 3 judged calls) is below min_success 0.5; "
        "1 completed calls not judged, left out"
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--min-success", "1.5"], "min_success: out of range"),
        (["--min-success", "-0.1"], "(got -0.1)"),
        (["--min-success", "nan"], "(got nan)"),
        (["--min-success", "most"], "'most'"),
        (["--junit", "{tmp}/no_such_dir/results.xml"], "does not exist"),
        (["--junit", "{tmp}"], "is a folder"),
        (["--junit", "{tmp}/a_file/results.xml"], "is not a folder"),
        (["--config", "{tmp}/gate.yaml"], "min_success: out of range"),
    ],
)
def test_bad_gate_or_report_values_exit_2_and_write_nothing(tmp_path, capsys, args, expected):
    (tmp_path / "a_file").write_text("")
    (tmp_path / "gate.yaml").write_text("caller_types: [typical]\nmin_success: 2\n")
    out = tmp_path / "runs"
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    before = sorted(tmp_path.rglob("*"))
    assert cli("--output-dir", str(out), "--route", "text", "--no-progress", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err, err
    assert sorted(tmp_path.rglob("*")) == before  # no batch folder, no report


async def test_bad_values_from_python_raise_before_anything_is_written(tmp_path):
    with pytest.raises(InputError, match=r"min_success: out of range; valid: .*0 to 1"):
        await batch.run(caller_types=["typical"], min_success=1.01, output_dir=tmp_path)
    with pytest.raises(InputError, match=r"junit: cannot write .*does not exist"):
        await batch.run(
            caller_types=["typical"], junit=tmp_path / "x" / "r.xml", output_dir=tmp_path
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: permission bits do not stop root from writing (the path-under-a-"
    "file case covers a folder that cannot be written)",
)
def test_junit_in_a_folder_that_is_not_writable_exits_2(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = cli(
            "--output-dir",
            str(tmp_path / "runs"),
            "--route",
            "text",
            "--junit",
            str(locked / "r.xml"),
        )
        assert code == 2
        assert "not writable" in capsys.readouterr().err
        assert not (tmp_path / "runs").exists() and not any(locked.iterdir())
    finally:
        locked.chmod(0o700)
