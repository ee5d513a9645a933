"""dualagent.analysis: recorded calls to tidy DataFrames, robust to broken call folders."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import pytest_asyncio

import dualagent
from dualagent import analysis
from dualagent.call.record import load_call

CALLS = [("typical", 0), ("frustrated", 1), ("hurried", 0)]


@pytest_asyncio.fixture(scope="module")
async def recorded(local_server, tmp_path_factory):
    """Three real text-route calls under root/batch/ (one level down, to test recursion)."""
    root = tmp_path_factory.mktemp("analysis")
    results = [
        await dualagent.simulate(
            caller_type,
            route="text",
            seed=seed,
            output_dir=root / "batch",
            audio_format="flac",
            local_server=local_server,
        )
        for caller_type, seed in CALLS
    ]
    return root, results


def write_broken_calls(root: Path, template: Path) -> dict[str, Path]:
    """Hand-made broken call folders: still running, truncated metadata, truncated transcript."""
    meta = json.loads((template / "call_metadata.json").read_text())
    running = root / "running-call"
    running.mkdir(parents=True)
    (running / "call_metadata.json").write_text(
        json.dumps(
            {"conversation_id": "running-call", "caller_type": "elderly", "status": "running"}
        )
    )
    truncated = root / "truncated-meta"
    truncated.mkdir()
    (truncated / "call_metadata.json").write_text(json.dumps(meta)[:150])
    (truncated / "transcript.json").write_text((template / "transcript.json").read_text())
    half = root / "half-transcript"
    shutil.copytree(template, half)
    text = (half / "transcript.json").read_text()
    (half / "transcript.json").write_text(text[: len(text) // 2])
    (half / "function_calls.json").unlink()
    (half / "session_events.json").write_text("{")
    audio_only = root / "audio-only"  # no call_metadata.json: not a call folder
    audio_only.mkdir()
    (audio_only / "stereo_recording.wav").write_bytes(b"RIFF")
    return {"running": running, "truncated": truncated, "half": half}


# ------------------------------------------------------------------------------ discovery


def test_find_conversations_is_recursive_and_sorted(recorded, tmp_path):
    root, results = recorded
    found = analysis.find_conversations(root)
    assert found == sorted(r.path for r in results)
    assert analysis.find_conversations(results[0].path) == [results[0].path]
    with pytest.raises(FileNotFoundError, match="no such folder"):
        analysis.find_conversations(tmp_path / "missing")


# ------------------------------------------------------------------------------ calls


def test_load_calls_has_one_row_per_call_with_metadata_flattened(recorded):
    root, results = recorded
    calls = analysis.load_calls(root)
    assert len(calls) == len(CALLS)
    assert list(calls.columns[: len(analysis.CALL_COLUMNS)]) == analysis.CALL_COLUMNS
    by_id = calls.set_index("conversation_id")
    for result in results:
        row, meta = by_id.loc[result.conversation_id], result.metadata
        assert row["caller_type"] == meta["caller_type"]
        assert row["scenario.name"] == meta["scenario"]["name"] == "lost_card-default"
        assert row["status"] == "completed" and row["end_reason"] == meta["end_reason"]
        assert row["route"] == "text" and row["seed"] == meta["seed"]
        for key in (
            "turn_count",
            "utterance_count",
            "timeline_s",
            "tool_call_count",
            "sessions_ready_s",
        ):
            assert row[key] == pytest.approx(meta[key])
        latencies = meta["response_latencies_s"]  # measured by the recorder: engine latency
        assert row["mean_engine_latency_s"] == pytest.approx(sum(latencies) / len(latencies))
        assert row["max_engine_latency_s"] == pytest.approx(max(latencies))
        turns = result.turns
        caller_talk = sum(t["end_s"] - t["start_s"] for t in turns if t["speaker"] == "caller")
        cs_talk = sum(t["end_s"] - t["start_s"] for t in turns if t["speaker"] == "cs")
        assert row["caller_talk_ratio"] == pytest.approx(
            caller_talk / (caller_talk + cs_talk), abs=1e-3
        )
        assert row["interruption_count"] == sum(t["interrupted"] for t in turns)
        assert pd.isna(row["load_error"])
        if "outcome" in meta:  # evaluated calls: outcome and metrics are flattened
            assert row["outcome.result"] == meta["outcome"]["result"]
        if "metrics" in meta:  # the turn gap is the evaluation's, on the call timeline
            gap = meta["metrics"]["response_latency_s"]["mean"]
            assert row["mean_turn_gap_s"] == pytest.approx(gap)
            assert row["metrics.talk_ratio"] == meta["metrics"]["talk_ratio"]
            assert row["metrics.talk_ratio"] == pytest.approx(row["caller_talk_ratio"], abs=1e-3)
            assert not any(isinstance(v, list) for k, v in row.items() if k.startswith("metrics."))
        assert Path(row["path"]) == result.path


def test_loaders_accept_call_results_folders_and_lists(recorded):
    root, results = recorded
    assert analysis.load_calls(results[0])["conversation_id"].tolist() == [
        results[0].conversation_id
    ]
    assert len(analysis.load_calls([results[0].path, str(results[1].path)])) == 2
    assert len(analysis.load_calls([root, results[0]])) == len(CALLS)  # no duplicates


def test_load_turns_tool_calls_and_events(recorded):
    root, results = recorded
    turns = analysis.load_turns(root)
    assert list(turns.columns[: len(analysis.TURN_COLUMNS)]) == analysis.TURN_COLUMNS
    assert len(turns) == sum(r.metadata["utterance_count"] for r in results)
    first = turns[turns["conversation_id"] == results[0].conversation_id].iloc[0]
    assert first["speaker"] == "cs" and first["text"].startswith("Thank you for calling First Bank")
    assert first["heard"] == first["text"]  # text route forwards the text as heard
    assert (turns["duration_s"] - (turns["end_s"] - turns["start_s"])).abs().max() < 1e-9

    tools = analysis.load_tool_calls(root)
    assert list(tools.columns[: len(analysis.TOOL_CALL_COLUMNS)]) == analysis.TOOL_CALL_COLUMNS
    assert len(tools) == sum(r.metadata["tool_call_count"] for r in results)
    verify = tools[tools["name"] == "verify_customer"].iloc[0]
    assert verify["arguments"]["full_name"] == "Nancy Wilson" and verify["ok"]

    events = analysis.load_events(results[0])
    assert len(events) == len(
        json.loads((results[0].path / "session_events.json").read_text())["events"]
    )
    assert {"session.update", "response.done"} <= set(events["type"])
    assert set(events["agent"]) == {"caller", "cs"}


def test_broken_call_folders_are_listed_with_their_status(recorded, tmp_path):
    _, results = recorded
    root = tmp_path / "mixed"
    shutil.copytree(results[0].path, root / results[0].path.name)
    broken = write_broken_calls(root, results[1].path)

    calls = analysis.load_calls(root).set_index("conversation_id")
    assert len(calls) == 4  # audio-only folder is not a call
    assert calls.loc["running-call", "status"] == "running"
    assert calls.loc["running-call", "caller_type"] == "elderly"
    assert pd.isna(calls.loc["running-call", "load_error"])  # a running call has no transcript yet
    assert calls.loc["truncated-meta", "status"] == "unreadable"
    assert "call_metadata.json" in calls.loc["truncated-meta", "load_error"]
    half_id = json.loads((broken["half"] / "call_metadata.json").read_text())["conversation_id"]
    assert calls.loc[half_id, "status"] == "completed"
    assert "transcript.json" in calls.loc[half_id, "load_error"]
    assert pd.isna(calls.loc[results[0].conversation_id, "load_error"])

    turns = analysis.load_turns(root)
    assert set(turns["conversation_id"]) == {results[0].conversation_id, "truncated-meta"}
    assert len(analysis.load_tool_calls(root)) == results[0].metadata["tool_call_count"]
    assert not analysis.load_events(root).empty

    summary = analysis.summarize_by_caller_type(analysis.load_calls(root))
    elderly = summary.set_index("caller_type").loc["elderly"]
    assert elderly["calls"] == 1 and elderly["completed"] == 0 and elderly["rate"] == 0


def test_empty_inputs_give_empty_frames_with_columns(tmp_path):
    assert analysis.find_conversations(tmp_path) == []
    for loader, columns in (
        (analysis.load_calls, analysis.CALL_COLUMNS),
        (analysis.load_turns, analysis.TURN_COLUMNS),
        (analysis.load_tool_calls, analysis.TOOL_CALL_COLUMNS),
        (analysis.load_events, analysis.EVENT_COLUMNS),
    ):
        frame = loader(tmp_path)
        assert frame.empty and list(frame.columns) == columns


def test_outcome_and_metrics_are_flattened_and_drive_success_rate(recorded, tmp_path):
    _, results = recorded
    outcomes = {"success": 3, "failure": 1}
    folders = []
    for n, (result_name, count) in enumerate(outcomes.items()):
        for i in range(count):
            folder = tmp_path / f"call-{n}-{i}"
            shutil.copytree(results[0].path, folder)
            meta = json.loads((folder / "call_metadata.json").read_text())
            meta["conversation_id"] = folder.name
            meta["outcome"] = {
                "result": result_name,
                "criteria": [{"name": "card blocked", "passed": True, "evidence": "CARD-4417"}],
                "failures": [{"name": "transferred to human", "passed": result_name == "failure"}],
            }
            meta["metrics"] = {"goal_completion": 1.0, "latency": {"p50_s": 0.4}}
            (folder / "call_metadata.json").write_text(json.dumps(meta))
            folders.append(folder)
    calls = analysis.load_calls(tmp_path)
    assert sorted(calls["outcome.result"]) == ["failure", "success", "success", "success"]
    assert calls["outcome.criteria"].iloc[0] == [
        {"name": "card blocked", "passed": True, "evidence": "CARD-4417"}
    ]
    failed = json.loads((folders[-1] / "call_metadata.json").read_text())["outcome"]
    assert analysis.outcome_checks(failed) == [
        {"kind": "criterion", "name": "card blocked", "met": True, "evidence": "CARD-4417"},
        {
            "kind": "failure condition",
            "name": "transferred to human",
            "met": True,
            "evidence": None,
        },
    ]
    assert analysis.outcome_checks(None) == []
    assert (calls["metrics.goal_completion"] == 1.0).all()
    assert (calls["metrics.latency.p50_s"] == 0.4).all()
    summary = analysis.summarize_by_caller_type(calls).iloc[0]
    assert summary["rate_kind"] == "success rate"
    assert (summary["successes"], summary["calls"], summary["rate"]) == (3, 4, 0.75)
    low, high = analysis.wilson_interval(3, 4)
    assert (summary["rate_ci_low"], summary["rate_ci_high"]) == (low, high)


def test_wilson_interval_matches_known_values():
    low, high = analysis.wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert analysis.wilson_interval(0, 5)[0] == 0.0
    assert analysis.wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(v) for v in analysis.wilson_interval(0, 0))


def test_transcript_text_shows_said_and_misheard(recorded):
    _, results = recorded
    turns = analysis.load_turns(results[0]).head(2).copy()
    turns.loc[turns.index[1], "heard"] = "i lost my old car"
    text = analysis.transcript_text(turns)
    assert re.match(r"\[ +\d+\.\ds\] AGENT : Thank you for calling", text.splitlines()[0])
    assert "heard: i lost my old car" in text
    assert text.count("heard:") == 1  # identical text is not repeated


def test_a_call_without_recorded_metrics_gets_the_same_timing_figures(recorded, tmp_path):
    """Talk time, overlap, interruptions and turn gap have one definition, the evaluation's: a
    call never evaluated gets them computed from its turns by the same function."""
    _, results = recorded
    folder = tmp_path / "not-evaluated"
    shutil.copytree(results[1].path, folder)
    meta = json.loads((folder / "call_metadata.json").read_text())
    assert "metrics" in meta  # simulate() evaluates the call
    del meta["metrics"]
    meta["conversation_id"] = folder.name
    (folder / "call_metadata.json").write_text(json.dumps(meta))

    evaluated = analysis.load_calls(results[1]).iloc[0]
    bare = analysis.load_calls(folder).iloc[0]
    assert not any(str(k).startswith("metrics.") for k in bare.index)
    for column in (
        "mean_turn_gap_s",
        "caller_talk_s",
        "cs_talk_s",
        "caller_talk_ratio",
        "interruption_count",
        "overlap_s",
    ):
        assert not pd.isna(bare[column]) and bare[column] == pytest.approx(evaluated[column])
    assert bare["mean_engine_latency_s"] == evaluated["mean_engine_latency_s"]


def test_success_per_call_is_the_records_definition(recorded, tmp_path):
    """Analysis and batch summaries judge a call the same way: CallRecord.success."""
    _, results = recorded
    cases = {  # folder: (status, outcome result or None, expected success)
        "succeeded": ("completed", "success", True),
        "failed": ("completed", "failure", False),
        "not-judged": ("completed", None, None),
        "crashed": ("error", None, False),
        "cut-short": ("interrupted", "incomplete", False),
    }
    for name, (status, result, _) in cases.items():
        folder = tmp_path / name
        shutil.copytree(results[0].path, folder)
        meta = json.loads((folder / "call_metadata.json").read_text())
        meta.update(conversation_id=name, status=status)
        meta.pop("outcome", None)
        if result:
            meta["outcome"] = {"result": result}
        (folder / "call_metadata.json").write_text(json.dumps(meta))

    calls = analysis.load_calls(tmp_path)
    kind, success = analysis.success_measure(calls)
    assert kind == "success rate"
    verdicts = {
        cid: None if pd.isna(v) else bool(v)
        for cid, v in zip(calls["conversation_id"], success, strict=True)
    }
    assert verdicts == {name: expected for name, (_, _, expected) in cases.items()}
    for path, cid in zip(calls["path"], calls["conversation_id"], strict=True):
        assert verdicts[cid] == load_call(path).success
    summary = analysis.summarize_by_caller_type(calls).iloc[0]
    assert (summary["calls"], summary["rated"], summary["successes"]) == (5, 4, 1)

    for name in cases:  # no call judged: the measure is named for what it counts
        meta_path = tmp_path / name / "call_metadata.json"
        meta = json.loads(meta_path.read_text())
        meta.pop("outcome", None)
        meta_path.write_text(json.dumps(meta))
    kind, completed = analysis.success_measure(analysis.load_calls(tmp_path))
    assert kind == "completion rate" and int(completed.sum()) == 3


# ------------------------------------------------------------------------------ caller mood


def test_mood_frames_have_a_row_per_utterance_and_summaries_per_caller_type(recorded):
    root, results = recorded
    mood = analysis.load_mood(root)
    turns = analysis.load_turns(root)
    assert len(mood) == len(turns) and list(mood.columns) == analysis.MOOD_COLUMNS
    assert mood["patience"].between(0, 1).all() and mood["frustration"].between(0, 1).all()
    assert (mood.groupby("conversation_id")["position"].max() == 1.0).all()
    trajectories = analysis.mood_trajectories(mood)
    assert set(trajectories["caller_type"]) == set(mood["caller_type"])
    first = trajectories[trajectories["x"] == 0]
    assert (first["patience_low"] <= first["patience_median"]).all()
    assert (first["patience_median"] <= first["patience_high"]).all()
    binned = analysis.mood_trajectories(mood, x="position", bins=4)
    assert set(binned["x"]) <= {0.125, 0.375, 0.625, 0.875}
    per_call = analysis.patience_ran_out(mood)
    assert len(per_call) == len(results)
    calls = analysis.load_calls(root)
    outcome = analysis.outcome_by_final_mood(calls, mood)
    assert outcome["calls"].sum() == len(results)
    by_type = analysis.mood_by_caller_type(calls, mood)
    assert {"interruptions_per_call", "patience_lost_per_agent_turn"} <= set(by_type.columns)
    with pytest.raises(ValueError, match="'step' or 'position'"):
        analysis.mood_trajectories(mood, x="time")
