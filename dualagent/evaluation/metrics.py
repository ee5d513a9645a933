"""Per-call conversation metrics from a recorded transcript and its function calls.

Pure functions over the recorded data (see docs/recording-format.md): timing (talk time, talk
ratio, response latency, overlaps, silence), interruptions, tool use, speech-recognition word
error rate (what was said vs what the other side heard) and time to outcome. Everything
returned is JSON-ready (plain dicts, lists, floats rounded to 4 decimals, ``None`` when a value
is undefined, e.g. the latency of a call with one turn).

Vocabulary: an *utterance* is one entry of transcript.json; a *turn* is a run of consecutive
utterances by the same speaker.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any

from dualagent.evaluation.checks import tool_call_succeeded
from dualagent.text import number_words, words

__all__ = [
    "OUTCOME_TOOLS",
    "compute_metrics",
    "latency_stats",
    "llm_stats",
    "normalize_for_wer",
    "overlaps",
    "response_latencies",
    "silence_share",
    "speaker_runs",
    "word_error_rates",
]

SPEAKERS = ("caller", "cs")

# The successful tool call that delivers what each intent asks for.
OUTCOME_TOOLS: dict[str, str] = {
    "lost_card": "order_replacement_card",
    "stolen_card": "order_replacement_card",
    "dispute": "dispute_transaction",
    "address_change": "update_address",
    "human": "transfer_to_human",
    "balance": "get_balance",
    "transactions": "get_recent_transactions",
}

_EPS = 1e-6

Turn = dict[str, Any]


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _timed(turns: Iterable[Turn]) -> list[Turn]:
    """Utterances that have both times, in timeline order."""
    timed = [
        t
        for t in turns
        if isinstance(t.get("start_s"), int | float) and isinstance(t.get("end_s"), int | float)
    ]
    return sorted(timed, key=lambda t: (t["start_s"], t["end_s"]))


# --------------------------------------------------------------------------------------------
# Turns and timing
# --------------------------------------------------------------------------------------------


def speaker_runs(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Consecutive utterances by one speaker merged: speaker, first/last index, start, end."""
    runs: list[dict[str, Any]] = []
    for turn in turns:
        if runs and runs[-1]["speaker"] == turn.get("speaker"):
            run = runs[-1]
            run["last_index"] = turn.get("index")
            run["end_s"] = max(run["end_s"], turn.get("end_s") or run["end_s"])
            run["utterances"] += 1
            continue
        runs.append(
            {
                "speaker": turn.get("speaker"),
                "first_index": turn.get("index"),
                "last_index": turn.get("index"),
                "start_s": turn.get("start_s") or 0.0,
                "end_s": turn.get("end_s") or turn.get("start_s") or 0.0,
                "utterances": 1,
            }
        )
    return runs


def response_latencies(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """For each change of speaker: this turn's start minus the previous turn's end.

    Negative values mean the new speaker started before the other finished (an overlap).
    """
    runs = speaker_runs(_timed(turns))
    return [
        {
            "index": current["first_index"],
            "speaker": current["speaker"],
            "latency_s": _r(current["start_s"] - previous["end_s"]),
        }
        for previous, current in pairwise(runs)
    ]


def latency_stats(values: Sequence[float]) -> dict[str, Any]:
    """count, mean, p50, p95 (None when there are no values)."""
    if not values:
        return {"count": 0, "mean": None, "p50": None, "p95": None}
    ordered = sorted(float(v) for v in values)
    return {
        "count": len(values),
        "mean": _r(sum(ordered) / len(ordered)),
        "p50": _r(_percentile(ordered, 50)),
        "p95": _r(_percentile(ordered, 95)),
    }


def _percentile(ordered: Sequence[float], q: float) -> float:
    """numpy's default (linear) percentile of sorted values, without numpy's fixed cost (a
    call's few latencies: it was most of the evaluation's time on the text route)."""
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def llm_stats(events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per agent whose answers came from a language model on the embedded server: time to
    first token and tokens per second, per answer and summarised (empty when none did).

    Read from the ``llm_*`` keys of each received ``response.done``'s ``response.metadata``.
    """
    per_agent: dict[str, list[dict[str, Any]]] = {}
    for entry in events:
        event = entry.get("event") or {}
        if entry.get("direction") != "received" or event.get("type") != "response.done":
            continue
        metadata = (event.get("response") or {}).get("metadata") or {}
        if "llm_model" not in metadata:
            continue
        per_agent.setdefault(str(entry.get("agent")), []).append(
            {
                "t_s": entry.get("t_s"),
                "model": metadata.get("llm_model"),
                "time_to_first_token_s": _float(metadata.get("llm_time_to_first_token_s")),
                "tokens_per_s": _float(metadata.get("llm_tokens_per_s")),
                "output_tokens": _float(metadata.get("llm_output_tokens")),
                "finish_reason": metadata.get("llm_finish_reason"),
            }
        )
    stats = {}
    for agent, answers in per_agent.items():
        ttft = [
            a["time_to_first_token_s"] for a in answers if a["time_to_first_token_s"] is not None
        ]
        rate = [a["tokens_per_s"] for a in answers if a["tokens_per_s"] is not None]
        stats[agent] = {
            "answers": len(answers),
            "time_to_first_token_s": latency_stats(ttft),
            "tokens_per_s": latency_stats(rate),
            "per_answer": answers,
        }
    return stats


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def overlaps(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Pairs of utterances whose time spans overlap, with the overlap in seconds."""
    timed = _timed(turns)
    pairs = []
    for i, first in enumerate(timed):
        for second in timed[i + 1 :]:
            if second["start_s"] >= first["end_s"] - _EPS:
                break  # sorted by start: nothing later can overlap `first`
            shared = min(first["end_s"], second["end_s"]) - second["start_s"]
            if shared > _EPS:
                pairs.append(
                    {
                        "indices": [first.get("index"), second.get("index")],
                        "speakers": [first.get("speaker"), second.get("speaker")],
                        "overlap_s": _r(shared),
                    }
                )
    return pairs


def _union_length(spans: Iterable[tuple[float, float]]) -> float:
    """Total length covered by possibly overlapping spans."""
    total = 0.0
    covered_until = -math.inf
    for start, end in sorted(spans):
        start = max(start, covered_until)
        if end > start:
            total += end - start
            covered_until = end
    return total


def silence_share(turns: Sequence[Turn], timeline_s: float | None = None) -> float | None:
    """1 - (time anyone is speaking) / timeline; None for an empty timeline."""
    timed = _timed(turns)
    timeline = timeline_s or max((t["end_s"] for t in timed), default=0.0)
    if timeline <= 0:
        return None
    speech = _union_length((t["start_s"], min(t["end_s"], timeline)) for t in timed)
    return _r(max(0.0, 1.0 - speech / timeline))


def _talk_time(turns: Sequence[Turn]) -> dict[str, float | None]:
    talk = Counter({speaker: 0.0 for speaker in SPEAKERS})
    for t in _timed(turns):
        talk[str(t.get("speaker"))] += max(0.0, t["end_s"] - t["start_s"])
    return {speaker: _r(seconds) for speaker, seconds in talk.items()}


# --------------------------------------------------------------------------------------------
# Word error rate
# --------------------------------------------------------------------------------------------


def normalize_for_wer(text: str) -> str:
    """Lower case, no punctuation, apostrophes dropped, numbers as words, single spaces."""
    tokens = words(text).replace("_", " ").split()
    return " ".join(number_words(int(w)) if w.isdigit() and len(w) <= 6 else w for w in tokens)


def word_error_rates(turns: Sequence[Turn]) -> dict[str, Any]:
    """WER of ``heard`` against ``text`` per utterance, per speaker and overall.

    Overall and per-speaker rates are word-weighted (total edits / total reference words).
    Utterances never heard (``heard`` is None) or with no words are skipped.
    """
    per_turn = []
    edits: Counter[str] = Counter()
    reference_words: Counter[str] = Counter()
    for turn in turns:
        if turn.get("heard") is None:
            continue
        reference = normalize_for_wer(str(turn.get("text") or ""))
        if not reference:
            continue
        hypothesis = normalize_for_wer(str(turn["heard"]))
        if hypothesis == reference:  # heard word for word (every text-route turn): no edits
            errors = 0
        else:
            import jiwer  # here, at the call's end: ~3 MB a call's peak need not hold

            result = jiwer.process_words(reference, hypothesis)
            errors = result.substitutions + result.deletions + result.insertions
        n_words = len(reference.split())
        speaker = str(turn.get("speaker"))
        edits[speaker] += errors
        reference_words[speaker] += n_words
        per_turn.append(
            {
                "index": turn.get("index"),
                "speaker": speaker,
                "words": n_words,
                "wer": _r(errors / n_words),
            }
        )
    total_words = sum(reference_words.values())
    return {
        "overall": _r(sum(edits.values()) / total_words) if total_words else None,
        "by_speaker": {
            s: _r(edits[s] / reference_words[s]) if reference_words[s] else None for s in SPEAKERS
        },
        "words": total_words,
        "utterances_scored": len(per_turn),
        "per_turn": per_turn,
    }


# --------------------------------------------------------------------------------------------
# Tools and outcome
# --------------------------------------------------------------------------------------------


def _tool_stats(function_calls: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {
        "count": len(function_calls),
        "errors": sum(1 for c in function_calls if not tool_call_succeeded(c)),
        "by_name": dict(Counter(str(c.get("name")) for c in function_calls)),
    }


def _time_to_outcome(
    function_calls: Sequence[dict[str, Any]], intent: str | None
) -> tuple[str | None, float | None]:
    tool = OUTCOME_TOOLS.get(intent or "")
    if tool is None:
        return None, None
    times = [
        c.get("t_s") for c in function_calls if c.get("name") == tool and tool_call_succeeded(c)
    ]
    times = [t for t in times if isinstance(t, int | float)]
    return tool, _r(min(times)) if times else None


def caller_mood(turns: Sequence[Turn]) -> dict[str, Any] | None:
    """The caller's mood over the call (``turn["mood"]``, see :mod:`dualagent.mood`): final
    and lowest patience, final frustration, whether patience ran out and when (``end_s`` of
    the utterance after which it did); None when no turn carries a mood."""
    moods = [(t, t["mood"]) for t in turns if isinstance(t.get("mood"), dict)]
    if not moods:
        return None
    out = next((t for t, m in moods if m.get("patience_ran_out")), None)
    return {
        "final_patience": moods[-1][1].get("patience"),
        "final_frustration": moods[-1][1].get("frustration"),
        "min_patience": min(float(m.get("patience", 1.0)) for _, m in moods),
        "patience_ran_out": out is not None,
        "ran_out_at_s": _r(out["end_s"]) if out is not None else None,
    }


# --------------------------------------------------------------------------------------------
# Everything
# --------------------------------------------------------------------------------------------


def compute_metrics(
    turns: Sequence[Turn],
    function_calls: Sequence[dict[str, Any]],
    metadata: dict[str, Any] | None = None,
    *,
    intent: str | None = None,
) -> dict[str, Any]:
    """All metrics of one call, JSON-ready (for call_metadata.json["metrics"]).

    ``metadata`` supplies the timeline length (``timeline_s``) and the intent
    (``scenario.intent``); ``intent`` overrides the latter. For a phone-stream bot
    (``phone_stream``), ``stream_latency_s`` is the end of the caller's speech to the bot's
    first audio, measured on the stream itself.
    """
    metadata = metadata or {}
    intent = intent or (metadata.get("scenario") or {}).get("intent")
    runs = speaker_runs(_timed(turns))
    talk = _talk_time(turns)
    spoken = (talk.get("caller") or 0.0) + (talk.get("cs") or 0.0)
    latencies = response_latencies(turns)
    overlap_pairs = overlaps(turns)
    tool, outcome_t = _time_to_outcome(function_calls, intent)
    timeline = metadata.get("timeline_s") or max((t["end_s"] for t in _timed(turns)), default=0.0)
    stream = metadata.get("phone_stream") if isinstance(metadata.get("phone_stream"), dict) else {}
    extra: dict[str, Any] = {}
    if stream.get("latencies_s") is not None:  # a phone-stream bot: measured on its stream
        extra["stream_latency_s"] = latency_stats(list(stream["latencies_s"]))
    return {
        **extra,
        "utterances": len(turns),
        "turns": len(runs),
        "turns_by_speaker": {s: sum(1 for r in runs if r["speaker"] == s) for s in SPEAKERS},
        "timeline_s": _r(timeline),
        "talk_time_s": talk,
        "talk_ratio": _r((talk.get("caller") or 0.0) / spoken) if spoken > 0 else None,
        "response_latency_s": {
            **latency_stats([x["latency_s"] for x in latencies]),
            "by_speaker": {
                s: latency_stats([x["latency_s"] for x in latencies if x["speaker"] == s])
                for s in SPEAKERS
            },
            "per_turn": latencies,
        },
        "overlaps": {
            "count": len(overlap_pairs),
            "total_s": _r(sum(p["overlap_s"] for p in overlap_pairs)),
            "pairs": overlap_pairs,
        },
        "interruptions": sum(1 for t in turns if t.get("interrupted")),
        "silence_share": silence_share(turns, timeline or None),
        "tool_calls": _tool_stats(function_calls),
        "wer": word_error_rates(turns),
        "intent": intent,
        "outcome_tool": tool,
        "time_to_outcome_s": outcome_t,
        "caller_mood": caller_mood(turns),
    }
