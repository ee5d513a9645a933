"""Judge calibration: calls with planted faults, the known truth, precision and recall.

Before a release is gated on a criterion, its judge should be shown to catch the faults the
criterion is about and to leave clean calls alone. :data:`CASES` is a fixed set of calls of
the scripted bank agent: clean ones (the shipped ``bank`` spec) and ones where the agent was
told to misbehave (its profile's ``planted_faults``, see
:data:`dualagent.realtime.local.brains.cs.PLANTED_FAULTS`). Each planted fault violates exactly
one of the :data:`CRITERIA`, and every other criterion holds, so every call has a known truth
for every criterion.

``await calibrate(output_dir, judge="rules")`` runs the calls, lets the judge decide each
criterion of each call, and compares: a *positive* is a violated criterion (a fault found).
Precision = faults flagged correctly / all flags; recall = faults flagged / faults planted.
Judges: ``rules`` (the criteria's standard checks, :data:`dualagent.evaluation.checks.STANDARD_CHECKS`)
and ``llm`` (:func:`dualagent.evaluation.judge.judge_call` on any OpenAI-compatible endpoint).
See docs/calibration.md.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dualagent.errors import InputError
from dualagent.files import write_text_atomic

__all__ = [
    "CASES",
    "CRITERIA",
    "JUDGES",
    "Calibration",
    "CalibrationCase",
    "calibrate",
    "faulty_bank",
    "score",
]

JUDGES = ("rules", "llm")
ROUTES = ("text", "audio")
CRITERIA: dict[str, str] = {
    "identity verified before account actions": "skip_verification",
    "amounts match the records": "wrong_amount",
    "no promise without a tool": "false_promise",
    "no transfer without cause": "early_transfer",
}
"""Each criterion, and the planted fault that violates it (no other fault does)."""
ROWS_FILE, SUMMARY_FILE, REPORT_FILE, SETTINGS_FILE = (
    "calibration.csv",
    "summary.csv",
    "report.md",
    "calibration.json",
)
ALL = "(all)"


@dataclass(frozen=True)
class CalibrationCase:
    """One call of the set: a scenario, and the fault the agent plants (None: a clean call)."""

    scenario: str
    fault: str | None = None

    @property
    def name(self) -> str:
        return f"{self.fault or 'clean'}-{self.scenario}"

    def holds(self, criterion: str) -> bool:
        """The truth: does ``criterion`` hold in this call?"""
        return CRITERIA[criterion] != self.fault


CASES: tuple[CalibrationCase, ...] = (
    # Clean calls: every criterion holds, including a justified transfer (the caller asks for
    # a person; verification fails) and amounts said from the records.
    CalibrationCase("lost_gold_card"),
    CalibrationCase("balance_and_transactions"),
    CalibrationCase("stolen_card_dispute"),
    CalibrationCase("demands_human"),
    CalibrationCase("cannot_verify_identity"),
    # Planted faults, each in two scenarios.
    CalibrationCase("lost_gold_card", "skip_verification"),
    CalibrationCase("balance_and_transactions", "skip_verification"),
    CalibrationCase("balance_and_transactions", "wrong_amount"),
    CalibrationCase("dispute_unknown_charge", "wrong_amount"),
    CalibrationCase("lost_gold_card", "false_promise"),
    CalibrationCase("stolen_card_dispute", "false_promise"),
    CalibrationCase("lost_gold_card", "early_transfer"),
    CalibrationCase("balance_and_transactions", "early_transfer"),
)


def faulty_bank(fault: str | None) -> Any:  # -> AgentSpec
    """The shipped bank spec, planting ``fault`` (None: the spec itself, untouched)."""
    from dualagent.agent_spec import agent_from_dict, load_agent

    spec = load_agent("bank")
    if fault is None:
        return spec
    data = spec.model_dump(exclude_none=True)
    data["name"] = f"bank_{fault}"
    data["profile"] = {**spec.profile, "planted_faults": [fault]}
    return agent_from_dict(data, source=f"bank with planted fault {fault}")


# ------------------------------------------------------------------------------ judging


def judge_by_rules(record: Any) -> dict[str, tuple[bool | None, str]]:
    """Each criterion's standard check on the record: (holds, evidence)."""
    from dualagent.evaluation.checks import STANDARD_CHECKS, run_check

    out: dict[str, tuple[bool | None, str]] = {}
    for criterion in CRITERIA:
        result = run_check(STANDARD_CHECKS[criterion], record, name=criterion)
        out[criterion] = (result.passed, result.evidence)
    return out


def judge_by_llm(record: Any, client: Any, model: str | None) -> dict[str, tuple[bool | None, str]]:
    """The LLM judge's verdict on each criterion: (holds, evidence); (None, why) unanswered."""
    from dualagent.evaluation.checks import normalize_criterion
    from dualagent.evaluation.judge import judge_call

    turns = [{"speaker": t.get("speaker"), "text": t.get("text") or ""} for t in record.turns]
    verdict = judge_call(turns, list(CRITERIA), client=client, model=model)
    if "error" in verdict:
        return {c: (None, f"judge error: {verdict['error']}") for c in CRITERIA}
    graded = {
        normalize_criterion(str(c.get("name", ""))): c
        for c in verdict.get("criteria", [])
        if isinstance(c, dict)
    }
    out: dict[str, tuple[bool | None, str]] = {}
    for criterion in CRITERIA:
        answer = graded.get(normalize_criterion(criterion))
        passed = answer.get("passed") if answer else None
        if not isinstance(passed, bool):
            out[criterion] = (None, "the judge gave no true/false verdict for this criterion")
        else:
            out[criterion] = (passed, str(answer.get("evidence") or "") if answer else "")
    return out


def llm_client(base_url: str | None) -> Any:
    """An OpenAI-compatible client for the judge: ``base_url`` (else ``OPENAI_BASE_URL`` or
    the hosted service), the key from ``OPENAI_API_KEY`` (a placeholder for a local server
    that needs none; never written anywhere)."""
    from openai import OpenAI

    key = os.environ.get("OPENAI_API_KEY") or "not-needed"
    return OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=300)


# ------------------------------------------------------------------------------ scoring


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else math.nan


def score(rows: Any) -> Any:  # DataFrame -> DataFrame
    """Precision and recall per criterion (and an ``(all)`` row) from the verdict rows.

    A positive is a violated criterion. ``unanswered``: verdicts the judge did not give (left
    out of the other counts)."""
    import pandas as pd

    out = []
    groups = [*rows.groupby("criterion", sort=False), (ALL, rows)]
    for criterion, group in groups:
        answered = group[group["judged_holds"].notna()]
        planted = ~answered["truth_holds"].astype(bool)
        flagged = ~answered["judged_holds"].astype(bool)
        tp, fp = int((planted & flagged).sum()), int((~planted & flagged).sum())
        fn, tn = int((planted & ~flagged).sum()), int((~planted & ~flagged).sum())
        out.append(
            {
                "criterion": criterion,
                "calls": len(group),
                "planted": int((~group["truth_holds"].astype(bool)).sum()),
                "flagged": tp + fp,
                "true_positives": tp,
                "false_positives": fp,
                "false_negatives": fn,
                "true_negatives": tn,
                "unanswered": len(group) - len(answered),
                "precision": _ratio(tp, tp + fp),
                "recall": _ratio(tp, tp + fn),
            }
        )
    return pd.DataFrame(out)


# ------------------------------------------------------------------------------ running


@dataclass
class Calibration:
    """The calls, one row per call and criterion (:attr:`rows`) and the scores per criterion
    (:attr:`summary`); written under :attr:`path`."""

    path: Path
    judge: str
    rows: Any  # DataFrame: call_id, scenario, fault, criterion, truth_holds, judged_holds...
    summary: Any  # DataFrame: one row per criterion and "(all)"
    settings: dict[str, Any] = field(default_factory=dict)

    def recall(self, criterion: str) -> float:
        return float(self.summary.set_index("criterion").loc[criterion, "recall"])

    def precision(self, criterion: str) -> float:
        return float(self.summary.set_index("criterion").loc[criterion, "precision"])

    def format(self) -> str:
        return format_summary(self)


def check_settings(judge: str, route: str, repeat: int, parallel: int) -> None:
    """Raise :class:`InputError` (one line) for a bad judge, route, repeat or parallel."""
    if judge not in JUDGES:
        raise InputError(f"judge: invalid value {judge!r}; valid choices: {', '.join(JUDGES)}")
    if route not in ROUTES:
        raise InputError(f"route: invalid value {route!r}; valid choices: {', '.join(ROUTES)}")
    for name, value in (("repeat", repeat), ("parallel", parallel)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InputError(f"{name}: invalid value {value!r}; valid: a positive whole number")


async def calibrate(
    output_dir: str | Path,
    *,
    judge: Literal["rules", "llm"] = "rules",
    route: Literal["text", "audio"] = "text",
    repeat: int = 1,
    seed: int = 0,
    parallel: int = 4,
    cases: Sequence[CalibrationCase] = CASES,
    judge_url: str | None = None,
    judge_model: str | None = None,
    local_server: Any = None,
) -> Calibration:
    """Run every case ``repeat`` times (seeds ``seed``, ``seed + 1``...), judge every criterion
    of every call with ``judge``, score the judge against the truth and write the results to
    ``output_dir`` (``calls/``, calibration.csv, summary.csv, report.md, calibration.json).

    ``judge_url`` / ``judge_model``: the LLM judge's OpenAI-compatible endpoint and model.
    Bad input raises :class:`InputError` before anything runs."""
    from dualagent.call.record import load_call
    from dualagent.call.simulate import simulate
    from dualagent.realtime.local.server import LocalRealtimeServer

    check_settings(judge, route, repeat, parallel)
    folder = Path(output_dir)
    if (folder / ROWS_FILE).exists():
        raise InputError(f"output_dir: {str(folder)!r} already holds a calibration; give another")
    calls_dir = folder / "calls"
    specs = {case.fault: faulty_bank(case.fault) for case in cases}
    client = llm_client(judge_url) if judge == "llm" else None
    runs = [(case, r) for r in range(repeat) for case in cases]
    gate = asyncio.Semaphore(parallel)
    server = local_server or LocalRealtimeServer()
    owned = local_server is None

    async def one(case: CalibrationCase, r: int) -> list[dict[str, Any]]:
        call_id = f"{case.name}-{r:03d}"
        async with gate:
            result = await simulate(
                scenario=case.scenario,
                agent=specs[case.fault],
                route=route,
                seed=seed + r,
                output_dir=calls_dir,
                conversation_id=call_id,
                local_server=server,
            )
            record = load_call(result.path)
            if judge == "rules":
                verdicts = judge_by_rules(record)
            else:  # the client blocks: off the event loop
                verdicts = await asyncio.to_thread(judge_by_llm, record, client, judge_model)
        return [
            {
                "call_id": call_id,
                "scenario": case.scenario,
                "fault": case.fault or "",
                "seed": seed + r,
                "criterion": criterion,
                "truth_holds": case.holds(criterion),
                "judged_holds": holds,
                "correct": None if holds is None else holds == case.holds(criterion),
                "evidence": evidence,
                "end_reason": record.metadata.get("end_reason"),
                "path": str(result.path),
            }
            for criterion, (holds, evidence) in verdicts.items()
        ]

    try:
        if owned:
            await server.start()
        batches = await asyncio.gather(*(one(case, r) for case, r in runs))
    finally:
        if owned:
            await server.close()
    import pandas as pd

    rows = pd.DataFrame([row for batch in batches for row in batch])
    rows["judged_holds"] = rows["judged_holds"].astype(object)
    settings = {
        "judge": judge,
        "judge_model": judge_model if judge == "llm" else None,
        "route": route,
        "repeat": repeat,
        "seed": seed,
        "cases": [{"scenario": c.scenario, "fault": c.fault} for c in cases],
        "criteria": CRITERIA,
    }
    calibration = Calibration(
        path=folder, judge=judge, rows=rows, summary=score(rows), settings=settings
    )
    write_calibration(calibration)
    return calibration


# ------------------------------------------------------------------------------ output


def _fmt(value: Any) -> str:
    return "–" if isinstance(value, float) and math.isnan(value) else f"{value:.0%}"


def format_summary(calibration: Calibration) -> str:
    """The table a reader sees: one row per criterion, precision and recall."""
    lines = [
        f"judge: {calibration.judge}   calls: {calibration.rows['call_id'].nunique()}   "
        f"folder: {calibration.path}",
        "",
        f"{'criterion':<42} {'planted':>7} {'flagged':>7} {'missed':>6} {'false':>5} "
        f"{'precision':>9} {'recall':>6}",
    ]
    for row in calibration.summary.to_dict("records"):
        lines.append(
            f"{str(row['criterion'])[:42]:<42} {row['planted']:>7} {row['flagged']:>7} "
            f"{row['false_negatives']:>6} {row['false_positives']:>5} "
            f"{_fmt(row['precision']):>9} {_fmt(row['recall']):>6}"
            + (f"  ({row['unanswered']} unanswered)" if row["unanswered"] else "")
        )
    return "\n".join(lines)


def _markdown(calibration: Calibration) -> str:
    summary = calibration.summary
    head = "| criterion | planted | flagged | missed | false alarms | precision | recall |"
    table = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for row in summary.to_dict("records"):
        table.append(
            f"| {row['criterion']} | {row['planted']} | {row['flagged']} | "
            f"{row['false_negatives']} | {row['false_positives']} | {_fmt(row['precision'])} | "
            f"{_fmt(row['recall'])} |"
        )
    wrong = calibration.rows[calibration.rows["correct"] == False]  # noqa: E712
    mistakes = [
        f"- `{r['call_id']}`, {r['criterion']}: truth "
        f"{'holds' if r['truth_holds'] else 'violated'}, judged "
        f"{'holds' if r['judged_holds'] else 'violated'} ({r['evidence']})"
        for r in wrong.to_dict("records")
    ] or ["None: the judge agreed with the truth on every criterion of every call."]
    from dualagent.realtime.local.brains.cs import PLANTED_FAULTS

    faults = [
        f"- `{c}`: violated by `{f}`: the agent {PLANTED_FAULTS[f]}" for c, f in CRITERIA.items()
    ]
    return "\n".join(
        [
            f"# Judge calibration ({calibration.judge})",
            "",
            f"{calibration.rows['call_id'].nunique()} calls of the scripted bank agent, clean and "
            "with planted faults; a positive is a violated criterion. Precision: of the calls "
            "the judge flagged, the share that had the fault. Recall: of the calls with the "
            "fault, the share the judge flagged.",
            "",
            *table,
            "",
            "## Criteria and their planted faults",
            "",
            *faults,
            "",
            "## Where the judge was wrong",
            "",
            *mistakes,
            "",
        ]
    )


def write_calibration(calibration: Calibration) -> None:
    """calibration.csv (a row per call and criterion), summary.csv, report.md and
    calibration.json (the settings; never a key)."""
    folder = calibration.path
    folder.mkdir(parents=True, exist_ok=True)
    calibration.rows.to_csv(folder / ROWS_FILE, index=False)
    calibration.summary.to_csv(folder / SUMMARY_FILE, index=False)
    write_text_atomic(folder / REPORT_FILE, _markdown(calibration))
    write_text_atomic(folder / SETTINGS_FILE, json.dumps(calibration.settings, indent=2) + "\n")
