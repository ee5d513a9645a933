"""What a brain of the embedded server is: it reads the conversation and decides the next reply.

A brain lives as long as its session. It sees only what a hosted model would see: the session
instructions (with the profile section), the declared tools, and the conversation items
(what it heard, what it said, tool calls and their outputs), plus the structured flags of the
``response.create`` it answers (``barge_in``). Brains are chosen by model name through
:mod:`dualagent.realtime.local.brains.registry`.

Two kinds: a :class:`Brain` answers at once (``respond``: the scripted brains, cheap enough to
run inline); a :class:`StreamingBrain` (a language model) yields its reply as it is produced
(``stream``: :class:`TextDelta`, then :class:`ToolCall`, then :class:`GenerationStats`), and the
server speaks each sentence as soon as it is complete.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from dualagent.mood import parse_state_line
from dualagent.realtime.local.session import ConversationEntry


@dataclass
class BrainInput:
    """Everything a brain may read to answer one ``response.create``."""

    instructions: str  # the session's instructions
    profile: dict[str, Any]  # the machine-readable section of the session instructions
    tools: list[str]  # names of the tools declared for this response
    conversation: list[ConversationEntry]
    response_instructions: str | None = None  # ``response.instructions``, as sent
    # This response cuts in while the other party is still talking (``response.metadata``
    # ``dualagent_barge_in``): structured, so no brain has to search prose for it.
    barge_in: bool = False
    # The declared tools as the session holds them (type, name, description, parameters).
    tool_specs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def mood(self) -> dict[str, Any] | None:
        """The caller's state the call sent with this response (``patience``,
        ``frustration``, ``events``, ``patience_ran_out``; see :mod:`dualagent.mood`), or
        None when it sent none."""
        return parse_state_line(self.response_instructions)


@dataclass
class Reply:
    """Say ``text`` (may be empty) and/or call tools, in that order."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


@runtime_checkable
class Brain(Protocol):
    """The interface every brain implements; one instance per session, so it may keep state."""

    def respond(self, given: BrainInput) -> Reply:
        """The reply to one ``response.create``: text to say and/or tools to call."""
        ...


class BrainUnavailableError(RuntimeError):
    """A brain's model cannot answer (its endpoint is down, too slow or answers garbage): the
    response fails with this message and a server ``error`` event, so the call ends with it."""


@dataclass
class TextDelta:
    """A piece of a streamed reply's text, as it was produced."""

    text: str


@dataclass
class ToolCall:
    """A complete tool call of a streamed reply."""

    name: str
    arguments: dict[str, Any]


@dataclass
class GenerationStats:
    """How one streamed reply was generated (the last part of a stream)."""

    model: str
    time_to_first_token_s: float | None  # request sent -> first text or tool-call delta
    output_tokens: int  # as the endpoint counted them, else one per delta
    tokens_per_s: float | None  # output tokens over the time from first to last token
    generation_s: float  # request sent -> stream ended
    finish_reason: str | None = None

    def as_metadata(self) -> dict[str, str]:
        """For Realtime ``response.metadata`` (string values): ``llm_*`` keys."""
        values: dict[str, Any] = {
            "llm_model": self.model,
            "llm_time_to_first_token_s": _rounded(self.time_to_first_token_s, 3),
            "llm_output_tokens": self.output_tokens,
            "llm_tokens_per_s": _rounded(self.tokens_per_s, 1),
            "llm_generation_s": _rounded(self.generation_s, 3),
            "llm_finish_reason": self.finish_reason,
        }
        return {key: str(value) for key, value in values.items() if value is not None}


ReplyPart = TextDelta | ToolCall | GenerationStats
"""What a streaming brain yields: text as it comes, then its tool calls, then its stats."""


@runtime_checkable
class StreamingBrain(Protocol):
    """A brain that produces its reply over time (a language model behind an endpoint).

    The server speaks each sentence as soon as its text is complete and sends the tool calls
    as ``function_call`` items after the message. Cancelling the response closes the stream.
    A failure raises an exception whose message says what went wrong; the response fails
    with it.
    """

    def stream(self, given: BrainInput) -> AsyncIterator[ReplyPart]:
        """The reply to one ``response.create``, part by part."""
        ...


AnyBrain = Brain | StreamingBrain


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class ConversationReader:
    """Tracks which conversation entries a brain has already read."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self.calls: dict[str, str] = {}  # call_id -> tool name

    def new_entries(self, conversation: list[ConversationEntry]) -> list[ConversationEntry]:
        fresh = [e for e in conversation if e.item_id not in self._seen]
        self._seen.update(e.item_id for e in fresh)
        for entry in conversation:
            if entry.call_id and entry.name:
                self.calls[entry.call_id] = entry.name
        return fresh

    @staticmethod
    def heard(entries: list[ConversationEntry]) -> str:
        """What the other party said in ``entries`` (their turns, joined)."""
        return " ".join(e.text for e in entries if e.role == "user" and e.text).strip()

    def tool_results(self, entries: list[ConversationEntry]) -> list[tuple[str, dict[str, Any]]]:
        """(tool name, parsed output) for new function_call_output entries."""
        results = []
        for entry in entries:
            if entry.role == "tool" and entry.output is not None:
                try:
                    output = json.loads(entry.output)
                except json.JSONDecodeError:
                    output = {"ok": False, "error": entry.output}
                name = self.calls.get(entry.call_id or "", "unknown")
                results.append((name, output if isinstance(output, dict) else {"value": output}))
        return results


def seeded_rng(profile: dict[str, Any], role: str) -> random.Random:
    """A deterministic random source for one brain (same seed -> same call)."""
    return random.Random(f"{profile.get('seed', 0)}:{role}")
