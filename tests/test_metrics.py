"""Call metrics on hand-built timelines whose answers are known."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dualagent.evaluation.metrics import (
    compute_metrics,
    latency_stats,
    normalize_for_wer,
    overlaps,
    response_latencies,
    silence_share,
    speaker_runs,
    word_error_rates,
)


def utt(
    index: int,
    speaker: str,
    start: float,
    end: float,
    text: str = "hello there",
    heard: str | None = "",
    interrupted: bool = False,
) -> dict[str, Any]:
    return {
        "index": index,
        "speaker": speaker,
        "text": text,
        "heard": text if heard == "" else heard,
        "start_s": start,
        "end_s": end,
        "interrupted": interrupted,
    }


# cs 0-4, cs 4.5-6 (same turn), caller 7-9 (1.0 s after), cs 8.5-12 (barges in 0.5 s early,
# the caller is interrupted), caller 14-15 (2.0 s after). Timeline 20 s.
TIMELINE = [
    utt(0, "cs", 0.0, 4.0),
    utt(1, "cs", 4.5, 6.0),
    utt(2, "caller", 7.0, 9.0, interrupted=True),
    utt(3, "cs", 8.5, 12.0),
    utt(4, "caller", 14.0, 15.0),
]
CALLS = [
    {"name": "verify_customer", "ok": True, "output": {"ok": True}, "t_s": 5.0},
    {"name": "order_replacement_card", "ok": False, "output": {"ok": False}, "t_s": 10.0},
    {"name": "order_replacement_card", "ok": True, "output": {"ok": True}, "t_s": 13.0},
    {"name": "order_replacement_card", "ok": True, "output": {"ok": True}, "t_s": 16.0},
]
META = {"timeline_s": 20.0, "scenario": {"intent": "lost_card"}}


def test_turns_are_speaker_runs() -> None:
    runs = speaker_runs(TIMELINE)
    assert [r["speaker"] for r in runs] == ["cs", "caller", "cs", "caller"]
    assert (runs[0]["start_s"], runs[0]["end_s"], runs[0]["utterances"]) == (0.0, 6.0, 2)
    m = compute_metrics(TIMELINE, CALLS, META)
    assert (m["utterances"], m["turns"]) == (5, 4)
    assert m["turns_by_speaker"] == {"caller": 2, "cs": 2}


def test_talk_time_and_ratio() -> None:
    m = compute_metrics(TIMELINE, CALLS, META)
    assert m["talk_time_s"] == {"caller": 3.0, "cs": 9.0}
    assert m["talk_ratio"] == pytest.approx(0.25)


def test_response_latency_only_on_speaker_changes() -> None:
    latencies = response_latencies(TIMELINE)
    assert [(x["index"], x["speaker"], x["latency_s"]) for x in latencies] == [
        (2, "caller", 1.0),
        (3, "cs", -0.5),
        (4, "caller", 2.0),
    ]
    stats = compute_metrics(TIMELINE, CALLS, META)["response_latency_s"]
    assert stats["count"] == 3
    assert stats["mean"] == pytest.approx(2.5 / 3, abs=1e-4)
    assert stats["p50"] == 1.0
    assert stats["p95"] == pytest.approx(1.9)  # linear interpolation between 1.0 and 2.0
    assert stats["by_speaker"]["caller"]["mean"] == 1.5
    assert stats["by_speaker"]["cs"]["count"] == 1


def test_latency_stats_of_nothing() -> None:
    assert latency_stats([]) == {"count": 0, "mean": None, "p50": None, "p95": None}


def test_overlaps_and_interruptions() -> None:
    pairs = overlaps(TIMELINE)
    assert pairs == [{"indices": [2, 3], "speakers": ["caller", "cs"], "overlap_s": 0.5}]
    m = compute_metrics(TIMELINE, CALLS, META)
    assert m["overlaps"]["count"] == 1 and m["overlaps"]["total_s"] == 0.5
    assert m["interruptions"] == 1


def test_touching_turns_do_not_overlap_and_nested_ones_do() -> None:
    touching = [utt(0, "cs", 0.0, 2.0), utt(1, "caller", 2.0, 3.0)]
    assert overlaps(touching) == []
    nested = [utt(0, "cs", 0.0, 10.0), utt(1, "caller", 2.0, 3.0), utt(2, "caller", 4.0, 5.0)]
    assert [p["overlap_s"] for p in overlaps(nested)] == [1.0, 1.0]


def test_silence_share() -> None:
    # Speech covers 0-4, 4.5-6, 7-12 (the overlap counted once) and 14-15: 11.5 s of 20.
    assert silence_share(TIMELINE, 20.0) == pytest.approx(0.425)
    assert compute_metrics(TIMELINE, CALLS, META)["silence_share"] == pytest.approx(0.425)
    # Without a timeline length the last end is the timeline: 11.5 s of 15.
    assert silence_share(TIMELINE) == pytest.approx(1 - 11.5 / 15, abs=1e-4)
    assert silence_share([]) is None


def test_tool_counts_and_time_to_outcome() -> None:
    m = compute_metrics(TIMELINE, CALLS, META)
    assert m["tool_calls"]["count"] == 4 and m["tool_calls"]["errors"] == 1
    assert m["tool_calls"]["by_name"] == {"verify_customer": 1, "order_replacement_card": 3}
    assert m["outcome_tool"] == "order_replacement_card"
    assert m["time_to_outcome_s"] == 13.0  # the first *successful* order


@pytest.mark.parametrize(
    ("intent", "expected"),
    [("dispute", None), ("balance", None), ("human", None), (None, None)],
)
def test_time_to_outcome_is_none_without_the_intent_s_tool(
    intent: str | None, expected: None
) -> None:
    m = compute_metrics(TIMELINE, CALLS, {"timeline_s": 20.0}, intent=intent)
    assert m["time_to_outcome_s"] is expected


def test_time_to_outcome_per_intent() -> None:
    calls = [
        {"name": "dispute_transaction", "ok": True, "t_s": 30.0},
        {"name": "update_address", "ok": True, "t_s": 20.0},
        {"name": "transfer_to_human", "ok": True, "t_s": 40.0},
    ]
    assert compute_metrics([], calls, intent="dispute")["time_to_outcome_s"] == 30.0
    assert compute_metrics([], calls, intent="address_change")["time_to_outcome_s"] == 20.0
    assert compute_metrics([], calls, intent="human")["time_to_outcome_s"] == 40.0


# ------------------------------------------------------------------------------ WER


def test_wer_of_identical_text_is_zero() -> None:
    wer = word_error_rates(TIMELINE)
    assert wer["overall"] == 0.0
    assert wer["utterances_scored"] == 5 and wer["words"] == 10


def test_wer_ignores_case_punctuation_and_number_form() -> None:
    turns = [
        utt(
            0,
            "cs",
            0,
            1,
            text="Send it to 12 Oak Street, please!",
            heard="send it to twelve oak street please",
        )
    ]
    assert word_error_rates(turns)["overall"] == 0.0
    assert normalize_for_wer("I'm  OK, 42.") == "im ok forty two"


def test_wer_of_a_known_substitution() -> None:
    turns = [
        utt(0, "cs", 0, 1, text="I lost my gold card", heard="i lost my cold card"),  # 1 of 5
        utt(1, "caller", 1, 2, text="yes please", heard="yes please"),  # 0 of 2
        utt(2, "caller", 2, 3, text="thank you", heard=None),  # never heard: skipped
    ]
    wer = word_error_rates(turns)
    assert [(t["index"], t["wer"]) for t in wer["per_turn"]] == [(0, 0.2), (1, 0.0)]
    assert wer["overall"] == pytest.approx(1 / 7, abs=1e-4)  # weighted by words
    assert wer["by_speaker"] == {"caller": 0.0, "cs": 0.2}


def test_wer_counts_deletions_and_insertions() -> None:
    turns = [
        utt(0, "cs", 0, 1, text="one two three four", heard="one three four"),  # 1 deletion
        utt(1, "cs", 1, 2, text="five six", heard="five six seven eight"),  # 2 insertions
    ]
    assert word_error_rates(turns)["overall"] == pytest.approx(3 / 6)


def test_wer_without_anything_heard() -> None:
    wer = word_error_rates([utt(0, "cs", 0, 1, heard=None)])
    assert wer["overall"] is None and wer["by_speaker"] == {"caller": None, "cs": None}


# ------------------------------------------------------------------------------ shape


def test_metrics_are_json_ready() -> None:
    m = compute_metrics(TIMELINE, CALLS, META)
    assert json.loads(json.dumps(m)) == m


def test_empty_call() -> None:
    m = compute_metrics([], [], {})
    assert (m["utterances"], m["turns"], m["talk_ratio"], m["silence_share"]) == (0, 0, None, None)
    assert m["response_latency_s"]["mean"] is None
    assert m["time_to_outcome_s"] is None
    json.dumps(m)


def test_caller_mood_says_where_patience_ran_out() -> None:
    turns = [utt(0, "cs", 0, 2), utt(1, "caller", 2.5, 4), utt(2, "cs", 4.5, 7)]
    assert compute_metrics(turns, [])["caller_mood"] is None  # recorded before the mood
    moods = [(0.3, 0.5, False), (0.1, 0.7, False), (0.0, 0.9, True)]
    for turn, (patience, frustration, ran_out) in zip(turns, moods, strict=True):
        turn["mood"] = {
            "patience": patience,
            "frustration": frustration,
            "patience_ran_out": ran_out,
        }
    mood = compute_metrics(turns, [])["caller_mood"]
    assert mood == {
        "final_patience": 0.0,
        "final_frustration": 0.9,
        "min_patience": 0.0,
        "patience_ran_out": True,
        "ran_out_at_s": 7.0,
    }
