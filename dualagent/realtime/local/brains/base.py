"""What a brain of the embedded server is: it reads the conversation and decides the next reply.

A brain lives as long as its session. It sees only what a hosted model would see: the session
instructions (with the profile section), the declared tools, and the conversation items
(what it heard, what it said, tool calls and their outputs), plus the structured flags of the
``response.create`` it answers (``barge_in``). Brains are chosen by model name through
:mod:`dualagent.realtime.local.brains.registry`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

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
