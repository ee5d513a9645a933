"""What every check uses: the spec base class, tool names checked against the agent under test,
and small readers of a call record (its function calls, turns and final state).

Tool names in a check are validated against the tools of the scenario's agent: a scenario
validates its checks with :func:`check_context` of its agent spec as pydantic's validation
context. A check built in Python without a context accepts the tools of any shipped spec.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo

from dualagent import bank
from dualagent.call.record import CallRecord
from dualagent.text import words

if TYPE_CHECKING:
    from dualagent.agent_spec import AgentSpec

__all__ = [
    "BANK_TOOL_NAMES",
    "CALLER_TOOL_NAMES",
    "CheckModel",
    "CheckResult",
    "Speaker",
    "Verdict",
    "agent_state",
    "calls_named",
    "check_context",
    "describe_call",
    "kinds_in",
    "known_tool",
    "listify",
    "same_value",
    "short",
    "tool_call_succeeded",
    "turns_of",
    "unobservable_kinds",
]

CALLER_TOOL_NAMES: tuple[str, ...] = tuple(t["name"] for t in bank.CALLER_TOOLS)
BANK_TOOL_NAMES = tuple(dict.fromkeys(t["name"] for t in bank.CS_TOOLS + bank.CALLER_TOOLS))

Speaker = Literal["cs", "caller", "any"]
Verdict = tuple[bool, str]


class CheckResult(BaseModel):
    """One check's verdict: ``passed`` = the check's condition holds. ``observable=False``: the
    recording cannot say (a phone-stream bot's tool calls or state), so neither passed nor
    failed; ``passed`` is then False and the outcome leaves the check out."""

    name: str
    passed: bool
    evidence: str
    observable: bool = True


TOOL_CALL_KINDS = frozenset(
    {"tool_called", "tool_not_called", "transferred_to_human", "not_transferred", "tool_order"}
    | {"claim_backed", "amounts_grounded", "verified"}
)
"""Check kinds that read the agent's tool calls."""
STATE_KINDS = frozenset(
    {"card_status", "replacement_ordered", "address_is", "address_mentioned", "dispute_opened"}
    | {"state"}
)
"""Check kinds that read the agent's state after the call (its tools' data)."""


def unobservable_kinds(metadata: dict[str, Any]) -> frozenset[str]:
    """The check kinds a recording cannot judge: for a phone-stream bot, its state always (it
    is the bot's own), and its tool calls unless it reported them (our tool report hook)."""
    stream = metadata.get("phone_stream")
    if not isinstance(stream, dict):
        return frozenset()
    reported = (stream.get("observable") or {}).get("tool_calls") == "reported"
    return STATE_KINDS if reported else STATE_KINDS | TOOL_CALL_KINDS


def kinds_in(spec: Any, standard: dict[str, Any], normalize: Any) -> set[str]:
    """Every check kind in ``spec`` that reads the agent under test, nested checks and
    standard criteria (``standard``, keyed by ``normalize(criterion)``) included."""
    kinds = {str(getattr(spec, "kind", ""))}
    if getattr(spec, "agent", None) == "caller":  # our caller's tool calls: always seen
        kinds = set()
    nested = [*(getattr(spec, "checks", None) or []), getattr(spec, "check", None)]
    if getattr(spec, "kind", None) == "standard":
        nested.append(standard.get(normalize(spec.criterion)))
    for child in nested:
        if child is not None and hasattr(child, "kind"):
            kinds |= kinds_in(child, standard, normalize)
    return kinds


class CheckModel(BaseModel):
    """Base of every check spec: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# Tool names: the agent's own
# --------------------------------------------------------------------------------------------


def check_context(spec: AgentSpec | None) -> dict[str, Any]:
    """The validation context for checks judging calls of ``spec`` (None: the bank)."""
    if spec is None:
        return {"tools": BANK_TOOL_NAMES, "agent": "bank"}
    names = [t.name for t in spec.tools]
    return {"tools": tuple(dict.fromkeys([*names, *CALLER_TOOL_NAMES])), "agent": spec.name}


@functools.cache
def _shipped_tool_names() -> tuple[str, ...]:
    """The tools of every shipped agent spec (and the caller's), bank first."""
    from dualagent.agent_spec import list_agents, load_agent

    names = list(BANK_TOOL_NAMES)
    for agent in list_agents():
        names += [t.name for t in load_agent(agent).tools]
    return tuple(dict.fromkeys(names))


def valid_tools(info: ValidationInfo | None) -> tuple[Collection[str], str]:
    """The tool names a check may name, and whose they are (for the message)."""
    context = info.context if info is not None and isinstance(info.context, dict) else {}
    if "tools" in context:
        return context["tools"], f"agent {context.get('agent', '?')!r}"
    return _shipped_tool_names(), "the shipped agents"


def known_tool(name: str, info: ValidationInfo) -> str:
    """A field validator: ``name`` must be a tool of the agent the check judges."""
    if name in BANK_TOOL_NAMES and not (isinstance(info.context, dict) and info.context):
        return name  # the common case, without loading the other shipped specs
    tools, _ = valid_tools(info)
    if name not in tools:
        raise ValueError(f"unknown tool {name!r}; valid tools: {', '.join(tools)}")
    return name


def listify(value: Any) -> Any:
    """A single string where a list is expected is a list of one."""
    return [value] if isinstance(value, str) else value


# --------------------------------------------------------------------------------------------
# Reading a record
# --------------------------------------------------------------------------------------------


def tool_call_succeeded(call: dict[str, Any]) -> bool:
    """A recorded function call succeeded: neither the call nor its output says ``ok: false``."""
    output = call.get("output")
    output_ok = not isinstance(output, dict) or output.get("ok", True) is not False
    return call.get("ok", True) is not False and output_ok


def calls_named(record: CallRecord, name: str, agent: str | None) -> list[dict[str, Any]]:
    return [
        c
        for c in record.function_calls
        if c.get("name") == name and agent in (None, c.get("agent"))
    ]


def describe_call(call: dict[str, Any]) -> str:
    status = "ok" if tool_call_succeeded(call) else "failed"
    arguments = short(call.get("arguments"))
    return (
        f"{call.get('agent', '?')}:{call.get('name')}({arguments}) {status} at t={call.get('t_s')}s"
    )


def turns_of(record: CallRecord, speaker: str) -> list[dict[str, Any]]:
    return [t for t in record.turns if speaker == "any" or t.get("speaker") == speaker]


def agent_state(record: CallRecord) -> Any:
    """The agent's state after the call (``agent_state``: its spec state's snapshot); a
    recording from before agent specs has only ``bank_state``. None when there is neither."""
    state = record.metadata.get("agent_state")
    if state is None:
        state = record.metadata.get("bank_state")
    return state


def same_value(expected: Any, actual: Any) -> bool:
    """Expected and recorded values agree: strings by their words (case and punctuation do not
    matter), booleans only with booleans, anything else by equality."""
    if isinstance(expected, str) and isinstance(actual, str):
        return words(expected) == words(actual)
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


def short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 3] + "..."
