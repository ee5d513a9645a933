"""Recorded calls as tidy pandas DataFrames (``frames``), figures (``plots``) and an HTML report
(``report``). The frame loaders are importable from here::

    from dualagent import analysis
    calls = analysis.load_calls("agent_conversations")
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

__all__ = [
    "CALLER_TYPE_ORDER",
    "CALL_COLUMNS",
    "EVENT_COLUMNS",
    "TOOL_CALL_COLUMNS",
    "TURN_COLUMNS",
    "call_row",
    "caller_type_order",
    "find_conversations",
    "flatten",
    "latency_stats",
    "load_calls",
    "load_events",
    "load_tool_calls",
    "load_turns",
    "outcome_checks",
    "success_measure",
    "summarize_by_caller_type",
    "transcript_text",
    "wilson_interval",
]
