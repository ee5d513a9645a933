"""Judge calibration: the scripted bank agent's planted faults, the rule checks that catch
them, precision and recall per criterion (``dualagent judge-calibrate``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import yaml

import dualagent.cli
from dualagent.agent_spec import AgentSpecError, load_agent
from dualagent.call.record import load_call
from dualagent.evaluation import calibration
from dualagent.evaluation.calibration import CRITERIA, judge_by_llm, score
from dualagent.evaluation.checks import STANDARD_CHECKS, spoken_amounts
from dualagent.realtime.local.brains.cs import PLANTED_FAULTS

BANK_YAML = Path(calibration.__file__).parents[1] / "data" / "agents" / "bank.yaml"


def cli(*args: str) -> int:
    try:
        return dualagent.cli.main(["judge-calibrate", *args])
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        return int(exc.code or 0)


def test_rule_checks_find_every_planted_fault(tmp_path, capsys):
    """The Must-hold: 100 % recall of the rule checks on the planted faults they cover, from
    the command a user runs; the clean calls and the truth are in the files."""
    out = tmp_path / "cal"
    assert cli("--output-dir", str(out), "--route", "text") == 0
    printed = capsys.readouterr().out
    summary = pd.read_csv(out / "summary.csv").set_index("criterion")
    assert list(summary.index) == [*CRITERIA, "(all)"]
    for criterion in CRITERIA:
        assert summary.loc[criterion, "planted"] == 2, criterion
        assert summary.loc[criterion, "recall"] == 1.0, criterion
        assert criterion in printed
    assert "precision" in printed and "recall" in printed

    rows = pd.read_csv(out / "calibration.csv")
    assert rows["call_id"].nunique() == len(calibration.CASES)
    assert len(rows) == len(calibration.CASES) * len(CRITERIA)  # a truth for every criterion
    planted = rows[~rows["truth_holds"]]
    assert set(planted["fault"]) == set(PLANTED_FAULTS)
    assert not planted["judged_holds"].any()
    # Each fault is found for its own reason, and the recordings say which fault was planted.
    why = dict(zip(planted["call_id"], planted["evidence"], strict=True))
    assert "before a successful verify_customer" in why["skip_verification-lost_gold_card-000"]
    assert (
        "says 1080.42, which no tool result holds"
        in why["wrong_amount-balance_and_transactions-000"]
    )
    assert (
        "'has been ordered' but no successful order_replacement_card"
        in why["false_promise-lost_gold_card-000"]
    )
    assert "transfer_to_human" in why["early_transfer-lost_gold_card-000"]
    faulty = load_call(out / "calls" / "wrong_amount-balance_and_transactions-000")
    assert faulty.metadata["agent"]["planted_faults"] == ["wrong_amount"]
    clean = load_call(out / "calls" / "clean-balance_and_transactions-000")
    assert "planted_faults" not in clean.metadata["agent"]
    # A justified transfer (the caller asked for a person) is not flagged.
    demands = rows[(rows["call_id"] == "clean-demands_human-000")].set_index("criterion")
    assert demands.loc["no transfer without cause", "judged_holds"]

    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# Judge calibration (rules)")
    assert "| no promise without a tool | 2 | 2 | 0 |" in report
    settings = json.loads((out / "calibration.json").read_text(encoding="utf-8"))
    assert settings["judge"] == "rules" and settings["route"] == "text"

    # The LLM judge's path, with a stand-in chat client that finds nothing wrong: every
    # planted fault is missed (recall 0), and no flag means no precision to speak of.
    class Fine:
        completions = SimpleNamespace(
            create=lambda **request: SimpleNamespace(
                choices=[
                    SimpleNamespace(
                        message=SimpleNamespace(
                            content=json.dumps(
                                {
                                    "criteria": [
                                        {"name": c, "passed": True, "evidence": "ok"}
                                        for c in CRITERIA
                                    ]
                                }
                            )
                        )
                    )
                ]
            )
        )

    record = load_call(out / "calls" / "false_promise-lost_gold_card-000")
    verdicts = judge_by_llm(record, SimpleNamespace(chat=Fine()), "m")
    assert verdicts == {c: (True, "ok") for c in CRITERIA}
    case = calibration.CalibrationCase("lost_gold_card", "false_promise")
    llm_rows = pd.DataFrame(
        [
            {"criterion": c, "truth_holds": case.holds(c), "judged_holds": holds}
            for c, (holds, _) in verdicts.items()
        ]
    )
    scores = score(llm_rows).set_index("criterion")
    assert scores.loc["no promise without a tool", "recall"] == 0.0
    assert pd.isna(scores.loc["no promise without a tool", "precision"])


def test_planted_faults_in_a_spec_file(tmp_path):
    data = yaml.safe_load(BANK_YAML.read_text(encoding="utf-8"))
    data["profile"]["planted_faults"] = ["wrong_amount"]
    path = tmp_path / "bank_wrong_amount.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    spec = load_agent(path)
    assert spec.profile["planted_faults"] == ["wrong_amount"]
    assert spec.describe()["planted_faults"] == ["wrong_amount"]
    assert "planted_faults" not in load_agent("bank").describe()

    data["profile"]["planted_faults"] = ["be_rude"]
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(AgentSpecError, match="unknown fault 'be_rude'; valid: skip_verification"):
        load_agent(path)


def test_spoken_amounts_and_the_amount_check_on_a_cut_turn():
    assert spoken_amounts(
        "Your checking account has nine hundred eighty dollars and forty two cents and your "
        "savings account has three thousand one hundred fifty dollars."
    ) == [980.42, 3150.0]
    assert spoken_amounts(
        "$1,234.50, 12 dollars, ninety nine cents, one thousand and ten dollars"
    ) == [
        1234.5,
        12.0,
        0.99,
        1010.0,
    ]
    assert spoken_amounts("five to seven business days, card ending in four four one seven") == []


@pytest.mark.parametrize(
    "args",
    [
        ["--judge", "oracle"],
        ["--route", "carrier-pigeon"],
        ["--repeat", "0"],
        ["--seed", "-1"],
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args):
    out = tmp_path / "cal"
    assert cli("--output-dir", str(out), *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dualagent: error:")
    assert not out.exists()


def test_an_existing_calibration_is_refused(tmp_path, capsys):
    (tmp_path / "calibration.csv").write_text("x", encoding="utf-8")
    assert cli("--output-dir", str(tmp_path)) == 2
    assert "already holds a calibration" in capsys.readouterr().err


def test_standard_conduct_criteria_are_standard_checks():
    # Scenarios can name them as plain criterion texts, as any other standard criterion.
    for criterion in CRITERIA:
        assert criterion in STANDARD_CHECKS
