"""What a scripted brain is: it reads the conversation and decides the next reply.

A brain lives as long as its session. It sees only what a hosted model would see: the session
instructions (with the profile section), the declared tools, and the conversation items
(what it heard, what it said, tool calls and their outputs).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from dualagent.realtime.local.session import ConversationEntry


@dataclass
class BrainInput:
    instructions: str
    profile: dict[str, Any]
    tools: list[str]
    conversation: list[ConversationEntry]
    response_instructions: str | None = None


@dataclass
class Reply:
    """Say ``text`` (may be empty) and/or call tools, in that order."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class Brain(Protocol):
    def respond(self, given: BrainInput) -> Reply: ...


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
