"""From options to a plan: ``plan_call(CallOptions) -> CallPlan``, all checks done, no I/O.

Planning resolves every default (explicit value > scenario > default), loads the persona and
scenario, renders both sessions, and checks everything a user can get wrong, so that a bad
value fails before anything is written. Running the plan is :func:`dualagent.call.simulate.run_plan`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dualagent import agents, bank, datafiles
from dualagent.agent_spec import (
    DEFAULT_AGENT,
    AgentSpec,
    AgentSpecError,
    TurnDetection,
    load_agent,
)
from dualagent.call.core import CallSettings
from dualagent.call.hosted import agent_headers
from dualagent.call.line import LineModel, make_line
from dualagent.call.options import DEFAULT_DURATION_S, DEFAULT_TRANSCRIPTION_MODEL, CallOptions
from dualagent.call.recording import validate_conversation_id
from dualagent.errors import InputError
from dualagent.personas import Persona, PersonaError, load_persona
from dualagent.realtime import protocol as p
from dualagent.realtime.redact import redact_url
from dualagent.realtime.replay import REPLAY_MODEL, REPLAY_PREFIX, replay_url
from dualagent.scenarios import Scenario, ScenarioError, load_scenario
from dualagent.version import __version__

PHONE_STREAM_MODEL = "phone-stream-bot"
"""The model a phone-stream bot is recorded with: unknown to us (it is the bot's own)."""
DEFAULT_OPENAI_MODEL = "gpt-realtime-2.1"
"""The hosted default: OpenAI's recommended GA realtime model (checked 2026-11-27; gpt-realtime
and gpt-realtime-mini shut down on 2027-01-20, replaced by gpt-realtime-2.1 and -2.1-mini)."""


@dataclass
class CallPlan:
    """Everything a call needs, resolved and checked; ``metadata`` is what the recording says."""

    options: CallOptions
    persona: Persona
    scenario: Scenario | None
    intent: str
    conversation_id: str
    output_dir: Path
    backends: dict[str, str]
    models: dict[str, str]
    sessions: dict[str, p.SessionConfig]
    settings: CallSettings
    fixture: bank.BankFixture
    agent: AgentSpec
    state_data: Any
    line: LineModel
    metadata: dict[str, Any] = field(default_factory=dict)
    # Extra headers per agent's backend (secrets: never in metadata, never shown).
    headers: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def route(self) -> str:
        return self.options.route

    @property
    def pace(self) -> str:
        return str(self.metadata["pace"])

    @property
    def transport(self) -> str:
        """How the bridge reaches the embedded server: ``websocket`` or ``memory``."""
        return str(self.metadata["transport"])

    @property
    def needs_local_server(self) -> bool:
        return "local" in self.backends.values()

    @property
    def judge(self) -> Scenario | Persona:
        """What the call is evaluated against: the scenario's checks, else the persona's goal."""
        return self.scenario if self.scenario is not None else self.persona


def plan_call(options: CallOptions, *, default_transport: str = "websocket") -> CallPlan:
    """Resolve and check ``options``; raise :class:`InputError` (one line) on a bad value.

    ``default_transport``: the transport when ``options`` names none and both agents run on
    the embedded backend (batches pass ``memory``); otherwise it is ``websocket``.
    """
    sc = resolve_scenario(options.scenario)
    if sc is not None and options.caller_type is None:
        persona = sc.resolve_persona()
    else:
        persona = resolve_persona(options.caller_type or "typical")
        if sc is not None and sc.goal is not None:  # another caller, the scenario's goal
            persona = persona.model_copy(update={"goal": sc.goal})
    duration_s = _first(options.duration, sc.duration_s if sc else None, DEFAULT_DURATION_S)
    max_turns = _first(
        options.max_turns, sc.turn_limit if sc else None, persona.goal.max_conversation_turns
    )
    # A replayed caller's audio already carries its call's line: clean unless asked.
    replay = replay_source(options.caller_backend)
    line = line_condition(_first(options.line, sc.line if sc and not replay else None))
    spec = resolve_agent(_first(options.agent, getattr(sc, "agent", None), DEFAULT_AGENT))
    # The bank's intents drive its scripted brains; another agent's intent is a free label.
    banking = agents.is_banking(spec)
    intent = (
        options.intent or (sc.intent if sc else None) or ("lost_card" if banking else spec.name)
    )
    if banking and intent not in agents.INTENTS:
        raise InputError(f"invalid intent {intent!r}; valid choices: {', '.join(agents.INTENTS)}")
    explicit_backend = options.backend if "backend" in options.model_fields_set else None
    backends = {
        "caller": options.caller_backend or options.backend,
        "cs": _first(options.cs_backend, explicit_backend, spec.backend, options.backend),
    }
    for agent, backend in backends.items():  # refused before a server starts or a file exists
        if backend == "openai" and not os.environ.get("OPENAI_API_KEY"):
            name = "backend" if options.backend == backend else f"{agent}_backend"
            raise InputError(
                f"{name}: backend 'openai' needs an API key: set OPENAI_API_KEY in the environment"
            )
    # Hosted models behave as on a phone line only when audio arrives at speaking speed.
    hosted = any(b == "openai" or b.startswith("wss://") for b in backends.values())
    pace = options.pace or ("realtime" if hosted else "fast")
    phone = backends["cs"].startswith(("twilio+ws://", "twilio+wss://"))
    if phone:  # a bot on a phone line: audio at speaking speed, the bot takes its own turns
        from dualagent.realtime.phone_stream import TURN_DETECTION, with_stream_parameters

        pace = check_phone_stream(options, backends["cs"])
        backends["cs"] = with_stream_parameters(backends["cs"], spec.stream_parameters)
        spec = spec.model_copy(update={"turn_detection": TurnDetection(**TURN_DETECTION)})
    transport = resolve_transport(options.transport, backends, default_transport)

    conversation_id = (
        options.conversation_id
        or f"{persona.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    )
    try:
        validate_conversation_id(conversation_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    output_dir = Path(options.output_dir)
    check_output_dir(output_dir)
    folder = output_dir / conversation_id
    if folder.exists() and any(folder.iterdir()):
        raise InputError(
            f"conversation {conversation_id!r} already exists in {output_dir}; "
            "choose another --conversation-id"
        )

    if sc is not None and options.fixture is None and options.customer_id is None:
        fixture, facts = sc.bank_fixture(), sc.caller_facts()
    else:
        fixture = options.fixture or bank.default_fixture()
        try:
            facts = agents.caller_facts_from_fixture(fixture, options.customer_id)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    modalities = ["text"] if options.route == "text" else ["audio"]
    # A plain ws:// URL is most often an embedded server of ours (`dualagent local-server`):
    # its models are named by role. Hosted services (openai, wss://) get the hosted default.
    # The spec's model names a model of the service it is deployed on (never our embedded one).
    spec_model = spec.model if backends["cs"] != "local" else None
    local_models = {"caller": agents.LOCAL_CALLER_MODEL, "cs": spec.local_model}
    models = {
        agent: explicit
        or (local_models[agent] if _is_local(backends[agent]) else DEFAULT_OPENAI_MODEL)
        for agent, explicit in (
            ("caller", options.caller_model),
            ("cs", options.cs_model or spec_model),
        )
    }
    llms = llm_endpoints(options, backends)
    models.update({agent: endpoint.model_name for agent, endpoint in llms.items()})
    if phone:  # whatever the bot runs is its own: no model of ours, no price
        models["cs"] = PHONE_STREAM_MODEL
    if replay is not None:
        backends["caller"], models["caller"] = replay_url(replay), REPLAY_MODEL
    hearing = {agent: _hearing(options, agent, backends[agent]) for agent in ("caller", "cs")}
    headers = {agent: agent_headers(agent, options) for agent in ("caller", "cs")}
    sessions = {
        "caller": agents.caller_session(
            persona,
            facts if banking else (sc.facts if sc is not None else {}),
            spec=spec,
            situation=sc.situation if sc is not None else "",
            intent=intent,
            seed=options.seed,
            model=models["caller"],
            voice=options.caller_voice,
            output_modalities=modalities,
            hearing=hearing["caller"],
        ),
        "cs": agents.agent_session(
            spec,
            seed=options.seed,
            model=models["cs"],
            voice=options.cs_voice,
            output_modalities=modalities,
            hearing=hearing["cs"],
        ),
    }
    settings = CallSettings(
        route=options.route,
        max_turns=max_turns,
        max_duration_s=duration_s,
        speaking_rate={"caller": persona.personality.speaking_rate, "cs": 1.0},
        line=line,
        # A replayed caller's turns are as recorded: it never cuts in when it was not.
        interrupt_probability=0.0 if replay else persona.personality.tendency_to_interrupt,
        seed=options.seed,
        mood=persona.personality.mood_profile(),
        # The caller may always hang up; the spec says which of its tools end the call.
        ending_tools={"end_call": "hang_up", **spec.ending_tools()},
        agent_session=options.agent_session,
    )
    scenario_state = getattr(sc, "state", None) if sc is not None else None
    if scenario_state is not None:
        state_data = scenario_state
    else:  # the banking agent's state is the bank: the scenario's fixture, else the default
        state_data = fixture if spec.profile.get("role") == "cs" else None
    metadata = {
        "package_version": __version__,
        "caller_type": persona.personality.type.value if persona.personality.type else persona.name,
        "persona": persona.model_dump(mode="json"),
        "scenario": sc.metadata()
        if sc is not None
        else {"name": f"{intent}-default", "intent": intent, "customer": facts.as_dict()},
        "agent": spec.describe(),
        "agent_session": options.agent_session,
        "line": line.describe(),
        "backend": {agent: public_backend(b) for agent, b in backends.items()},
        "models": models,
        "voices": {a: sessions[a].audio.output.voice for a in ("caller", "cs")},  # type: ignore[union-attr]
        "route": options.route,
        "pace": pace,
        "transport": transport,
        **({"phone_stream": {"agent": "phone-stream bot"}} if phone else {}),
        **({"replay": {"source": str(replay)}} if replay else {}),
        "seed": options.seed,
        "max_turns": max_turns,
        "duration_limit_s": duration_s,
        "audio_format": options.audio_format,
        "hearing": {agent: h.describe() for agent, h in hearing.items()},
    }
    if llms:  # endpoint, model and sampling settings; never the API key
        metadata["llm"] = {agent: e.describe(options.seed) for agent, e in llms.items()}
    return CallPlan(
        options=options,
        persona=persona,
        scenario=sc,
        intent=intent,
        conversation_id=conversation_id,
        output_dir=output_dir,
        backends=backends,
        models=models,
        sessions=sessions,
        settings=settings,
        fixture=fixture,
        agent=spec,
        state_data=state_data,
        line=line,
        metadata=metadata,
        headers=headers,
    )


def replay_source(caller_backend: str | None) -> Path | None:
    """The call ``replay:PATH`` names (a recording folder or a transcript JSON with the
    caller's audio, :mod:`dualagent.realtime.replay`), checked; None if not a replay."""
    if not caller_backend or not caller_backend.startswith(REPLAY_PREFIX):
        return None
    from dualagent.scenario_from_call import load_real_call

    call = load_real_call(caller_backend.removeprefix(REPLAY_PREFIX))
    if call.caller_audio is None:
        raise InputError(
            f"caller_backend {caller_backend!r}: no caller audio to replay (a recording's "
            'caller_audio file, or "audio" in a transcript JSON)'
        )
    return call.source.resolve()


def check_phone_stream(options: CallOptions, backend: str) -> str:
    """The pace of a call to a phone-stream bot (always ``realtime``); :class:`InputError` if
    the options ask for what a phone line cannot do."""
    shown = public_backend(backend)
    if options.route != "audio":
        raise InputError(f"a phone-stream bot ({shown}) needs route audio, not {options.route!r}")
    if options.pace not in (None, "realtime"):
        raise InputError(
            f"a phone-stream bot ({shown}) is called at pace realtime (a phone line's), "
            f"not {options.pace!r}"
        )
    return "realtime"


def resolve_transport(
    transport: str | None, backends: dict[str, str], default: str = "websocket"
) -> str:
    """The transport of a call: the one asked for, else ``default`` when both agents run on
    the embedded backend, else ``websocket``. ``memory`` reaches only the embedded server (a
    replayed caller needs no server: it does not count)."""
    remote = {
        agent: b
        for agent, b in backends.items()
        if b != "local" and not b.startswith(REPLAY_PREFIX)
    }
    if transport == "memory" and remote:
        agent, backend = next(iter(remote.items()))
        raise InputError(
            f"transport 'memory' needs the embedded backend (local) for both agents, but the "
            f"{agent}'s backend is {public_backend(backend)!r}; use transport websocket"
        )
    return transport or (default if not remote else "websocket")


def llm_endpoints(options: CallOptions, backends: dict[str, str]) -> dict[str, Any]:
    """The agents that are language models (``--caller-llm``/``--cs-llm``), checked."""
    from dualagent.realtime.local.brains.llm import LlmEndpoint

    endpoints = {}
    for agent, spec, model in (
        ("caller", options.caller_llm, options.caller_model),
        ("cs", options.cs_llm, options.cs_model),
    ):
        if spec is None:
            continue
        flag = f"--{agent}-llm"
        try:
            endpoints[agent] = LlmEndpoint.parse(spec)
        except ValueError as exc:
            raise InputError(f"{flag}: {exc}") from None
        if not backends[agent].startswith(("local", "ws://")):
            raise InputError(
                f"{flag} needs the embedded server as the {agent}'s backend (local, or the ws:// "
                f"URL of `dualagent local-server`), not {public_backend(backends[agent])!r}"
            )
        if model is not None:
            raise InputError(f"{flag} and --{agent}-model both name the {agent}'s model; give one")
    return endpoints


def check_output_dir(output_dir: Path) -> None:
    """Raise :class:`InputError` unless ``output_dir`` is, or can be made, a writable folder:
    the nearest part of it that exists must be a folder this process may write in."""
    existing = output_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "" if existing == output_dir else f" ({str(existing)!r} is a file)"
        raise InputError(f"output dir {str(output_dir)!r} is not a folder{where}; give a folder")
    if existing.exists() and not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(
            f"output dir {str(output_dir)!r} is not writable ({str(existing)!r}); "
            "give a folder you may write in"
        )


def _first(*values: Any) -> Any:
    """The first value that is set: the precedence rule (explicit > scenario > default)."""
    return next((v for v in values if v is not None), None)


# Loaded files, by (kind, name, path, modification time, size): a batch plans thousands of
# calls from the same few YAML files, and parsing and validating them (an agent spec's tool
# schemas most of all) cost more than a text-route call. A changed file is loaded again.
_LOADED: dict[tuple[Any, ...], Any] = {}
_LOADED_MAX = 256


def _load_cached(kind: str, name: str | Path, load: Callable[[Any], Any]) -> Any:
    """``load(name)``, kept while its file is unchanged (a fresh deep copy each time, so no
    call can change another's); names that are not files (python refs, errors) load as is."""
    try:
        path = datafiles.resolve(kind, name, kind, ValueError).resolve()
        stat = path.stat()
    except (ValueError, OSError):
        return load(name)
    key = (kind, str(name), str(path), stat.st_mtime_ns, stat.st_size)
    loaded = _LOADED.get(key)
    if loaded is None:
        loaded = load(name)
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.clear()
        _LOADED[key] = loaded
    return loaded.model_copy(deep=True)


def resolve_persona(caller_type: str | Persona) -> Persona:
    if isinstance(caller_type, Persona):
        return caller_type
    try:
        return _load_cached("personas", caller_type, load_persona)
    except PersonaError as exc:
        raise InputError(str(exc)) from None


def resolve_agent(agent: str | Path | AgentSpec) -> AgentSpec:
    if isinstance(agent, AgentSpec):
        return agent
    try:
        return _load_cached("agents", agent, load_agent)
    except AgentSpecError as exc:
        raise InputError(str(exc)) from None


def resolve_scenario(scenario: str | Path | Scenario | None) -> Scenario | None:
    if scenario is None or isinstance(scenario, Scenario):
        return scenario
    try:
        return _load_cached("scenarios", scenario, load_scenario)
    except ScenarioError as exc:
        raise InputError(str(exc)) from None


def line_condition(spec: Any) -> LineModel:
    try:
        return make_line(spec)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def public_backend(backend: str) -> str:
    """The backend as it may be written to disk: no user part, secret-named query values
    replaced (see :func:`~dualagent.realtime.redact.redact_url`)."""
    return backend if backend in ("local", "openai") else redact_url(backend)


def _is_local(backend: str) -> bool:
    """The embedded server, a plain ws:// URL (most often a `dualagent local-server`), or a
    replayed caller (it hears with the embedded server's recogniser)."""
    return backend.startswith(("local", "ws://", REPLAY_PREFIX))


def _hearing(options: CallOptions, agent: str, backend: str) -> agents.Hearing:
    """How ``agent``'s server transcribes what it hears: the agent's option, else the shared
    one, else the backend's default (the embedded server's name, or the hosted default)."""
    default = (
        agents.LOCAL_TRANSCRIPTION_MODEL if _is_local(backend) else DEFAULT_TRANSCRIPTION_MODEL
    )
    return agents.Hearing(
        model=_first(
            getattr(options, f"{agent}_transcription_model"), options.transcription_model, default
        ),
        language=_first(
            getattr(options, f"{agent}_transcription_language"), options.transcription_language
        ),
        noise_reduction=_first(
            getattr(options, f"{agent}_noise_reduction"), options.noise_reduction
        ),
    )
