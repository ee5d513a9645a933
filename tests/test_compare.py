"""Paired A/B runs of two agent versions: statistics, pairing, the folder, the CLI, the
regression gate (``--fail-if-worse``, JUnit, the pytest plugin's ``compare_agents``)."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
import yaml

import dualagent.cli
from dualagent import compare
from dualagent.call.record import load_call
from dualagent.compare import (
    ALL,
    bootstrap_diff,
    compare_agents,
    mcnemar_exact,
    plain_sentence,
    summarize_pairs,
)
from dualagent.errors import InputError

pytest_plugins = ["pytester"]

BANK_YAML = Path(compare.__file__).parent / "data" / "agents" / "bank.yaml"


def cli(*args: str) -> int:
    try:
        return dualagent.cli.main(["compare-agents", *args])
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        return int(exc.code or 0)


def broken_bank(folder: Path) -> Path:
    """The shipped bank agent with order_replacement_card always failing ("service down")."""
    data = yaml.safe_load(BANK_YAML.read_text(encoding="utf-8"))
    for tool in data["tools"]:
        if tool["name"] == "order_replacement_card":
            tool.pop("python")
            tool["responses"] = [{"result": {"ok": False, "error": "service down"}}]
    data["name"] = "bank_broken"
    path = folder / "bank_broken.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ statistics


def test_mcnemar_exact_known_p_values():
    assert mcnemar_exact(2, 7) == pytest.approx(0.1797, abs=1e-4)
    assert mcnemar_exact(7, 2) == mcnemar_exact(2, 7)  # two-sided
    assert mcnemar_exact(0, 10) == pytest.approx(0.001953, abs=1e-6)
    assert mcnemar_exact(3, 0) == pytest.approx(0.25)
    assert mcnemar_exact(5, 5) == 1.0  # capped at 1
    assert mcnemar_exact(0, 0) == 1.0  # no discordant pairs: no evidence
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_bootstrap_diff_resamples_pairs_seeded():
    base = [True] * 8 + [False] * 2
    cand = [True] * 3 + [False] * 7
    diff, low, high = bootstrap_diff(base, cand, seed=1)
    assert diff == pytest.approx(-0.5)
    assert low <= diff <= high
    assert high < 0  # every resample loses successes: only "broken" pairs differ
    assert bootstrap_diff(base, cand, seed=1) == (diff, low, high)  # seeded
    # Identical verdicts: no difference in any resample.
    assert bootstrap_diff(base, base) == (0.0, 0.0, 0.0)
    assert all(math.isnan(v) for v in bootstrap_diff([], []))
    with pytest.raises(ValueError):
        bootstrap_diff([True], [True, False])


def hand_made_pairs(changes: dict[str, int], item: str = "x") -> pd.DataFrame:
    verdicts = {
        "both": (True, True),
        "neither": (False, False),
        "broken": (True, False),
        "fixed": (False, True),
        "unjudged": (True, None),
    }
    rows = []
    for change, count in changes.items():
        for _ in range(count):
            b, c = verdicts[change]
            row = {
                "call_id": f"{item}-{len(rows):03d}",
                "kind": "scenario",
                "item": item,
                "baseline_success": b,
                "candidate_success": c,
                "change": change,
            }
            for name in compare.DIFF_FIGURES:
                row[f"diff_{name}"] = 1.0
            rows.append(row)
    return pd.DataFrame(rows)


def test_summary_counts_and_plain_sentences():
    pairs = pd.concat(
        [
            hand_made_pairs({"both": 3, "broken": 2, "fixed": 7, "unjudged": 1}, "a"),
            hand_made_pairs({"neither": 2}, "b"),
        ]
    )
    summary = summarize_pairs(pairs, k=2)
    assert list(summary["item"]) == ["a", "b", ALL]
    total = summary.iloc[-1]
    assert (total["pairs"], total["judged_pairs"]) == (15, 14)  # the unjudged pair is left out
    assert (total["both"], total["neither"]) == (3, 2)
    assert (total["only_baseline"], total["only_candidate"]) == (2, 7)
    assert total["p_value"] == pytest.approx(0.1797, abs=1e-4)
    assert total["diff"] == pytest.approx(5 / 14)
    assert total["ci_low"] <= total["diff"] <= total["ci_high"]
    assert summary.iloc[1]["baseline_pass^k"] == 0.0
    sentence = plain_sentence(pairs, dict(total))
    assert sentence.startswith("The candidate fixed 7 calls and broke 2 (a-")
    assert "could be chance (p = 0.18)" in sentence

    clear = hand_made_pairs({"fixed": 10})
    sentence = plain_sentence(clear, dict(summarize_pairs(clear, 1).iloc[-1]))
    assert sentence == (
        "The candidate fixed 10 calls and broke 0 of 10 paired calls; "
        "the difference is likely real (p = 0.002)."
    )
    same = hand_made_pairs({"both": 2, "neither": 1})
    assert "no difference" in plain_sentence(same, dict(summarize_pairs(same, 1).iloc[-1]))


# ------------------------------------------------------------------------------ real runs


def test_gate_cli_flags_a_broken_tool_as_worse(tmp_path, capsys):
    """The Must-hold: a candidate that differs only by a broken tool fails the gate, with a
    significant paired test (6 broken pairs of 6: McNemar p = 2/64), and JUnit says so."""
    worse = broken_bank(tmp_path)
    out, report = tmp_path / "out", tmp_path / "gate.xml"
    code = cli(
        "--baseline",
        "bank",
        "--candidate",
        str(worse),
        "--scenarios",
        "lost_gold_card",
        "--repeat",
        "6",
        "--route",
        "text",
        "--output-dir",
        str(out),
        "--compare-id",
        "ab",
        "--no-progress",
        "--fail-if-worse",
        "--junit",
        str(report),
    )
    printed = capsys.readouterr()
    assert code == 1, printed
    folder = out / "ab"
    assert sorted(p.name for p in folder.iterdir()) == [
        "baseline",
        "candidate",
        "comparison.json",
        "pairs.csv",
        "summary.csv",
    ]
    ids = [f"lost_gold_card-{r:03d}" for r in range(6)]
    for call_id in ids[:2]:  # the same call on both sides: the recordings' own seeds
        base, cand = (load_call(folder / side / call_id) for side in ("baseline", "candidate"))
        assert base.metadata["seed"] == cand.metadata["seed"]
        assert base.metadata["agent"]["name"] == "bank"
        assert cand.metadata["agent"]["name"] == "bank_broken"
        assert base.success is True and cand.success is False

    pairs = pd.read_csv(folder / "pairs.csv")
    assert list(pairs["call_id"]) == ids
    assert (pairs["seed"] == pairs["candidate_seed"]).all()
    assert list(pairs["change"]) == ["broken"] * 6
    assert (pairs["diff_tool_errors"] > 0).all()  # the failing tool, seen in the recordings
    assert (pairs["baseline_tool_errors"] == 0).all()
    total = pd.read_csv(folder / "summary.csv").iloc[-1]
    assert (total["both"], total["neither"], total["only_baseline"], total["only_candidate"]) == (
        0,
        0,
        6,
        0,
    )
    assert total["p_value"] == pytest.approx(2 / 64)
    assert (total["baseline_pass^k"], total["candidate_pass^k"]) == (1.0, 0.0)

    doc = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    assert doc["same_spec"] is False
    assert doc["gate"]["worse"] is True and doc["gate"]["alpha"] == 0.05
    assert "broke 6" in doc["sentence"] and "likely real (p = 0.031)" in doc["sentence"]
    assert doc["sentence"] in printed.out and "lost_gold_card" in printed.out
    [why] = [line for line in printed.err.splitlines() if "McNemar" in line]
    assert why == (
        "dualagent: worse: the candidate broke 6 and fixed 0 of 6 paired calls (success rate "
        "1.00 -> 0.00); McNemar p = 0.0312 < alpha 0.05 and the drop 1.00 >= min_effect 0.05"
    )
    # JUnit: a case per scenario and the overall gate, both failed, naming the broken calls.
    root = ET.parse(report).getroot()
    assert (root.get("tests"), root.get("failures")) == ("2", "2")
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["lost_gold_card", "regression gate (all pairs)"]
    failure = cases["regression gate (all pairs)"].find("failure")
    assert failure is not None and failure.get("message") == why.removeprefix("dualagent: ")
    assert all(i in failure.text for i in ids)
    # The batch folders are ordinary batches.
    from dualagent import batch

    assert batch.load_batch(folder / "candidate").overall["successes"] == 0

    # A stricter level than the evidence reaches: not worse, and the sentence says why.
    strict = compare.RegressionGate.of(dict(total), alpha=0.01)
    assert strict.worse is False and "p = 0.0312 >= alpha 0.01" in strict.message()


async def test_gate_two_identical_versions_no_difference_pair_by_pair(tmp_path, local_server):
    """The Must-hold's other half: the same spec twice gives the same calls, word for word
    and tool call for tool call, reported as no difference; the gate passes."""
    result = await compare_agents(
        "bank",
        BANK_YAML,
        scenarios=["lost_gold_card", "balance_and_transactions"],
        repeat=2,
        route="text",
        output_dir=tmp_path,
        compare_id="same",
        progress=False,
        local_server=local_server,
    )
    assert result.same_spec is True
    assert "same spec" in result.format()
    assert len(result.pairs) == 4 and set(result.pairs["change"]) <= {"both", "neither"}
    for call_id in result.pairs["call_id"]:
        base, cand = (load_call(result.path / side / call_id) for side in ("baseline", "candidate"))
        assert base.metadata["seed"] == cand.metadata["seed"]
        assert [(t["speaker"], t["text"]) for t in base.turns] == [
            (t["speaker"], t["text"]) for t in cand.turns
        ]
        assert [(c["name"], c.get("arguments"), c.get("output")) for c in base.function_calls] == [
            (c["name"], c.get("arguments"), c.get("output")) for c in cand.function_calls
        ]
    gate = result.gate()
    assert gate.worse is False
    assert gate.message().startswith("not worse: the candidate broke 0 and fixed 0 of 4")
    assert gate.message().endswith("no difference")
    assert "no difference" in result.sentence


PLUGIN_TEST = """
from dualagent.pytest_plugin import assert_not_worse


def test_new_version_is_not_worse(compare_agents, tmp_path):
    comparison = compare_agents("bank", "bank", scenarios=["lost_gold_card"], route="text")
    assert comparison.path.parent == tmp_path / "dualagent-compare"
    assert comparison.gate().judged == 1
    assert_not_worse(comparison, alpha=0.05, min_effect=0.05)
"""


def test_pytest_plugin_compare_agents_fixture(pytester):
    pytester.makepyfile(test_gate=PLUGIN_TEST)
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    run.assert_outcomes(passed=1)


def hand_made_comparison(changes: dict[str, int], folder: Path) -> compare.Comparison:
    pairs = hand_made_pairs(changes)
    summary = summarize_pairs(pairs, 1)
    return compare.Comparison(
        path=folder,
        baseline=None,
        candidate=None,
        pairs=pairs,
        summary=summary,
        sentence=plain_sentence(pairs, dict(summary.iloc[-1])),
    )


def test_gate_sentences_say_why(tmp_path):
    from dualagent.pytest_plugin import assert_not_worse

    worse = hand_made_comparison({"both": 10, "broken": 9, "fixed": 1}, tmp_path)
    gate = worse.gate()
    assert gate.worse and gate.p_value < 0.05
    with pytest.raises(AssertionError, match="worse: the candidate broke 9 and fixed 1"):
        assert_not_worse(worse)
    # The same pairs with a higher bar for the effect (the drop is 8/20 = 0.4).
    assert not worse.gate(min_effect=0.5).worse
    assert "but the drop 0.40 < min_effect 0.5" in worse.gate(min_effect=0.5).message()
    assert "p = 0.0703 >= alpha 0.05 (could be chance)" in (
        hand_made_comparison({"broken": 7, "fixed": 1}, tmp_path).gate().message()
    )
    assert "run more calls" in hand_made_comparison({"broken": 3}, tmp_path).gate().message()
    better = hand_made_comparison({"fixed": 9}, tmp_path).gate()
    assert not better.worse and better.message().startswith("not worse: the candidate broke 0")
    assert hand_made_comparison({"unjudged": 3}, tmp_path).gate().message() == (
        "not worse: no pair was judged on both sides, so nothing could be compared"
    )
    for alpha, min_effect in ((0, 0.05), (1.5, 0.05), (0.05, -0.1), (0.05, 2)):
        with pytest.raises(InputError, match="valid:"):
            worse.gate(alpha, min_effect)


@pytest.mark.parametrize(
    "args",
    [
        ["--baseline", "nope", "--candidate", "bank"],
        ["--baseline", "bank", "--candidate", "missing.yaml"],
        ["--baseline", "bank", "--candidate", "bank", "--scenarios", "nope"],
        ["--baseline", "bank", "--candidate", "bank", "--repeat", "0"],
        ["--baseline", "bank", "--candidate", "bank", "--agent", "clinic"],
        ["--baseline", "bank"],
        ["--baseline", "bank", "--candidate", "bank", "--fail-if-worse", "--alpha", "1.5"],
        ["--baseline", "bank", "--candidate", "bank", "--min-effect", "x"],
        ["--baseline", "bank", "--candidate", "bank", "--junit", "/no/such/dir/r.xml"],
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args):
    out = tmp_path / "out"
    assert cli(*args, "--output-dir", str(out), "--route", "text", "--no-progress") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dualagent: error:")
    assert not out.exists()


async def test_existing_comparison_is_refused(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "pairs.csv").write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="already exists"):
        await compare_agents("bank", "bank", output_dir=tmp_path, compare_id="taken")
    with pytest.raises(InputError, match="baseline and candidate"):
        await compare_agents("bank", "bank", output_dir=tmp_path, agent="clinic")
