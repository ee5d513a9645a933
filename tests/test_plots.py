"""dualagent.analysis.plots: figures a researcher reads (caller types, timelines, waveforms)."""

from __future__ import annotations

import io

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import pytest_asyncio
import soundfile as sf
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

import dualagent
from dualagent import analysis
from dualagent.analysis import plots


@pytest_asyncio.fixture(scope="module")
async def batch(local_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("plots")
    for caller_type, seed in [("typical", 0), ("typical", 1), ("hurried", 0), ("frustrated", 0)]:
        await dualagent.simulate(
            caller_type,
            route="text",
            seed=seed,
            output_dir=root,
            audio_format="flac",
            local_server=local_server,
        )
    return root


def png_size(fig: Figure) -> tuple[int, int]:
    image = matplotlib.image.imread(io.BytesIO(plots.figure_png(fig)), format="png")
    return image.shape[1], image.shape[0]


def turns_frame(rows: list[tuple[str, float, float, bool]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "conversation_id": "c1",
                "caller_type": "typical",
                "index": i,
                "speaker": s,
                "text": "x",
                "heard": "x",
                "start_s": a,
                "end_s": b,
                "duration_s": b - a,
                "interrupted": cut,
            }
            for i, (s, a, b, cut) in enumerate(rows)
        ]
    )


def test_compare_caller_types_shows_every_type_in_six_panels(batch):
    calls = analysis.load_calls(batch)
    calls["outcome.result"] = None  # calls not evaluated: the first panel shows completion
    open_before = plt.get_fignums()
    fig = plots.compare_caller_types(calls)
    assert isinstance(fig, Figure) and plt.get_fignums() == open_before  # not held by pyplot
    axes = fig.axes
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes] == [
        "Completion rate (Wilson 95% CI)",
        "Conversation turns",
        "Call duration",
        "Turn gap",
        "Talk ratio",
        "Interruptions",
    ]
    labels = [t.get_text() for t in axes[0].get_xticklabels()]
    assert labels == ["typical\nn=2", "frustrated\nn=1", "hurried\nn=1"]
    # turns panel: one dot per call, at the call's turn count
    dots = np.concatenate(
        [c.get_offsets()[:, 1] for c in axes[1].collections if isinstance(c, PathCollection)]
    )
    assert sorted(dots) == sorted(calls["turn_count"])
    assert png_size(fig)[0] >= 1000


def test_compare_uses_outcome_success_rate_with_wilson_interval(batch):
    calls = analysis.load_calls(batch)
    calls["outcome.result"] = "success"
    first_typical = calls.index[calls["caller_type"] == "typical"][0]
    calls.loc[first_typical, "outcome.result"] = "failure"  # typical: 1 of 2
    fig = plots.compare_caller_types(calls)
    rate_ax = fig.axes[0]
    assert rate_ax.get_title() == "Success rate (Wilson 95% CI)"
    typical_bar = rate_ax.patches[0]
    assert typical_bar.get_height() == pytest.approx(0.5)
    low, high = analysis.wilson_interval(1, 2)
    segments = [
        seg for coll in rate_ax.collections for seg in getattr(coll, "get_segments", list)()
    ]
    assert any(np.allclose(seg[:, 1], [low, high]) for seg in segments)


def test_compare_rejects_empty_frame():
    with pytest.raises(ValueError, match="no calls to compare"):
        plots.compare_caller_types(analysis.load_calls([]))


def test_call_timeline_draws_turns_overlaps_interruptions_and_tools():
    turns = turns_frame(
        [("cs", 0.0, 3.0, False), ("caller", 2.5, 5.0, False), ("cs", 5.2, 9.0, True)]
    )
    tools = pd.DataFrame(
        [
            {"conversation_id": "c1", "name": "verify_customer", "t_s": 4.0, "ok": True},
            {"conversation_id": "c1", "name": "dispute_transaction", "t_s": 8.0, "ok": False},
        ]
    )
    fig = plots.call_timeline(turns, tools)
    ax = fig.axes[0]
    bars = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert sum(len(c.get_paths()) for c in bars) == 3  # one bar per turn
    assert [len(c.get_paths()) for c in bars if c.get_hatch()] == [
        1
    ]  # the interrupted turn is hatched
    overlap = [
        p for p in ax.patches if np.allclose(p.get_facecolor()[:3], to_rgb(plots.OVERLAP_COLOR))
    ]
    assert len(overlap) == 1
    span = overlap[0].get_bbox()
    assert (span.x0, span.x1) == pytest.approx((2.5, 3.0))
    markers = np.concatenate(
        [c.get_offsets()[:, 0] for c in ax.collections if isinstance(c, PathCollection)]
    )
    assert sorted(markers) == [4.0, 8.0]
    assert {t.get_text() for t in ax.texts} == {"verify_customer", "dispute_transaction"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tools", "agent (cs)", "caller"]


def test_call_timeline_needs_one_call(batch):
    turns = analysis.load_turns(batch)
    with pytest.raises(ValueError, match="pick one with conversation_id"):
        plots.call_timeline(turns)
    cid = turns["conversation_id"].iloc[0]
    fig = plots.call_timeline(turns, analysis.load_tool_calls(batch), conversation_id=cid)
    assert cid in fig.axes[0].get_title()


def test_waveform_plots_left_channel_as_caller_on_the_call_time_axis(tmp_path):
    rate = 8000
    t = np.arange(3 * rate) / rate
    left = np.where(t < 1.0, 0.8 * np.sin(2 * np.pi * 220 * t), 0.0)
    right = np.where(t >= 2.0, 0.5 * np.sin(2 * np.pi * 330 * t), 0.0)
    path = tmp_path / "stereo_recording.wav"
    sf.write(path, np.stack([left, right], axis=1), rate)

    fig = plots.waveform(tmp_path)  # a call folder works as well as the file
    caller_ax, cs_ax = fig.axes
    assert caller_ax.get_ylabel() == "caller" and cs_ax.get_ylabel() == "agent (cs)"
    assert caller_ax.get_xlim() == pytest.approx((0.0, 3.0))

    def loudness(ax, start, end):
        vertices = ax.collections[0].get_paths()[0].vertices
        inside = (vertices[:, 0] >= start) & (vertices[:, 0] < end)
        return np.abs(vertices[inside, 1]).max()

    assert loudness(caller_ax, 0.1, 0.9) > 0.7 and loudness(caller_ax, 1.1, 2.9) < 0.01
    assert loudness(cs_ax, 2.1, 2.9) > 0.4 and loudness(cs_ax, 0.1, 1.9) < 0.01
    aligned = plots.waveform(path, xlim=(0, 10))
    assert aligned.axes[0].get_xlim() == (0, 10)
    with pytest.raises(FileNotFoundError):
        plots.waveform(tmp_path / "nothing.wav")


def test_call_overview_shares_one_time_axis(batch):
    folder = analysis.find_conversations(batch)[0]
    fig = plots.call_overview(analysis.load_turns(folder), analysis.load_tool_calls(folder), folder)
    timeline, caller, cs = fig.axes
    assert timeline.get_xlim() == caller.get_xlim() == cs.get_xlim()
    # The axis covers the whole call: its audio, or in the text route (no audio) its timeline.
    duration = sf.info(str(next(folder.glob("stereo_recording.*")))).duration
    call_end = max(duration, analysis.load_turns(folder)["end_s"].max())
    assert caller.get_xlim()[1] == pytest.approx(call_end, abs=0.01)


def test_caller_type_timelines_one_row_per_call(batch):
    turns = analysis.load_turns(batch)
    fig = plots.caller_type_timelines(turns, title="all")
    assert len(fig.axes[0].get_yticklabels()) == turns["conversation_id"].nunique() == 4


def test_mood_figures_show_every_caller_type(batch):
    mood = analysis.load_mood(batch)
    fig = plots.mood_trajectories(mood)
    patience, frustration = fig.axes
    labels = [line.get_label() for line in patience.get_lines()]
    assert labels == ["typical", "frustrated", "hurried"]
    assert len(frustration.get_lines()) == 3
    ran_out = plots.patience_ran_out(mood)
    assert [t.get_text() for t in ran_out.axes[0].get_xticklabels()] == labels
    table = analysis.outcome_by_final_mood(analysis.load_calls(batch), mood)
    outcome = plots.outcome_by_final_mood(table)
    assert len(outcome.axes[0].patches) == 2 * len(table)  # successes and the rest per band
    for figure in (fig, ran_out, outcome):
        assert min(png_size(figure)) > 100
    with pytest.raises(ValueError, match="no mood"):
        plots.mood_trajectories(mood.iloc[0:0])
