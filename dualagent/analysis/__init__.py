"""Recorded calls as tidy pandas DataFrames (``frames``), figures (``plots``) and an HTML report
(``report``). The frame loaders are importable from here::

    from dualagent import analysis
    calls = analysis.load_calls("agent_conversations")
    mood = analysis.load_mood("agent_conversations")   # the caller's mood per utterance
"""

from dualagent.analysis.frames import (
    CALL_COLUMNS,
    CALLER_TYPE_ORDER,
    EVENT_COLUMNS,
    TOOL_CALL_COLUMNS,
    TURN_COLUMNS,
    call_row,
    caller_type_order,
    find_conversations,
    flatten,
    latency_stats,
    load_calls,
    load_events,
    load_tool_calls,
    load_turns,
    outcome_checks,
    success_measure,
    summarize_by_caller_type,
    transcript_text,
    wilson_interval,
)
from dualagent.analysis.mood import (
    MOOD_COLUMNS,
    final_mood,
    load_mood,
    mood_by_caller_type,
    mood_trajectories,
    outcome_by_final_mood,
    patience_ran_out,
)

__all__ = [
    "CALLER_TYPE_ORDER",
    "CALL_COLUMNS",
    "EVENT_COLUMNS",
    "MOOD_COLUMNS",
    "TOOL_CALL_COLUMNS",
    "TURN_COLUMNS",
    "call_row",
    "caller_type_order",
    "final_mood",
    "find_conversations",
    "flatten",
    "latency_stats",
    "load_calls",
    "load_events",
    "load_mood",
    "load_tool_calls",
    "load_turns",
    "mood_by_caller_type",
    "mood_trajectories",
    "outcome_by_final_mood",
    "outcome_checks",
    "patience_ran_out",
    "success_measure",
    "summarize_by_caller_type",
    "transcript_text",
    "wilson_interval",
]
