"""The effects of the call core: what :class:`~dualagent.call.core.CallCore` asks its pump to do.

Small dataclasses, no behaviour: send a client event to an agent, place audio on the timeline,
flush the recording, add or update a transcript turn, log a tool call or a line for a person
watching, end the call. :class:`~dualagent.call.bridge.DualAgentBridge` applies them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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


@dataclass
class RunTools:
    """Run these function calls of ``agent`` (in order) and hand the outputs back with
    :meth:`~dualagent.call.core.CallCore.on_tool_outputs`. The pump runs them without blocking
    the event loop (a tool may be an HTTP request); the core waits for the outputs before the
    agent's turn goes on."""

    agent: Agent
    calls: list[ToolCallRequest]


@dataclass(frozen=True)
class ToolCallRequest:
    call_id: str
    name: str
    arguments: str


@dataclass
class ToolOutput:
    """What running one :class:`ToolCallRequest` gave."""

    output: dict[str, Any]
    duration_ms: float = 0.0


Effect = Send | PlaceAudio | Flush | AddTurn | UpdateTurn | LogToolCall | Log | EndCall | RunTools
ToolExecutor = Callable[[Agent, str, str], "dict[str, Any] | Awaitable[dict[str, Any]]"]
"""Runs one tool call: ``(agent, name, arguments JSON) -> output`` (sync or async)."""
