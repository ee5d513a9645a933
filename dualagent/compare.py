"""Paired A/B runs of two versions of the agent under test (``dualagent compare-agents``).

``await compare_agents("bank", "my_bank.yaml", scenarios=["lost_gold_card"], repeat=10)`` runs
the same batch plan twice, once per agent spec: same items, repetitions and seeds (so the same
personas, lines and timing draws); only ``agent`` differs. Each run is an ordinary batch folder
(``{output_dir}/{compare_id}/baseline/`` and ``.../candidate/``); the calls pair up by call id.

Success is :func:`dualagent.call.record.call_success` (through the batch manifests). A pair
where either side was never judged is listed but left out of the counts and the statistics.
McNemar's exact test looks only at the discordant pairs (one side succeeded, the other did not);
the bootstrap interval resamples whole pairs, so it respects the pairing.

:class:`RegressionGate` turns a comparison into a CI verdict (``--fail-if-worse``): the
candidate is *worse* when McNemar's p is below ``alpha`` and its success rate dropped by at
least ``min_effect``. See docs/compare.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualagent.batch.manifest import DEFAULT_OUTPUT_DIR
from dualagent.errors import InputError

SIDES = ("baseline", "candidate")
ALL = "(all)"
"""The ``item`` of the summary row over every pair."""
LIKELY_REAL_P = 0.05
DEFAULT_ALPHA = 0.05
"""The gate's significance level: McNemar's p must be below it."""
DEFAULT_MIN_EFFECT = 0.05
"""The gate's minimum effect: the drop in success rate (baseline minus candidate) that counts."""
BOOTSTRAP_RESAMPLES = 2000
PAIRS_FILE, SUMMARY_FILE, COMPARISON_FILE = "pairs.csv", "summary.csv", "comparison.json"
# Figures compared pair by pair (candidate minus baseline): pairs.csv column -> recording figure.
DIFF_FIGURES = ("turns", "duration_s", "interruptions", "tool_errors")


# ------------------------------------------------------------------------------ statistics


def mcnemar_exact(only_baseline: int, only_candidate: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs against 1/2.

    ``only_baseline``: pairs only the baseline passed (broken); ``only_candidate``: pairs only
    the candidate passed (fixed). No discordant pairs: 1.0 (no evidence of a difference).
    """
    if only_baseline < 0 or only_candidate < 0:
        raise ValueError("counts of discordant pairs cannot be negative")
    n = only_baseline + only_candidate
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_baseline, only_candidate) + 1))
    return min(1.0, 2 * tail / 2**n)


def bootstrap_diff(
    baseline: Sequence[bool],
    candidate: Sequence[bool],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Candidate minus baseline success rate and its percentile bootstrap interval.

    Whole pairs are resampled (seeded: the same input gives the same interval). No pairs:
    three NaNs.
    """
    base = np.asarray(baseline, dtype=float)
    cand = np.asarray(candidate, dtype=float)
    if base.shape != cand.shape:
        raise ValueError("baseline and candidate need one verdict per pair")
    if base.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    index = rng.integers(0, base.size, size=(resamples, base.size))
    diffs = (cand[index] - base[index]).mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(diffs, [tail, 100 - tail])
    return float(cand.mean() - base.mean()), float(low), float(high)


# ------------------------------------------------------------------------------ pairs


def _tool_errors(call_dir: Path) -> int | None:
    """Tool calls of the agent under test that returned ``ok: false`` (None: no recording)."""
    from dualagent.call.record import load_call

    try:
        record = load_call(call_dir)
    except FileNotFoundError:
        return None
    return sum(1 for c in record.function_calls if c.get("ok") is False)


def _verdict(value: Any) -> bool | None:
    import pandas as pd

    return None if value is None or pd.isna(value) else bool(value)


def pair_frame(baseline: Any, candidate: Any):  # (BatchResult, BatchResult) -> DataFrame
    """One row per call id: both verdicts and the paired differences (candidate − baseline)."""
    import pandas as pd

    sides = {}
    for side, result in zip(SIDES, (baseline, candidate), strict=True):
        calls = result.calls.set_index("call_id")
        calls["tool_errors"] = [
            _tool_errors(Path(p)) if isinstance(p, str) else None for p in calls["path"]
        ]
        sides[side] = calls
    base, cand = sides["baseline"], sides["candidate"]
    rows = []
    for call_id in base.index:
        b, c = base.loc[call_id], cand.loc[call_id] if call_id in cand.index else None
        row: dict[str, Any] = {
            "call_id": call_id,
            "kind": b["kind"],
            "item": b["item"],
            "repeat": b["repeat"],
            "seed": b["seed"],
            "candidate_seed": c["seed"] if c is not None else None,
            "baseline_success": _verdict(b["success"]),
            "candidate_success": _verdict(c["success"]) if c is not None else None,
        }
        for name in DIFF_FIGURES:
            bv = pd.to_numeric(b[name], errors="coerce")
            cv = pd.to_numeric(c[name], errors="coerce") if c is not None else math.nan
            row[f"baseline_{name}"] = bv
            row[f"candidate_{name}"] = cv
            row[f"diff_{name}"] = round(cv - bv, 4)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["change"] = [
        _change(b, c)
        for b, c in zip(frame["baseline_success"], frame["candidate_success"], strict=True)
    ]
    return frame


def _change(base: bool | None, cand: bool | None) -> str:
    if base is None or cand is None:
        return "unjudged"
    if base and cand:
        return "both"
    if not base and not cand:
        return "neither"
    return "broken" if base else "fixed"


def _pass_k(verdicts: list[bool], k: int) -> float:
    from dualagent.batch import pass_hat_k

    return pass_hat_k([(len(verdicts), sum(verdicts))], k)


def _summary_row(item: str, kind: str, group: Any, k: int, seed: int) -> dict[str, Any]:
    judged = group[group["change"] != "unjudged"]
    counts = {c: int((group["change"] == c).sum()) for c in ("both", "neither")}
    broken, fixed = (
        int((group["change"] == "broken").sum()),
        int((group["change"] == "fixed").sum()),
    )
    base = [bool(v) for v in judged["baseline_success"]]
    cand = [bool(v) for v in judged["candidate_success"]]
    diff, low, high = bootstrap_diff(base, cand, seed=seed)
    row: dict[str, Any] = {
        "kind": kind,
        "item": item,
        "pairs": len(group),
        "judged_pairs": len(judged),
        **counts,
        "only_baseline": broken,
        "only_candidate": fixed,
        "baseline_rate": float(np.mean(base)) if base else math.nan,
        "candidate_rate": float(np.mean(cand)) if cand else math.nan,
        "diff": diff,
        "ci_low": low,
        "ci_high": high,
        "p_value": mcnemar_exact(broken, fixed),
    }
    for side, verdicts in (("baseline", base), ("candidate", cand)):
        if item == ALL:  # as a batch's pass^k: averaged over the items (tasks)
            per_item = [
                _pass_k([bool(v) for v in g[f"{side}_success"]], k)
                for _, g in judged.groupby("item", sort=False)
            ]
            valid = [v for v in per_item if not math.isnan(v)]
            row[f"{side}_pass^k"] = float(np.mean(valid)) if valid else math.nan
        else:
            row[f"{side}_pass^k"] = _pass_k(verdicts, k)
    for name in DIFF_FIGURES:
        values = group[f"diff_{name}"].dropna()
        row[f"mean_diff_{name}"] = round(float(values.mean()), 4) if len(values) else math.nan
    return row


def summarize_pairs(pairs: Any, k: int, *, seed: int = 0):  # -> pandas.DataFrame
    """One row per caller type / scenario and a last ``(all)`` row over every pair."""
    import pandas as pd

    rows = [
        _summary_row(item, kind, group, k, seed)
        for (kind, item), group in pairs.groupby(["kind", "item"], sort=False)
    ]
    rows.append(_summary_row(ALL, "", pairs, k, seed))
    return pd.DataFrame(rows)


def _calls(n: int) -> str:
    return f"{n} call{'' if n == 1 else 's'}"


def plain_sentence(pairs: Any, overall_row: dict[str, Any]) -> str:
    """One sentence a reader understands without statistics."""
    fixed, broken = int(overall_row["only_candidate"]), int(overall_row["only_baseline"])
    judged = int(overall_row["judged_pairs"])
    if judged == 0:
        return "No call was judged on both sides, so the two versions cannot be compared."
    if fixed == broken == 0:
        return (
            f"The candidate succeeded and failed on exactly the same calls as the baseline "
            f"({_calls(judged)} compared): no difference."
        )
    names = list(pairs.loc[pairs["change"] == "broken", "call_id"])
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    p = float(overall_row["p_value"])
    if p < LIKELY_REAL_P:
        verdict = f"is likely real (p = {p:.2g})"
    elif fixed + broken < 6:  # below 6 discordant pairs even a clean sweep has p >= 0.06
        verdict = f"could be chance (p = {p:.2g}; run more calls to tell)"
    else:
        verdict = f"could be chance (p = {p:.2g})"
    which = f" ({shown})" if names else ""
    return (
        f"The candidate fixed {_calls(fixed)} and broke {broken}{which} of {judged} paired "
        f"calls; the difference {verdict}."
    )


# ------------------------------------------------------------------------------ the gate


def check_gate_settings(alpha: float, min_effect: float) -> None:
    """Raise :class:`InputError` (one line) unless 0 < alpha < 1 and 0 <= min_effect <= 1."""
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise InputError(
            f"alpha: invalid value {alpha!r}; valid: a number between 0 and 1, e.g. 0.05"
        )
    if not (isinstance(min_effect, int | float) and 0 <= min_effect <= 1):
        raise InputError(
            f"min_effect: invalid value {min_effect!r}; valid: a drop in success rate from 0 "
            "to 1, e.g. 0.05"
        )


@dataclass(frozen=True)
class RegressionGate:
    """Is the candidate significantly worse than the baseline, by at least ``min_effect``?

    Built from a summary row (:meth:`of`): the paired counts, McNemar's exact p (two-sided) and
    the drop in success rate, baseline minus candidate. :attr:`worse` is the verdict.
    """

    alpha: float
    min_effect: float
    broken: int  # pairs only the baseline passed
    fixed: int  # pairs only the candidate passed
    judged: int
    baseline_rate: float
    candidate_rate: float
    p_value: float
    item: str = ALL

    @classmethod
    def of(
        cls,
        row: dict[str, Any],
        alpha: float = DEFAULT_ALPHA,
        min_effect: float = DEFAULT_MIN_EFFECT,
    ) -> RegressionGate:
        """The gate for one row of :attr:`Comparison.summary` (an item or ``(all)``)."""
        check_gate_settings(alpha, min_effect)
        return cls(
            alpha=float(alpha),
            min_effect=float(min_effect),
            broken=int(row["only_baseline"]),
            fixed=int(row["only_candidate"]),
            judged=int(row["judged_pairs"]),
            baseline_rate=float(row["baseline_rate"]),
            candidate_rate=float(row["candidate_rate"]),
            p_value=float(row["p_value"]),
            item=str(row["item"]),
        )

    @property
    def drop(self) -> float:
        """Baseline minus candidate success rate (NaN: no pair judged)."""
        return self.baseline_rate - self.candidate_rate

    @property
    def significant(self) -> bool:
        return self.judged > 0 and self.p_value < self.alpha

    @property
    def worse(self) -> bool:
        """Significantly worse (p < alpha) with a drop of at least ``min_effect``."""
        return (
            self.significant
            and self.broken > self.fixed
            and self.drop >= self.min_effect - 1e-12  # 0.05 as 1 - 0.95 is not below 0.05
        )

    def message(self) -> str:
        """One sentence: the verdict and why."""
        if self.judged == 0:
            return "not worse: no pair was judged on both sides, so nothing could be compared"
        counts = (
            f"the candidate broke {self.broken} and fixed {self.fixed} of {self.judged} paired "
            f"calls (success rate {self.baseline_rate:.2f} -> {self.candidate_rate:.2f})"
        )
        p = f"McNemar p = {self.p_value:.3g}"
        if self.worse:
            return (
                f"worse: {counts}; {p} < alpha {self.alpha:g} and the drop {self.drop:.2f} "
                f">= min_effect {self.min_effect:g}"
            )
        if self.broken == self.fixed == 0:
            return f"not worse: {counts}: no difference"
        if self.broken <= self.fixed:
            return f"not worse: {counts}"
        if not self.significant:
            hint = (
                "; fewer than 6 discordant pairs can never reach p < 0.05: run more calls"
                if self.broken + self.fixed < 6
                else ""
            )
            return f"not worse: {counts}; {p} >= alpha {self.alpha:g} (could be chance){hint}"
        return (
            f"not worse: {counts}; {p} < alpha {self.alpha:g} but the drop {self.drop:.2f} "
            f"< min_effect {self.min_effect:g}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "broken": self.broken,
            "fixed": self.fixed,
            "judged": self.judged,
            "drop": None if math.isnan(self.drop) else self.drop,
            "p_value": self.p_value,
            "worse": self.worse,
            "message": self.message(),
        }


# ------------------------------------------------------------------------------ running


@dataclass
class Comparison:
    """Both batches, the pairs and the per-item comparison (also written to :attr:`path`)."""

    path: Path
    baseline: Any  # BatchResult
    candidate: Any  # BatchResult
    pairs: Any  # pandas.DataFrame, one row per call id
    summary: Any  # pandas.DataFrame, one row per item and a last "(all)" row
    sentence: str
    agents: dict[str, str] = field(default_factory=dict)
    same_spec: bool = False

    @property
    def overall(self) -> dict[str, Any]:
        return dict(self.summary.iloc[-1])

    def format(self) -> str:
        """The readable table and the plain sentence."""
        return format_comparison(self)

    def gate(
        self, alpha: float = DEFAULT_ALPHA, min_effect: float = DEFAULT_MIN_EFFECT
    ) -> RegressionGate:
        """The regression gate over every pair (``gates`` gives one per item too)."""
        return RegressionGate.of(self.overall, alpha, min_effect)

    def gates(
        self, alpha: float = DEFAULT_ALPHA, min_effect: float = DEFAULT_MIN_EFFECT
    ) -> list[RegressionGate]:
        """One gate per caller type / scenario, then the overall one (the summary's rows)."""
        return [
            RegressionGate.of(row, alpha, min_effect) for row in self.summary.to_dict("records")
        ]


def _agent_ref(agent: str | Path) -> str:
    """A spec path as an absolute path (the manifests stay readable from anywhere)."""
    text = str(agent)
    path = Path(text)
    return str(path.resolve()) if text.endswith((".yaml", ".yml")) and path.is_file() else text


def _load_spec(side: str, agent: str | Path) -> Any:
    from dualagent.agent_spec import AgentSpecError, load_agent

    try:
        return load_agent(agent)
    except AgentSpecError as exc:
        raise InputError(f"{side}: {exc}") from None


async def compare_agents(
    baseline: str | Path,
    candidate: str | Path,
    *,
    caller_types: Sequence[str] | str | None = None,
    scenarios: Sequence[str] | str | None = None,
    repeat: int | None = None,
    route: str | None = None,
    parallel: int | None = None,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    compare_id: str | None = None,
    seed: int | None = None,
    progress: bool = True,
    local_server: Any = None,
    **call_defaults: Any,
) -> Comparison:
    """Run the same batch plan with the ``baseline`` and the ``candidate`` agent spec, pair
    the calls by id and compare them; write everything under ``{output_dir}/{compare_id}/``.

    ``baseline`` / ``candidate``: a shipped spec name or a spec ``.yaml`` path. The other
    keywords are :func:`dualagent.batch.run`'s (``call_defaults``: CallDefaults fields but
    ``agent``). Bad input raises :class:`InputError` before anything is written.
    """
    from dualagent.batch import run
    from dualagent.batch.manifest import new_batch_id, validate_batch_id
    from dualagent.realtime.local.server import LocalRealtimeServer

    if "agent" in call_defaults:
        raise InputError("agent: give the two versions as baseline and candidate instead")
    specs = {
        side: _load_spec(side, a) for side, a in zip(SIDES, (baseline, candidate), strict=True)
    }
    compare_id = validate_batch_id(compare_id or new_batch_id("compare"))
    folder = Path(output_dir) / compare_id
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"comparison {compare_id!r} already exists in {output_dir}")
    if route is not None:
        call_defaults["route"] = route
    agents = {side: _agent_ref(a) for side, a in zip(SIDES, (baseline, candidate), strict=True)}
    common = {
        "caller_types": caller_types,
        "scenarios": scenarios,
        "repeat": repeat,
        "parallel": parallel,
        "seed": seed,
        "progress": progress,
        "output_dir": folder,
        **call_defaults,
    }
    results: dict[str, Any] = {}
    server = local_server or LocalRealtimeServer()  # one server: the engines load once
    owned = local_server is None
    try:
        if owned:
            await server.start()
        # The baseline's run checks every other input before it writes anything; the candidate
        # differs only by its agent, checked above.
        for side in SIDES:
            results[side] = await run(
                batch_id=side, agent=agents[side], local_server=server, **common
            )
    finally:
        if owned:
            await server.close()
    return _finish(folder, results, agents, specs)


def _finish(
    folder: Path, results: dict[str, Any], agents: dict[str, str], specs: dict[str, Any]
) -> Comparison:
    config = results["baseline"].manifest["config"]
    k, seed = int(config["repeat"]), int(config["seed"])
    pairs = pair_frame(results["baseline"], results["candidate"])
    summary = summarize_pairs(pairs, k, seed=seed)
    same = specs["baseline"].model_dump() == specs["candidate"].model_dump()
    comparison = Comparison(
        path=folder,
        baseline=results["baseline"],
        candidate=results["candidate"],
        pairs=pairs,
        summary=summary,
        sentence=plain_sentence(pairs, dict(summary.iloc[-1])),
        agents=agents,
        same_spec=same,
    )
    write_comparison(comparison)
    return comparison


def write_comparison(comparison: Comparison, gate: RegressionGate | None = None) -> None:
    """``pairs.csv``, ``summary.csv`` and ``comparison.json`` in the comparison folder (with
    the regression gate's verdict under ``gate`` when one is given)."""
    folder = comparison.path
    comparison.pairs.to_csv(folder / PAIRS_FILE, index=False)
    comparison.summary.to_csv(folder / SUMMARY_FILE, index=False)
    overall = {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in comparison.overall.items()
    }
    data = {
        "agents": comparison.agents,
        "same_spec": comparison.same_spec,
        "batches": {side: side for side in SIDES},
        "sentence": comparison.sentence,
        "overall": overall,
    }
    if gate is not None:
        data["gate"] = gate.as_dict()
    (folder / COMPARISON_FILE).write_text(
        json.dumps(data, indent=2, default=_json_default), encoding="utf-8"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if math.isnan(value) else float(value)
    return str(value)


def _fmt(value: Any, pattern: str) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else pattern.format(value)
    )


def format_comparison(comparison: Comparison) -> str:
    """A readable table (one row per item and the total), the folder and the plain sentence."""
    header = (
        f"{'item':<28} {'pairs':>5} {'both':>5} {'neither':>7} {'broken':>6} {'fixed':>5} "
        f"{'base':>5} {'cand':>5} {'diff [95% CI]':>22} {'p':>7} {'pass^k b/c':>11}"
    )
    lines = [
        f"baseline:  {comparison.agents.get('baseline')}",
        f"candidate: {comparison.agents.get('candidate')}",
    ]
    if comparison.same_spec:
        lines.append("note: baseline and candidate are the same spec: any difference is chance")
    lines += ["", header]
    for row in comparison.summary.to_dict("records"):
        ci = f"{_fmt(row['diff'], '{:+.2f}')} [{_fmt(row['ci_low'], '{:+.2f}')}, {_fmt(row['ci_high'], '{:+.2f}')}]"
        passk = (
            f"{_fmt(row['baseline_pass^k'], '{:.2f}')}/{_fmt(row['candidate_pass^k'], '{:.2f}')}"
        )
        lines.append(
            f"{str(row['item'])[:28]:<28} {row['judged_pairs']:>5} {row['both']:>5} "
            f"{row['neither']:>7} {row['only_baseline']:>6} {row['only_candidate']:>5} "
            f"{_fmt(row['baseline_rate'], '{:.2f}'):>5} {_fmt(row['candidate_rate'], '{:.2f}'):>5} "
            f"{ci:>22} {_fmt(row['p_value'], '{:.3g}'):>7} {passk:>11}"
        )
    overall = comparison.overall
    diffs = ", ".join(
        f"{name} {_fmt(overall.get(f'mean_diff_{name}'), '{:+.2f}')}" for name in DIFF_FIGURES
    )
    lines += [
        "",
        f"mean change per call (candidate - baseline): {diffs}",
        f"folder: {comparison.path}",
        "",
        comparison.sentence,
    ]
    return "\n".join(lines)
