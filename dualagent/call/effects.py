"""The effects of the call core: what :class:`~dualagent.call.core.CallCore` asks its pump to do.

Small dataclasses, no behaviour: send a client event to an agent, place audio on the timeline,
flush the recording, add or update a transcript turn, log a tool call or a line for a person
watching, end the call. :class:`~dualagent.call.bridge.DualAgentBridge` applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Agent = Literal["caller", "cs"]
AGENTS: tuple[Agent, Agent] = ("caller", "cs")


@dataclass
class Send:
    agent: Agent
    event: dict[str, Any]
    # Realtime pacing: seconds into the current utterance this event belongs at (audio only).
    utterance_offset_s: float | None = None


@dataclass
class PlaceAudio:
    speaker: Agent
    pcm16: bytes
    at_s: float


@dataclass
class Flush:
    until_s: float


@dataclass
class AddTurn:
    turn: dict[str, Any]


@dataclass
class UpdateTurn:
    index: int
    fields: dict[str, Any]


@dataclass
class LogToolCall:
    call: dict[str, Any]


@dataclass
class Log:
    """Something a person watching the call wants to see (speaker lines, tool calls)."""

    kind: Literal["turn", "tool", "info", "error"]
    text: str
    speaker: Agent | None = None


@dataclass
class EndCall:
    status: Literal["completed", "error"]
    end_reason: str
    error: str | None = None


Effect = Send | PlaceAudio | Flush | AddTurn | UpdateTurn | LogToolCall | Log | EndCall
ToolExecutor = Callable[[Agent, str, str], dict[str, Any]]
