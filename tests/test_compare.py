"""Paired A/B runs of two agent versions: statistics, pairing, the folder, the CLI."""

from __future__ import annotations

import json
import math
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


def test_cli_candidate_that_breaks_calls(tmp_path, capsys):
    worse = broken_bank(tmp_path)
    out = tmp_path / "out"
    code = cli(
        "--baseline",
        "bank",
        "--candidate",
        str(worse),
        "--scenarios",
        "lost_gold_card",
        "--repeat",
        "3",
        "--route",
        "text",
        "--output-dir",
        str(out),
        "--compare-id",
        "ab",
        "--no-progress",
    )
    printed = capsys.readouterr().out
    assert code == 0
    folder = out / "ab"
    assert sorted(p.name for p in folder.iterdir()) == [
        "baseline",
        "candidate",
        "comparison.json",
        "pairs.csv",
        "summary.csv",
    ]
    ids = [f"lost_gold_card-{r:03d}" for r in range(3)]
    for call_id in ids:  # the same call on both sides: the recordings' own seeds
        base, cand = (load_call(folder / side / call_id) for side in ("baseline", "candidate"))
        assert base.metadata["seed"] == cand.metadata["seed"]
        assert base.metadata["agent"]["name"] == "bank"
        assert cand.metadata["agent"]["name"] == "bank_broken"
        assert base.success is True and cand.success is False

    pairs = pd.read_csv(folder / "pairs.csv")
    assert list(pairs["call_id"]) == ids
    assert (pairs["seed"] == pairs["candidate_seed"]).all()
    assert list(pairs["change"]) == ["broken"] * 3
    assert (pairs["diff_tool_errors"] > 0).all()  # the failing tool, seen in the recordings
    assert (pairs["baseline_tool_errors"] == 0).all()
    summary = pd.read_csv(folder / "summary.csv")
    total = summary.iloc[-1]
    assert (total["both"], total["neither"], total["only_baseline"], total["only_candidate"]) == (
        0,
        0,
        3,
        0,
    )
    assert total["p_value"] == pytest.approx(0.25)
    assert (total["baseline_pass^k"], total["candidate_pass^k"]) == (1.0, 0.0)

    doc = json.loads((folder / "comparison.json").read_text(encoding="utf-8"))
    assert doc["same_spec"] is False
    assert "broke 3" in doc["sentence"] and all(i in doc["sentence"] for i in ids)
    assert doc["sentence"] in printed and "lost_gold_card" in printed
    # The batch folders are ordinary batches.
    from dualagent import batch

    assert batch.load_batch(folder / "candidate").overall["successes"] == 0


async def test_same_spec_twice_is_allowed_and_said(tmp_path, local_server):
    result = await compare_agents(
        "bank",
        BANK_YAML,
        scenarios=["lost_gold_card"],
        repeat=1,
        route="text",
        output_dir=tmp_path,
        compare_id="same",
        progress=False,
        local_server=local_server,
    )
    assert result.same_spec is True
    assert "same spec" in result.format()
    assert list(result.pairs["seed"]) == list(result.pairs["candidate_seed"])
    assert result.sentence


@pytest.mark.parametrize(
    "args",
    [
        ["--baseline", "nope", "--candidate", "bank"],
        ["--baseline", "bank", "--candidate", "missing.yaml"],
        ["--baseline", "bank", "--candidate", "bank", "--scenarios", "nope"],
        ["--baseline", "bank", "--candidate", "bank", "--repeat", "0"],
        ["--baseline", "bank", "--candidate", "bank", "--agent", "clinic"],
        ["--baseline", "bank"],
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
