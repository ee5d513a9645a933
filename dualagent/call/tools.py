"""One call's tools: the agent spec's tools for the agent under test, ``end_call`` for the caller.

:class:`Toolbox` is the bridge's tool executor. It never raises: a bad argument, a tool that
fails, an endpoint that times out or answers an error all become ``{"ok": false, "error": ...}``,
which the agent reads and the recording keeps, and the call goes on.

- ``python`` tools get the arguments (a dict) and the call's state; sync ones run in a thread,
  so a slow one never stalls the audio of other calls;
- ``responses`` tools answer with the first canned result whose ``when`` matches;
- ``http`` tools POST the arguments as JSON and use the JSON answer (``${ENV_VAR}`` in their
  headers is filled in here, at call time; headers are never written anywhere).

Arguments of ``responses`` and ``http`` tools are checked against the tool's JSON schema first
(a python tool checks its own, as a real backend would).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import os
import re
from typing import Any

from dualagent.agent_spec import AgentSpec, ToolSpec, call_tool_function
from dualagent.call.effects import Agent
from dualagent.realtime.redact import redact_url
from dualagent.schema_check import first_problem

CALLER_TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "end_call",
        "description": "Hang up once your business is done and you have said goodbye.",
        "parameters": {
            "additionalProperties": False,
            "properties": {
                "reason": {
                    "description": "Short reason, in plain words",
                    "minLength": 1,
                    "type": "string",
                }
            },
            "required": ["reason"],
            "type": "object",
        },
    }
]
"""The caller's tools (the caller only ever hangs up)."""


@functools.cache
@functools.cache
def _caller_end_call() -> ToolSpec:
    """The caller's end_call as a spec, for checking its arguments (built once, on first use;
    our own schema, so not checked against the metaschema during a call)."""
    return ToolSpec.model_validate(
        {"name": "end_call", "parameters": CALLER_TOOLS[0]["parameters"], "responses": []},
        context={"shipped": True},
    )


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Toolbox:
    """Runs one call's function calls: ``await toolbox(agent, name, arguments_json)``."""

    def __init__(self, spec: AgentSpec, state: Any = None) -> None:
        self.spec = spec
        self.state = state
        self.ended_by: str | None = None  # the first end_call (either side)

    async def __call__(self, agent: Agent, name: str, arguments: str) -> dict[str, Any]:
        if agent == "caller":
            return self._caller_tool(name, arguments)
        tool = self.spec.tool(name)
        if tool is None:
            valid = ", ".join(t.name for t in self.spec.tools) or "none"
            return _error(f"unknown tool {name!r}; valid tools: {valid}")
        parsed = _parse(arguments, name)
        if isinstance(parsed, str):
            return _error(parsed)
        try:
            if tool.implementation == "python":
                output = await self._run_python(tool, parsed)
            else:
                problem = _schema_problem(tool, parsed)
                if problem is not None:
                    return _error(problem)
                if tool.implementation == "responses":
                    output = _canned(tool, parsed)
                else:
                    output = await _post(tool, parsed)
        except Exception as exc:  # the tool's bug: the agent reads it, the call goes on
            return _error(f"{name}: {type(exc).__name__}: {exc}")
        if not isinstance(output, dict):
            output = {"result": output}
        if name == "end_call" and output.get("ok", True):
            self.ended_by = self.ended_by or "cs"
        return output

    async def _run_python(self, tool: ToolSpec, arguments: dict[str, Any]) -> Any:
        function = tool.function
        if inspect.iscoroutinefunction(function):
            return await call_tool_function(function, arguments, self.state)
        if getattr(function, "__module__", "").startswith("dualagent."):
            # The shipped domains' tools (bank, clinic) change in-memory state in microseconds:
            # a thread hop would cost more than the tool.
            return call_tool_function(function, arguments, self.state)
        result = await asyncio.to_thread(call_tool_function, function, arguments, self.state)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _caller_tool(self, name: str, arguments: str) -> dict[str, Any]:
        if name != "end_call":
            return _error(f"unknown tool {name!r}; valid tools: end_call")
        parsed = _parse(arguments, name)
        if isinstance(parsed, str):
            return _error(parsed)
        problem = _schema_problem(_caller_end_call(), parsed)
        if problem is not None:
            return _error(problem)
        self.ended_by = self.ended_by or "caller"
        # A state that tracks the end (the bank's) refuses actions after it, as a line would.
        if getattr(self.state, "call_ended", "absent") is None:
            self.state.call_ended = parsed["reason"]
            self.state.ended_by = "caller"
        return {"ok": True, "ended": True}

    def snapshot(self) -> Any:
        """The call's state as JSON-able data (its ``snapshot()``, or itself if plain)."""
        if self.state is None:
            return None
        snapshot = getattr(self.state, "snapshot", None)
        if callable(snapshot):
            return snapshot()
        return self.state if isinstance(self.state, dict | list) else repr(self.state)


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}


def _parse(arguments: str | dict[str, Any] | None, name: str) -> dict[str, Any] | str:
    """The arguments as a dict, or a message saying why they are not one."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError as exc:
        return f"{name}: arguments are not valid JSON ({exc})"
    if not isinstance(value, dict):
        return f"{name}: arguments must be a JSON object, got {type(value).__name__}"
    return value


def _schema_problem(tool: ToolSpec, arguments: dict[str, Any]) -> str | None:
    problem = first_problem(tool.parameters, arguments)
    return None if problem is None else f"{tool.name}: {problem}"


def _canned(tool: ToolSpec, arguments: dict[str, Any]) -> dict[str, Any]:
    for response in tool.responses or []:
        if response.matches(arguments):
            return json.loads(json.dumps(response.result))  # a copy the agent cannot change
    return _error(f"{tool.name}: no canned response matches {json.dumps(arguments)}")


async def _post(tool: ToolSpec, arguments: dict[str, Any]) -> Any:
    url = tool.http or ""
    shown = redact_url(url)
    headers = {key: _ENV.sub(_env_value, value) for key, value in tool.headers.items()}
    # Imported on the first http tool, off the event loop (not by every `dualagent run`).
    httpx = await asyncio.to_thread(importlib.import_module, "httpx")
    try:
        async with httpx.AsyncClient(timeout=tool.timeout_s, trust_env=False) as client:
            response = await client.post(url, json=arguments, headers=headers)
    except httpx.TimeoutException:
        return _error(f"{tool.name}: {shown} did not answer within {tool.timeout_s:g} s")
    except httpx.HTTPError as exc:
        return _error(f"{tool.name}: cannot reach {shown}: {type(exc).__name__}")
    if response.status_code >= 400:
        return _error(
            f"{tool.name}: {shown} answered HTTP {response.status_code}: {_short(response.text)}"
        )
    try:
        return response.json()
    except ValueError:
        return _error(f"{tool.name}: {shown} answered with something that is not JSON")


def _env_value(match: re.Match[str]) -> str:
    return os.environ.get(match.group(1), "")


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
