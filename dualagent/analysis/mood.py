"""The caller's mood across calls: tidy frames and tables of patience and frustration.

Every utterance of a recorded call carries the caller's mood after it (``turn["mood"]``, see
:mod:`dualagent.mood`). These plain functions turn recordings into one row per utterance and
summarise them per caller type::

    from dualagent import analysis
    mood = analysis.load_mood("batch_runs/my-batch")       # one row per utterance
    analysis.mood_trajectories(mood)                      # median and spread per step
    analysis.patience_ran_out(mood)                       # where in each call it ran out
    analysis.outcome_by_final_mood(analysis.load_calls("batch_runs/my-batch"), mood)
    analysis.mood_by_caller_type(calls, mood)             # cut-ins and patience lost per type

Recordings made before the mood existed give no rows (they have no ``mood`` in their turns).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

from dualagent.analysis.frames import (
    Source,
    _ids,
    _number,
    _records,
    caller_type_order,
    success_measure,
)

MOOD_COLUMNS = [
    "conversation_id",
    "caller_type",
    "index",
    "step",
    "position",
    "speaker",
    "start_s",
    "end_s",
    "patience",
    "frustration",
    "patience_ran_out",
    "events",
    "reasons",
    "start_patience",
]
"""Columns of :func:`load_mood`: ``index`` is the turn's index, ``step`` its place among the
utterances that carry a mood (0 = the first), ``position`` the same as a share of the call
(0 = first utterance, 1 = last); ``events`` and ``reasons`` are comma-joined;
``start_patience`` is where the persona started (before the first utterance)."""

FINAL_MOOD_BANDS = (0.0, 0.25, 0.5, 0.75, 1.0)
"""Edges of the final-patience bands of :func:`outcome_by_final_mood` (right-closed; the
first band includes 0)."""


def load_mood(source: Source | Iterable[Source]) -> pd.DataFrame:
    """One row per utterance that carries the caller's mood (see :data:`MOOD_COLUMNS`)."""
    rows: list[dict[str, Any]] = []
    for record in _records(source):
        moods = [turn for turn in record.turns if isinstance(turn.get("mood"), dict)]
        last = max(len(moods) - 1, 1)
        start = _start_patience(record.metadata.get("persona"))
        for step, turn in enumerate(moods):
            mood = turn["mood"]
            rows.append(
                {
                    **_ids(record),
                    "index": turn.get("index", step),
                    "step": step,
                    "position": step / last,
                    "speaker": turn.get("speaker"),
                    "start_s": _number(turn.get("start_s")),
                    "end_s": _number(turn.get("end_s")),
                    "patience": _number(mood.get("patience")),
                    "frustration": _number(mood.get("frustration")),
                    "patience_ran_out": bool(mood.get("patience_ran_out")),
                    "events": ",".join(mood.get("events") or []),
                    "reasons": "; ".join(mood.get("reasons") or []),
                    "start_patience": start,
                }
            )
    frame = pd.DataFrame(rows, columns=MOOD_COLUMNS)
    for column in ("index", "step"):
        frame[column] = frame[column].astype("int64")
    return frame


def _start_patience(persona: Any) -> float:
    """The persona's starting patience, from the persona recorded with the call (NaN when it
    cannot be read)."""
    from dualagent.personas import PersonaError, persona_from_dict

    try:
        return persona_from_dict(persona).personality.mood_profile().start_patience
    except (PersonaError, ValueError, TypeError):
        return math.nan


def mood_trajectories(
    mood: pd.DataFrame,
    *,
    x: str = "step",
    bins: int = 10,
    quantiles: tuple[float, float] = (0.25, 0.75),
) -> pd.DataFrame:
    """Median and spread of patience and frustration per caller type along the call.

    ``x="step"``: per utterance number (0, 1, 2...; calls that ended earlier drop out, ``n``
    says how many calls are left); ``x="position"``: per share of the call, in ``bins`` equal
    bins (every call counts in every bin it reaches). Columns: ``caller_type``, ``x`` (the
    step, or the bin's middle), ``n``, and ``patience_median``, ``patience_low``,
    ``patience_high`` (the ``quantiles``), the same for ``frustration``.
    """
    if x not in ("step", "position"):
        raise ValueError(f"x must be 'step' or 'position', got {x!r}")
    columns = ["caller_type", "x", "n"] + [
        f"{measure}_{stat}"
        for measure in ("patience", "frustration")
        for stat in ("median", "low", "high")
    ]
    if mood.empty:
        return pd.DataFrame(columns=columns)
    frame = mood.copy()
    if x == "position":
        edges = [i / bins for i in range(bins + 1)]
        bin_index = pd.cut(frame["position"], edges, labels=False, include_lowest=True)
        frame["x"] = (bin_index.astype(float) + 0.5) / bins
    else:
        frame["x"] = frame["step"]
    rows = []
    for caller_type in caller_type_order(frame["caller_type"]):
        mine = frame[frame["caller_type"] == caller_type]
        for where, group in mine.groupby("x", sort=True):
            # One value per call and x (the last utterance of a call in that bin).
            per_call = group.groupby("conversation_id").last()
            row: dict[str, Any] = {"caller_type": caller_type, "x": where, "n": len(per_call)}
            for measure in ("patience", "frustration"):
                values = per_call[measure].astype(float)
                row[f"{measure}_median"] = values.median()
                row[f"{measure}_low"] = values.quantile(quantiles[0])
                row[f"{measure}_high"] = values.quantile(quantiles[1])
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def patience_ran_out(mood: pd.DataFrame) -> pd.DataFrame:
    """One row per call: whether the caller's patience ran out, and where (utterance step,
    time on the call's timeline, share of the call) and after which events."""
    columns = [
        "conversation_id",
        "caller_type",
        "ran_out",
        "step",
        "t_s",
        "position",
        "events",
        "start_patience",
        "final_patience",
    ]
    rows = []
    for conversation_id, call in mood.groupby("conversation_id", sort=False):
        call = call.sort_values("step")
        out = call[call["patience_ran_out"]]
        first = out.iloc[0] if not out.empty else None
        rows.append(
            {
                "conversation_id": conversation_id,
                "caller_type": call["caller_type"].iloc[0],
                "ran_out": first is not None,
                "step": int(first["step"]) if first is not None else pd.NA,
                "t_s": float(first["end_s"]) if first is not None else math.nan,
                "position": float(first["position"]) if first is not None else math.nan,
                "events": first["events"] if first is not None else "",
                "start_patience": _first_start(call),
                "final_patience": float(call["patience"].iloc[-1]),
            }
        )
    frame = pd.DataFrame(rows, columns=columns)
    frame["step"] = frame["step"].astype("Int64")
    return frame


def _first_start(call: pd.DataFrame) -> float:
    """The persona's starting patience, else the patience after the first utterance."""
    start = float(call["start_patience"].iloc[0])
    return start if not math.isnan(start) else float(call["patience"].iloc[0])


def final_mood(mood: pd.DataFrame) -> pd.DataFrame:
    """One row per call: the caller's mood after the last utterance."""
    last = mood.sort_values("step").groupby("conversation_id", sort=False).last().reset_index()
    return last[["conversation_id", "caller_type", "patience", "frustration", "patience_ran_out"]]


def outcome_by_final_mood(
    calls: pd.DataFrame, mood: pd.DataFrame, *, bands: tuple[float, ...] = FINAL_MOOD_BANDS
) -> pd.DataFrame:
    """Outcomes by the caller's final patience: one row per band (``final_patience``, e.g.
    ``(0.25, 0.5]``) with the number of calls, successes and the success rate (the success
    rate when calls carry an outcome, else the completion rate: ``rate_kind``), and how the
    calls ended (``end_reasons``, most frequent first)."""
    kind, success = success_measure(calls)
    judged = calls.assign(_success=success)[["conversation_id", "end_reason", "_success"]]
    merged = final_mood(mood).merge(judged, on="conversation_id", how="inner")
    merged["band"] = pd.cut(merged["patience"], list(bands), include_lowest=True)
    rows = []
    for band, group in merged.groupby("band", observed=False, sort=True):
        valid = group["_success"].dropna()
        reasons = group["end_reason"].fillna("-").value_counts()
        rows.append(
            {
                "final_patience": str(band),
                "calls": len(group),
                "rate_kind": kind,
                "successes": int(valid.sum()),
                "rate": float(valid.mean()) if len(valid) else math.nan,
                "ran_out": int(group["patience_ran_out"].sum()),
                "end_reasons": ", ".join(f"{r}={n}" for r, n in reasons.items()),
            }
        )
    return pd.DataFrame(rows)


def mood_by_caller_type(calls: pd.DataFrame, mood: pd.DataFrame) -> pd.DataFrame:
    """Per caller type: cut-ins per call, patience at the start and end (medians), patience
    lost per agent utterance (median over calls), the share of calls where patience ran out.

    The columns to compare personas by: who interrupts more (``interruptions_per_call``) and
    whose patience falls faster (``patience_lost_per_agent_turn``)."""
    rows = []
    per_call = patience_ran_out(mood)
    agent_turns = mood[mood["speaker"] == "cs"].groupby("conversation_id").size()
    per_call["agent_turns"] = per_call["conversation_id"].map(agent_turns).fillna(0)
    lost = (per_call["start_patience"] - per_call["final_patience"]) / per_call["agent_turns"].clip(
        lower=1
    )  # what the call cost, over the agent utterances the caller sat through
    per_call["lost_per_turn"] = lost
    for caller_type in caller_type_order(calls["caller_type"]):
        mine_calls = calls[calls["caller_type"] == caller_type]
        mine = per_call[per_call["caller_type"] == caller_type]
        interruptions = pd.to_numeric(mine_calls.get("interruption_count"), errors="coerce")
        rows.append(
            {
                "caller_type": caller_type,
                "calls": len(mine_calls),
                "interruptions_per_call": interruptions.mean(),
                "start_patience": mine["start_patience"].median(),
                "final_patience": mine["final_patience"].median(),
                "patience_lost_per_agent_turn": mine["lost_per_turn"].median(),
                "ran_out_share": mine["ran_out"].mean() if len(mine) else math.nan,
            }
        )
    return pd.DataFrame(rows)
