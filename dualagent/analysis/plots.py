"""Matplotlib figures for recorded calls; every function returns a :class:`~matplotlib.figure.Figure`.

Figures are built without pyplot (``Figure(...)``), so they work on any backend (Agg in scripts
and tests), never pop up windows, are not kept alive by pyplot, and show exactly once in Jupyter
when they are the value of a cell (run ``%matplotlib inline`` first)::

    from dualagent import analysis
    from dualagent.analysis import plots
    calls = analysis.load_calls("agent_conversations")
    plots.compare_caller_types(calls).savefig("compare.png")
    turns = analysis.load_turns(result)
    plots.call_timeline(turns, analysis.load_tool_calls(result))
    plots.waveform(result.audio_path())
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dualagent.analysis import caller_type_order, success_measure, wilson_interval

SPEAKERS = ("caller", "cs")
SPEAKER_LABELS = {"caller": "caller", "cs": "agent (cs)"}
SPEAKER_COLORS = {"caller": "#2a6fb0", "cs": "#e07b24"}
OVERLAP_COLOR = "#d62728"
TOOL_COLOR = "#444444"
TYPE_PALETTE = [
    "#2a6fb0",
    "#d62728",
    "#7b52ab",
    "#2ca02c",
    "#e07b24",
    "#17becf",
    "#8c564b",
    "#bcbd22",
]

# (column, panel title, y-axis label) for the numeric panels of compare_caller_types
COMPARE_PANELS = [
    ("turn_count", "Conversation turns", "turns per call"),
    ("timeline_s", "Call duration", "seconds (call timeline)"),
    ("mean_turn_gap_s", "Turn gap", "mean seconds between turns"),
    ("caller_talk_ratio", "Talk ratio", "caller share of talk time"),
    ("interruption_count", "Interruptions", "interrupted turns per call"),
]


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _plain_figure(width: float, height: float, **margins: float) -> Figure:
    """A figure with fixed margins (cheaper to draw than constrained layout, for many figures)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(**margins)
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (for HTML reports and image widgets)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def type_colors(caller_types: list[str]) -> dict[str, str]:
    """A stable color per caller type (built-in personas always get the same color)."""
    return {t: TYPE_PALETTE[i % len(TYPE_PALETTE)] for i, t in enumerate(caller_types)}


# ------------------------------------------------------------------------------ comparison


def _rate_panel(ax: Axes, calls: pd.DataFrame, types: list[str], colors: dict[str, str]) -> None:
    kind, success = success_measure(calls)
    for i, caller_type in enumerate(types):
        valid = success[calls["caller_type"] == caller_type].dropna()
        k, n = int(valid.sum()), len(valid)
        if n == 0:
            continue
        rate = k / n
        low, high = wilson_interval(k, n)
        ax.bar(i, rate, color=colors[caller_type], alpha=0.75, width=0.6)
        ax.errorbar(i, rate, yerr=[[rate - low], [high - rate]], color="black", capsize=5, lw=1.2)
        ax.annotate(
            f"{k}/{n}",
            (i, high),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    ax.set_ylim(0, 1.12)
    ax.set_title(f"{kind.capitalize()} (Wilson 95% CI)")
    ax.set_ylabel(
        "success = outcome 'success'" if kind == "success rate" else "share of calls completed"
    )


def _metric_panel(
    ax: Axes, values: pd.Series, calls: pd.DataFrame, types: list[str], colors: dict[str, str]
) -> None:
    rng = np.random.default_rng(0)
    for i, caller_type in enumerate(types):
        points = values[calls["caller_type"] == caller_type].dropna().to_numpy(dtype=float)
        if points.size == 0:
            continue
        mean = float(points.mean())
        ci = 1.96 * points.std(ddof=1) / math.sqrt(points.size) if points.size > 1 else 0.0
        ax.bar(i, mean, color=colors[caller_type], alpha=0.35, width=0.6)
        ax.errorbar(i, mean, yerr=ci, color="black", capsize=5, lw=1.2)
        jitter = rng.uniform(-0.18, 0.18, points.size)
        ax.scatter(
            i + jitter, points, s=14, color=colors[caller_type], edgecolor="white", lw=0.5, zorder=3
        )
    top, bottom = values.max(), values.min()
    low = min(0.0, float(bottom)) if pd.notna(bottom) else 0.0  # a turn gap can be negative
    ax.set_ylim(low, None if pd.notna(top) and top > low else low + 1)


def compare_caller_types(calls: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Caller types side by side: success rate (or completion rate when calls carry no outcome)
    with Wilson 95% intervals, then turns, duration, the gap between turns (``mean_turn_gap_s``),
    talk ratio and interruptions (bars: mean with 95% CI of the mean; dots: individual calls)."""
    if calls.empty or calls["caller_type"].dropna().empty:
        raise ValueError("no calls to compare: the DataFrame has no rows with a caller_type")
    types = caller_type_order(calls["caller_type"])
    colors = type_colors(types)
    counts = calls["caller_type"].value_counts()
    labels = [f"{t}\nn={counts.get(t, 0)}" for t in types]
    fig = _figure(13, 7.2)
    axes = fig.subplots(2, 3)
    _rate_panel(axes[0, 0], calls, types, colors)
    for ax, (column, panel_title, ylabel) in zip(axes.flat[1:], COMPARE_PANELS, strict=True):
        values = pd.to_numeric(
            calls.get(column, pd.Series(np.nan, index=calls.index)), errors="coerce"
        )
        if column == "mean_turn_gap_s" and values.abs().max() < 0.1:  # text route: milliseconds
            values, ylabel = values * 1000, ylabel.replace("seconds", "milliseconds")
        _metric_panel(ax, values, calls, types, colors)
        ax.set_title(panel_title)
        ax.set_ylabel(ylabel)
    for ax in axes.flat:
        ax.set_xticks(range(len(types)), labels)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle(
        title or f"Caller types compared ({len(calls)} calls)", fontsize=14, fontweight="bold"
    )
    return fig


# ------------------------------------------------------------------------------ one call


def _one_call(frame: pd.DataFrame | None, conversation_id: str | None) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame(columns=["conversation_id"])
    ids = list(dict.fromkeys(frame["conversation_id"]))
    if conversation_id is None:
        if len(ids) > 1:
            raise ValueError(
                f"turns of {len(ids)} calls given; pick one with conversation_id= (e.g. {ids[0]!r})"
            )
        return frame
    return frame[frame["conversation_id"] == conversation_id]


def _overlaps(turns: pd.DataFrame) -> list[tuple[float, float]]:
    """(start, end) of every stretch where a caller turn and an agent turn overlap."""
    caller = turns.loc[turns["speaker"] == "caller", ["start_s", "end_s"]].to_numpy(dtype=float)
    cs = turns.loc[turns["speaker"] == "cs", ["start_s", "end_s"]].to_numpy(dtype=float)
    starts = np.maximum(caller[:, None, 0], cs[None, :, 0])  # every caller turn x agent turn
    ends = np.minimum(caller[:, None, 1], cs[None, :, 1])
    shared = ends > starts
    return list(zip(starts[shared].tolist(), ends[shared].tolist(), strict=True))


def draw_timeline(
    ax: Axes,
    turns: pd.DataFrame,
    tool_calls: pd.DataFrame | None = None,
    *,
    xlim: tuple[float, float] | None = None,
) -> None:
    """Draw one call's timeline into ``ax``: a lane per speaker, overlaps, tool-call markers."""
    lanes = {"caller": 2.0, "cs": 1.0}
    timed = turns[
        np.isfinite(turns["start_s"].astype(float)) & np.isfinite(turns["end_s"].astype(float))
    ]
    for speaker, y in lanes.items():
        mine = timed[timed["speaker"] == speaker]
        for interrupted in (False, True):  # one collection each: drawing stays fast
            group = mine[mine["interrupted"].astype(bool) == interrupted]
            if group.empty:
                continue
            ax.broken_barh(
                [
                    (a, max(b - a, 0.05))
                    for a, b in group[["start_s", "end_s"]].to_numpy(dtype=float)
                ],
                (y - 0.35, 0.7),
                facecolor=SPEAKER_COLORS[speaker],
                edgecolor="black" if interrupted else "white",
                hatch="///" if interrupted else None,
                lw=0.6,
            )
    for start, end in _overlaps(turns):
        ax.axvspan(start, end, ymin=0.25, ymax=0.95, color=OVERLAP_COLOR, alpha=0.35, lw=0)
    ends = [float(turns["end_s"].max())] if not turns.empty else [1.0]
    if tool_calls is not None and not tool_calls.empty:
        times = pd.to_numeric(tool_calls["t_s"], errors="coerce")
        ok = tool_calls["ok"].fillna(False).astype(bool)
        ax.scatter(times[ok], np.zeros(int(ok.sum())), marker="v", s=60, color=TOOL_COLOR, zorder=3)
        ax.scatter(
            times[~ok], np.zeros(int((~ok).sum())), marker="X", s=60, color=OVERLAP_COLOR, zorder=3
        )
        last = float(times.max()) if times.notna().any() else 0.0
        for t, name in zip(times, tool_calls["name"], strict=True):
            if np.isfinite(t):
                near_end = t > 0.8 * last and t > 0
                ax.annotate(
                    str(name),
                    (t, 0.0),
                    xytext=(-2 if near_end else 2, -5),
                    textcoords="offset points",
                    rotation=25 if near_end else -25,
                    rotation_mode="anchor",
                    fontsize=7,
                    ha="right" if near_end else "left",
                    va="top",
                )
        ends.append(float(times.max()))
    ax.set_yticks([0, 1, 2], ["tools", SPEAKER_LABELS["cs"], SPEAKER_LABELS["caller"]])
    ax.set_ylim(-2.0, 2.6)
    end = max(e for e in ends if np.isfinite(e)) if any(np.isfinite(e) for e in ends) else 1.0
    ax.set_xlim(*(xlim or (0.0, end * 1.02 + 0.5)))
    ax.set_xlabel("call time (s)")
    ax.grid(axis="x", alpha=0.3)


def call_timeline(
    turns: pd.DataFrame,
    tool_calls: pd.DataFrame | None = None,
    *,
    conversation_id: str | None = None,
    xlim: tuple[float, float] | None = None,
) -> Figure:
    """Who speaks when in one call: caller and agent lanes, overlapping speech in red, hatched
    turns were interrupted, tool calls as triangles (red X: the tool failed).

    ``turns`` (and ``tool_calls``) come from :func:`dualagent.analysis.load_turns` (and
    :func:`~dualagent.analysis.load_tool_calls`); if they hold several calls, pass
    ``conversation_id``. The x axis is the call timeline in seconds from 0, like :func:`waveform`.
    """
    turns = _one_call(turns, conversation_id)
    if turns.empty:
        raise ValueError(
            "no turns to plot"
            + (f" for conversation {conversation_id!r}" if conversation_id else "")
        )
    cid = str(turns["conversation_id"].iloc[0])
    tools = _one_call(tool_calls, cid) if tool_calls is not None and not tool_calls.empty else None
    fig = _plain_figure(12, 3.2, left=0.08, right=0.98, top=0.9, bottom=0.17)
    ax = fig.subplots()
    draw_timeline(ax, turns, tools, xlim=xlim)
    caller_type = turns["caller_type"].iloc[0] if "caller_type" in turns else None
    ax.set_title(f"{cid}" + (f"  ({caller_type} caller)" if caller_type else ""), fontsize=10)
    return fig


def caller_type_timelines(
    turns: pd.DataFrame, *, title: str | None = None, max_calls: int = 40
) -> Figure:
    """Many calls stacked, one row each (caller above, agent below): the shape of a batch."""
    ids = list(dict.fromkeys(turns["conversation_id"]))[:max_calls]
    if not ids:
        raise ValueError("no turns to plot")
    fig = _figure(12, 1.0 + 0.45 * len(ids))
    ax = fig.subplots()
    for row, cid in enumerate(ids):
        mine = turns[turns["conversation_id"] == cid]
        for speaker, offset in (("caller", -0.2), ("cs", 0.2)):  # y grows downwards
            spans = [
                (s, max(e - s, 0.05))
                for s, e in mine.loc[mine["speaker"] == speaker, ["start_s", "end_s"]].to_numpy(
                    dtype=float
                )
            ]
            ax.broken_barh(spans, (row + offset - 0.17, 0.34), facecolor=SPEAKER_COLORS[speaker])
    ax.set_yticks(range(len(ids)), [cid[-20:] for cid in ids], fontsize=7)
    ax.set_ylim(len(ids) - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.set_xlabel("call time (s)")
    ax.grid(axis="x", alpha=0.3)
    handles = [ax.bar(0, 0, color=SPEAKER_COLORS[s], label=SPEAKER_LABELS[s]) for s in SPEAKERS]
    ax.legend(handles=handles, loc="lower right", fontsize=8)
    ax.set_title(title or f"{len(ids)} calls")
    return fig


# ------------------------------------------------------------------------------ audio


def resolve_audio(path: str | Path | Any) -> Path:
    """The stereo recording for a call folder, a CallResult, or an audio file path."""
    if hasattr(path, "audio_path"):
        return Path(path.audio_path())
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("stereo_recording.*"))
        if not found:
            raise FileNotFoundError(f"no stereo_recording.* in {path}")
        return found[0]
    if not path.is_file():
        raise FileNotFoundError(f"no such audio file: {path}")
    return path


def _envelope(samples: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min/max per bin so hours of audio plot as fast as seconds (index of first sample, lo, hi)."""
    size = max(1, samples.size // bins)
    usable = samples[: samples.size // size * size].reshape(-1, size)
    return np.arange(usable.shape[0]) * size, usable.min(axis=1), usable.max(axis=1)


def draw_waveform(
    axes: list[Axes] | np.ndarray,
    audio: str | Path | Any,
    *,
    xlim: tuple[float, float] | None = None,
    bins: int = 3000,
) -> None:
    """Draw a stereo recording into two axes: caller (left channel), agent (right channel)."""
    import soundfile as sf

    data, rate = sf.read(str(resolve_audio(audio)), dtype="float32", always_2d=True)
    if data.shape[1] == 1:
        data = np.repeat(data, 2, axis=1)
    duration = data.shape[0] / rate
    for ax, speaker, channel in zip(axes, SPEAKERS, (0, 1), strict=True):
        start, low, high = _envelope(data[:, channel], bins)
        ax.fill_between(start / rate, low, high, color=SPEAKER_COLORS[speaker], lw=0.3)
        ax.set_ylim(-1, 1)
        ax.set_ylabel(SPEAKER_LABELS[speaker])
        ax.set_xlim(*(xlim or (0.0, max(duration, 0.1))))
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("call time (s)")


def waveform(path: str | Path | Any, *, xlim: tuple[float, float] | None = None) -> Figure:
    """Both channels of a stereo recording (caller left, agent right) on the call timeline.

    ``path`` is the stereo file, its call folder, or a CallResult. The x axis is seconds from
    the start of the call, the same axis as :func:`call_timeline` (pass the same ``xlim`` to
    line them up exactly, or use :func:`call_overview`).
    """
    audio = resolve_audio(path)
    fig = _figure(12, 3.4)
    axes = fig.subplots(2, 1, sharex=True)
    draw_waveform(axes, audio, xlim=xlim)
    fig.suptitle(audio.parent.name + "/" + audio.name, fontsize=10)
    return fig


def call_overview(
    turns: pd.DataFrame,
    tool_calls: pd.DataFrame | None,
    audio: str | Path | Any,
    *,
    conversation_id: str | None = None,
) -> Figure:
    """Timeline and both waveforms in one figure with one shared time axis."""
    turns = _one_call(turns, conversation_id)
    if turns.empty:
        raise ValueError("no turns to plot")
    cid = str(turns["conversation_id"].iloc[0])
    tools = _one_call(tool_calls, cid) if tool_calls is not None and not tool_calls.empty else None
    fig = _figure(12, 5.6)
    top, caller_ax, cs_ax = fig.subplots(3, 1, sharex=True, height_ratios=[1.4, 1, 1])
    # One axis for the whole call: the audio's length, or the timeline's when there is no audio
    # (text route).
    end_s = float(turns["end_s"].max())
    draw_waveform([caller_ax, cs_ax], audio)
    xlim = (0.0, max(caller_ax.get_xlim()[1], end_s))
    caller_ax.set_xlim(xlim)
    draw_timeline(top, turns, tools, xlim=xlim)
    top.set_xlabel("")
    top.set_title(cid, fontsize=10)
    return fig


# ------------------------------------------------------------------------------ caller mood


def mood_trajectories(mood: pd.DataFrame, *, x: str = "step", title: str | None = None) -> Figure:
    """Patience and frustration along the call per caller type: the median (line) and the
    interquartile range over the calls (band). ``mood`` is :func:`dualagent.analysis.load_mood`;
    ``x`` as in :func:`dualagent.analysis.mood_trajectories` (``"step"``: utterance number,
    ``"position"``: share of the call)."""
    from dualagent.analysis.mood import mood_trajectories as trajectories

    table = trajectories(mood, x=x)
    if table.empty:
        raise ValueError("no mood to plot: the calls' turns carry no 'mood' (recorded before it?)")
    types = caller_type_order(table["caller_type"])
    colors = type_colors(types)
    fig = _figure(12, 4.2)
    axes = fig.subplots(1, 2, sharex=True)
    for ax, measure in zip(axes, ("patience", "frustration"), strict=True):
        for caller_type in types:
            rows = table[table["caller_type"] == caller_type]
            color = colors[caller_type]
            ax.plot(rows["x"], rows[f"{measure}_median"], color=color, lw=2, label=caller_type)
            ax.fill_between(
                rows["x"].astype(float),
                rows[f"{measure}_low"].astype(float),
                rows[f"{measure}_high"].astype(float),
                color=color,
                alpha=0.15,
                lw=0,
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"Caller {measure} (median, IQR band)")
        ax.set_xlabel("utterance" if x == "step" else "share of the call")
        ax.set_ylabel(f"{measure} (0..1)")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8)
    calls = mood["conversation_id"].nunique()
    fig.suptitle(title or f"Caller mood through the call ({calls} calls)", fontweight="bold")
    return fig


def patience_ran_out(mood: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Where patience ran out: per caller type, the share of calls where it did (bars) and,
    for those calls, where in the call (dots: share of the call, 0 = start, 1 = end)."""
    from dualagent.analysis.mood import patience_ran_out as ran_out

    per_call = ran_out(mood)
    if per_call.empty:
        raise ValueError("no mood to plot: the calls' turns carry no 'mood' (recorded before it?)")
    types = caller_type_order(per_call["caller_type"])
    colors = type_colors(types)
    fig = _figure(11, 3.8)
    share_ax, where_ax = fig.subplots(1, 2)
    for i, caller_type in enumerate(types):
        mine = per_call[per_call["caller_type"] == caller_type]
        share_ax.bar(i, mine["ran_out"].mean(), color=colors[caller_type], alpha=0.75, width=0.6)
        share_ax.annotate(
            f"{int(mine['ran_out'].sum())}/{len(mine)}",
            (i, mine["ran_out"].mean()),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
        points = mine.loc[mine["ran_out"], "position"].astype(float)
        where_ax.scatter(
            points, [i] * len(points), color=colors[caller_type], s=30, edgecolor="white"
        )
    share_ax.set_xticks(range(len(types)), types)
    share_ax.set_ylim(0, 1.12)
    share_ax.set_title("Calls where patience ran out")
    share_ax.set_ylabel("share of calls")
    where_ax.set_yticks(range(len(types)), types)
    where_ax.set_xlim(-0.02, 1.02)
    where_ax.set_title("Where in the call it ran out")
    where_ax.set_xlabel("share of the call (utterances)")
    for ax in (share_ax, where_ax):
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


def outcome_by_final_mood(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Outcome by the caller's final patience: calls per band, split into successes and the
    rest. ``table`` is :func:`dualagent.analysis.outcome_by_final_mood`."""
    if table.empty:
        raise ValueError("no calls to plot: the table of outcomes by final mood is empty")
    fig = _figure(6.5, 3.8)
    ax = fig.subplots()
    positions = range(len(table))
    successes = table["successes"].astype(int)
    others = table["calls"].astype(int) - successes
    ax.bar(positions, successes, color="#2ca02c", alpha=0.8, label="success")
    ax.bar(positions, others, bottom=successes, color="#d62728", alpha=0.6, label="other")
    ax.set_xticks(list(positions), table["final_patience"])
    ax.set_xlabel("caller's patience at the end of the call")
    ax.set_ylabel("calls")
    kind = str(table["rate_kind"].iloc[0]) if "rate_kind" in table else "success rate"
    ax.set_title(title or f"Outcome by final patience ({kind})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig
