"""Agent specs: the agent under test as data (instructions, voice, turn-taking, tools).

A spec is a YAML file or an :class:`AgentSpec` built in Python. Shipped specs live in
``dualagent/data/agents/`` (``bank``: First Bank's card and account line; ``clinic``: a clinic's
appointment line); a path to your own ``.yaml`` file, or ``package.module:attribute`` naming an
``AgentSpec``, works wherever a name does. See ``docs/your-agent.md``.

Every tool has exactly one implementation:

- ``python: package.module:function``: called as ``function(arguments, state)`` (or
  ``function(arguments)``), sync or async, returning a JSON-able dict (a module next to the
  spec's YAML file imports too: give it a name of its own, e.g. ``hotel_tools``);
- ``responses:``: canned results, the first whose ``when`` matches the arguments;
- ``http: URL``: the arguments POSTed as JSON, the JSON answer used as the result.

Everything is checked when the spec is loaded (schemas, imports, one implementation per tool),
so a bad spec never starts a call: errors are :class:`AgentSpecError`, one line
``"<source>: <field>: <reason>"``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dualagent import datafiles
from dualagent.errors import describe_validation_error

__all__ = [
    "AgentSpec",
    "AgentSpecError",
    "CannedResponse",
    "ToolSpec",
    "TurnDetection",
    "import_object",
    "list_agents",
    "load_agent",
]

DEFAULT_AGENT = "bank"
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


class AgentSpecError(ValueError):
    """An agent spec name or file that cannot be used; the message says where, what and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TurnDetection(_Strict):
    """Who decides when the agent under test answers.

    ``none``: the bridge commits the caller's speech and asks for each response (as a phone
    system with push-to-talk would). ``server_vad`` / ``semantic_vad``: the agent's own voice
    activity detection decides when to answer and notices when it is interrupted; the bridge
    then streams the caller's audio continuously, as a phone line does.
    """

    type: Literal["none", "server_vad", "semantic_vad"] = "none"
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="server_vad")
    prefix_padding_ms: int | None = Field(None, ge=0, le=5000, description="server_vad")
    silence_duration_ms: int | None = Field(None, ge=0, le=10000, description="server_vad")
    eagerness: Literal["low", "medium", "high", "auto"] | None = Field(
        None, description="semantic_vad"
    )
    create_response: bool | None = None
    interrupt_response: bool | None = None

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> TurnDetection:
        vad_only = ("threshold", "prefix_padding_ms", "silence_duration_ms")
        if self.type != "server_vad":
            given = [f for f in vad_only if getattr(self, f) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply to type server_vad")
        if self.type != "semantic_vad" and self.eagerness is not None:
            raise ValueError("eagerness only applies to type semantic_vad")
        if self.type == "none" and (self.create_response, self.interrupt_response) != (
            None,
            None,
        ):
            raise ValueError("create_response and interrupt_response need a VAD type")
        return self

    @property
    def enabled(self) -> bool:
        return self.type != "none"

    def session_value(self) -> dict[str, Any] | None:
        """The session's ``audio.input.turn_detection`` (None: turn detection off)."""
        if not self.enabled:
            return None
        return self.model_dump(exclude_none=True)


class CannedResponse(_Strict):
    """One canned result: used when every ``when`` entry matches the call's arguments.

    A ``when`` value matches an argument equal to it; a string value also matches a string
    argument that contains it, ignoring case. An empty ``when`` matches any call (a default).
    """

    when: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any]

    def matches(self, arguments: dict[str, Any]) -> bool:
        for key, expected in self.when.items():
            if key not in arguments:
                return False
            got = arguments[key]
            if got == expected:
                continue
            contains = isinstance(expected, str) and isinstance(got, str)
            if contains and expected.strip().lower() in got.lower():
                continue
            return False
        return True


class ToolSpec(_Strict):
    """A function tool of the agent under test and its implementation (exactly one of
    ``python``, ``responses``, ``http``)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}, "required": []},
        description="JSON schema of the arguments (an object)",
    )
    python: str | None = Field(None, description="package.module:function")
    responses: list[CannedResponse] | None = None
    http: str | None = Field(None, description="a URL the arguments are POSTed to as JSON")
    timeout_s: float = Field(10.0, gt=0, le=300, description="http: how long to wait")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="http: extra headers; ${ENV_VAR} is replaced at call time (never written)",
    )
    ends_call: str | None = Field(
        None, description="a successful call ends the call with this end_reason"
    )
    say: str | None = Field(
        None,
        description="how the offline scripted agent reads a result: a template over the "
        "result's fields, e.g. 'You are booked for {date} at {time}.'",
    )
    _function: Callable[..., Any] | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _TOOL_NAME.match(value):
            raise ValueError(f"{value!r} is not a tool name (letters, digits, _ and -; 1-64)")
        return value

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # The shipped specs' schemas are checked against the metaschema by the tests; importing
        # jsonschema (its format checkers compile dozens of grammars) would cost every
        # ``dualagent run`` a second or more of its start (docs/performance.md).
        if not (info.context or {}).get("shipped"):
            check_json_schema(value)
        if value.get("type") != "object":
            raise ValueError("must be an object schema (type: object)")
        properties = value.get("properties") or {}
        missing = [r for r in value.get("required") or [] if r not in properties]
        if missing:
            raise ValueError(f"required names undeclared properties: {', '.join(missing)}")
        return {"properties": {}, "required": [], **value}

    @field_validator("http")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _one_implementation(self) -> ToolSpec:
        given = [k for k in ("python", "responses", "http") if getattr(self, k) is not None]
        if len(given) != 1:
            what = ", ".join(given) if given else "none"
            raise ValueError(
                f"tool {self.name!r} needs exactly one implementation: python, responses or "
                f"http (got {what})"
            )
        if self.python is not None:
            try:
                self._function = import_object(self.python, "function")
            except ValueError as exc:
                raise ValueError(f"python: {exc}") from None
            if not callable(self._function):
                raise ValueError(f"python: {self.python!r} is not callable")
        return self

    @property
    def implementation(self) -> Literal["python", "responses", "http"]:
        if self.python is not None:
            return "python"
        return "responses" if self.responses is not None else "http"

    @property
    def function(self) -> Callable[..., Any]:
        assert self._function is not None, "not a python tool"
        return self._function

    def session_tool(self) -> dict[str, Any]:
        """The tool as a Realtime session declares it."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
        }

    def describe(self) -> dict[str, Any]:
        """What the recording says about the tool (never its headers: they may hold secrets)."""
        out: dict[str, Any] = {"name": self.name, "implementation": self.implementation}
        if self.python:
            out["python"] = self.python
        if self.http:
            from dualagent.realtime.redact import redact_url

            out["http"] = redact_url(self.http)
        if self.ends_call:
            out["ends_call"] = self.ends_call
        return out


class AgentSpec(_Strict):
    """The agent under test: what it is told, how it sounds, how it takes turns, its tools."""

    name: str
    description: str = ""
    organisation: str = Field(
        "", description="whom the caller phones, in the caller's words, e.g. 'First Bank'"
    )
    agent_name: str = Field("", description="the agent's own name, e.g. 'Alex'")
    instructions: str
    greeting: str | None = Field(None, description="the first thing the agent says")
    voice: str | None = None
    model: str | None = Field(None, description="the model on a hosted backend")
    backend: str | None = Field(
        None,
        description="local, openai, a ws:// / wss:// URL, or a phone-stream bot's "
        "twilio+ws:// / twilio+wss:// URL",
    )
    stream_parameters: dict[str, str] = Field(
        default_factory=dict,
        description="a phone-stream bot's start message customParameters, e.g. caller_id",
    )
    local_model: str = Field(
        "local-agent", description="the embedded server's brain when run offline"
    )
    turn_detection: TurnDetection = Field(default_factory=TurnDetection)
    tools: list[ToolSpec] = Field(default_factory=list)
    state: str | None = Field(
        None,
        description="package.module:function making the call's state from the scenario's "
        "state data (python tools get it; its snapshot() is recorded)",
    )
    profile: dict[str, Any] = Field(
        default_factory=dict,
        description="extra data for the offline scripted agent (its profile section)",
    )
    _state_factory: Callable[[Any], Any] | None = PrivateAttr(default=None)
    _source: str = PrivateAttr(default="")

    @field_validator("tools")
    @classmethod
    def _unique(cls, tools: list[ToolSpec]) -> list[ToolSpec]:
        names = [t.name for t in tools]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tool names must be unique: {', '.join(twice)} given twice")
        return tools

    @field_validator("profile")
    @classmethod
    def _planted_faults(cls, profile: dict[str, Any]) -> dict[str, Any]:
        """``planted_faults``: misbehaviours of the offline scripted bank agent (calibration)."""
        faults = profile.get("planted_faults")
        if faults is not None:
            from dualagent.realtime.local.brains.cs import PLANTED_FAULTS

            names = [faults] if isinstance(faults, str) else faults
            if not isinstance(names, list):
                names = [names]
            unknown = [f for f in names if f not in PLANTED_FAULTS]
            if unknown:
                valid = ", ".join(PLANTED_FAULTS)
                raise ValueError(f"planted_faults: unknown fault {unknown[0]!r}; valid: {valid}")
            profile = {**profile, "planted_faults": list(names)}
        return profile

    @model_validator(mode="after")
    def _import_state(self) -> AgentSpec:
        if self.state is not None:
            try:
                self._state_factory = import_object(self.state, "function")
            except ValueError as exc:
                raise ValueError(f"state: {exc}") from None
        return self

    @property
    def source(self) -> str:
        """Where the spec came from (a file, a shipped name, or Python)."""
        return self._source or self.name

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)

    def session_tools(self) -> list[dict[str, Any]]:
        return [t.session_tool() for t in self.tools]

    def ending_tools(self) -> dict[str, str]:
        """Tools whose success ends the call, with the end_reason each gives."""
        return {t.name: t.ends_call for t in self.tools if t.ends_call}

    def new_state(self, data: Any = None) -> Any:
        """The call's state for python tools (None when the spec has no ``state``)."""
        return self._state_factory(data) if self._state_factory is not None else None

    def describe(self) -> dict[str, Any]:
        """What the recording says about the agent under test."""
        out: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "turn_detection": self.turn_detection.type,
            "tools": [t.describe() for t in self.tools],
        }
        if self.profile.get("planted_faults"):  # a calibration call: say so in the recording
            out["planted_faults"] = self.profile["planted_faults"]
        return out


def check_json_schema(schema: dict[str, Any]) -> None:
    """Raise ValueError (naming where) unless ``schema`` is a valid JSON schema (2020-12)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise ValueError(
            f"not a JSON schema{f' at {where}' if where else ''}: {exc.message}"
        ) from None


def import_object(ref: str, what: str = "object") -> Any:
    """``package.module:attribute`` imported; a ValueError names what is missing."""
    if not _REF.match(ref):
        raise ValueError(f"{ref!r} is not package.module:{what}")
    module_name, attribute = ref.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for {ref!r}: {exc}") from None
    target: Any = module
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise ValueError(f"module {module_name!r} has no {attribute!r} (for {ref!r})")
        target = getattr(target, part)
    return target


def list_agents() -> list[str]:
    """Names of the shipped agent specs."""
    return datafiles.list_builtin("agents")


def load_agent(name_or_path: str | Path | AgentSpec) -> AgentSpec:
    """A shipped spec by name, a ``.yaml`` path, or ``package.module:attribute`` naming an
    :class:`AgentSpec`; raises :class:`AgentSpecError` (one line) if it cannot be used."""
    if isinstance(name_or_path, AgentSpec):
        return name_or_path
    text = str(name_or_path)
    if isinstance(name_or_path, str) and _REF.match(text) and not text.endswith((".yaml", ".yml")):
        try:
            spec = import_object(text, "AgentSpec")
        except ValueError as exc:
            raise AgentSpecError(f"agent {text!r}: {exc}") from None
        if not isinstance(spec, AgentSpec):
            raise AgentSpecError(f"agent {text!r} is a {type(spec).__name__}, not an AgentSpec")
        spec._source = text
        return spec
    path = datafiles.resolve("agents", name_or_path, "agent", AgentSpecError)
    data = datafiles.read_yaml(path, AgentSpecError)
    if path.parent == datafiles.builtin_dir("agents"):
        return agent_from_dict(data, source=path.stem, shipped=True)
    # A tools module next to the spec imports as it would for a script in that folder.
    with _importable(path.resolve().parent):
        return agent_from_dict(data, source=str(path))


@contextlib.contextmanager
def _importable(folder: Path) -> Iterator[None]:
    """``folder`` first on ``sys.path`` while a spec's ``python:`` references are imported."""
    entry = str(folder)
    added = entry not in sys.path
    if added:
        sys.path.insert(0, entry)
    try:
        yield
    finally:
        if added and entry in sys.path:
            sys.path.remove(entry)


def agent_from_dict(data: Any, *, source: str = "<dict>", shipped: bool = False) -> AgentSpec:
    """Validate a spec given as a dict (e.g. parsed YAML). ``shipped``: one of the package's
    own specs, whose tool schemas the tests check against the JSON-schema metaschema."""
    if not isinstance(data, dict):
        raise AgentSpecError(
            f"{source}: an agent spec must be a mapping, got {type(data).__name__}"
        )
    try:
        spec = AgentSpec.model_validate(data, context={"shipped": shipped})
    except ValidationError as exc:
        raise AgentSpecError(describe_validation_error(exc, source, model=AgentSpec)) from None
    spec._source = source
    return spec


def call_tool_function(function: Callable[..., Any], arguments: dict[str, Any], state: Any) -> Any:
    """Call a python tool with the arguments, and the state if it takes a second parameter."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: arguments only
        return function(arguments)
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in parameters)
    return function(arguments, state) if varargs or len(positional) >= 2 else function(arguments)
