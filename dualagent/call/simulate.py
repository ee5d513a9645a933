"""Run one simulated call: ``await simulate(...)`` in a notebook, ``run(...)`` in a script.

This is where user input is checked (every bad value fails before anything is written, with
the valid choices in the message), backends are chosen, sessions are rendered, and the bridge
and recorder are put together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dualagent import __version__, agents, bank
from dualagent.call.bridge import DualAgentBridge, Endpoint
from dualagent.call.core import Agent, CallSettings, Log
from dualagent.call.line import LineModel, make_line
from dualagent.call.record import load_call
from dualagent.call.recording import AUDIO_FORMATS, CallRecorder, validate_conversation_id
from dualagent.evaluation.checks import evaluate
from dualagent.evaluation.judge import judge_call, judge_enabled
from dualagent.evaluation.metrics import compute_metrics
from dualagent.evaluation.pricing import estimate_cost_usd
from dualagent.personas import Persona, PersonaError, load_persona
from dualagent.realtime.local.server import LocalRealtimeServer
from dualagent.scenarios import Scenario, ScenarioError, load_scenario

ROUTES = ("audio", "text")
PACES = ("fast", "realtime")
MAX_DURATION_S = 30 * 60
DEFAULT_OUTPUT_DIR = "agent_conversations"
OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_OPENAI_MODEL = "gpt-realtime"


class InputError(ValueError):
    """A bad argument from the user: the message names the value and the valid choices."""


@dataclass
class CallResult:
    """What a finished call left behind, with notebook conveniences."""

    path: Path
    metadata: dict[str, Any]

    @property
    def conversation_id(self) -> str:
        return self.metadata["conversation_id"]

    @property
    def status(self) -> str:
        return self.metadata.get("status", "unknown")

    @property
    def end_reason(self) -> str | None:
        return self.metadata.get("end_reason")

    @property
    def turns(self) -> list[dict[str, Any]]:
        return json.loads((self.path / "transcript.json").read_text())["turns"]

    @property
    def function_calls(self) -> list[dict[str, Any]]:
        return json.loads((self.path / "function_calls.json").read_text())["calls"]

    @property
    def transcript(self):  # -> pandas.DataFrame
        """One row per turn: speaker, text, heard, start_s, end_s, interrupted, latency."""
        import pandas as pd

        return pd.DataFrame(self.turns)

    def audio_path(self, channel: str = "stereo_recording") -> Path:
        fmt = self.metadata.get("audio_format", "wav")
        return self.path / f"{channel}.{fmt}"

    def audio(self, channel: str = "stereo_recording"):  # -> IPython.display.Audio
        """An inline player for the recording (``caller_audio``, ``cs_audio`` or stereo)."""
        from IPython.display import Audio

        return Audio(filename=str(self.audio_path(channel)))

    def summary(self) -> dict[str, Any]:
        meta = self.metadata
        return {
            "conversation_id": meta.get("conversation_id"),
            "path": str(self.path),
            "status": meta.get("status"),
            "end_reason": meta.get("end_reason"),
            "caller_type": meta.get("caller_type"),
            "turns": meta.get("turn_count"),
            "duration_s": meta.get("timeline_s"),
            "wall_time_s": meta.get("wall_time_s"),
            "tool_calls": [c["name"] for c in self.function_calls],
            "outcome": (meta.get("outcome") or {}).get("result"),
            "error": meta.get("error"),
        }

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td><b>{t['speaker']}</b></td><td>{t['start_s']:.1f}s</td><td>{t['text']}</td></tr>"
            for t in self.turns
        )
        s = self.summary()
        return (
            f"<p><b>{s['conversation_id']}</b>: {s['status']} ({s['end_reason']}), "
            f"{s['turns']} turns, {s['duration_s']} s</p><table>{rows}</table>"
        )


# ------------------------------------------------------------------------------ validation


def check_choice(name: str, value: Any, choices: tuple[str, ...] | list[str]) -> str:
    if value not in choices:
        raise InputError(f"invalid {name} {value!r}; valid choices: {', '.join(choices)}")
    return value


def resolve_persona(caller_type: str | Persona) -> Persona:
    if isinstance(caller_type, Persona):
        return caller_type
    try:
        return load_persona(caller_type)
    except PersonaError as exc:
        raise InputError(str(exc)) from None


def check_backend(backend: str) -> str:
    if backend in ("local", "openai") or backend.startswith(("ws://", "wss://")):
        return backend
    raise InputError(
        f"invalid backend {backend!r}; valid choices: local, openai, or a ws:// / wss:// URL"
    )


def endpoint_for(backend: str, model: str, local_url: str | None) -> Endpoint:
    """The websocket endpoint for one agent on ``backend``."""
    if backend == "local":
        assert local_url is not None
        return Endpoint(f"{local_url}?model={model}")
    if backend == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise InputError(
                "backend 'openai' needs an API key: set OPENAI_API_KEY in the environment"
            )
        base = os.environ.get("DUALAGENT_OPENAI_URL", OPENAI_REALTIME_URL)
        return Endpoint(f"{base}?model={model}", {"Authorization": f"Bearer {key}"})
    separator = "&" if "?" in backend else "?"
    return Endpoint(backend if "model=" in backend else f"{backend}{separator}model={model}")


# ------------------------------------------------------------------------------ backends


@contextlib.asynccontextmanager
async def local_backend(
    server: LocalRealtimeServer | None = None,
) -> AsyncIterator[LocalRealtimeServer]:
    """A running embedded server: ``server`` if given (shared by many calls) or a new one."""
    if server is not None:
        yield server
        return
    async with LocalRealtimeServer() as started:
        yield started


# ------------------------------------------------------------------------------ the call


async def simulate(
    caller_type: str | Persona | None = None,
    *,
    scenario: str | Path | Scenario | None = None,
    line: str | None = None,
    duration: float | None = None,
    max_turns: int | None = None,
    route: str = "audio",
    pace: str | None = None,
    backend: str = "local",
    caller_backend: str | None = None,
    cs_backend: str | None = None,
    caller_model: str | None = None,
    cs_model: str | None = None,
    caller_voice: str | None = None,
    cs_voice: str | None = None,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    conversation_id: str | None = None,
    audio_format: str = "wav",
    seed: int = 0,
    intent: str | None = None,
    fixture: bank.BankFixture | None = None,
    customer_id: str | None = None,
    local_server: LocalRealtimeServer | None = None,
    on_log: Callable[[Log], None] | None = None,
    idle_timeout_s: float = 60.0,
    llm_judge: bool | None = None,
) -> CallResult:
    """Run one call between a persona-driven caller and the banking CS agent; record it all.

    ``scenario`` (a built-in name, a YAML path or a :class:`Scenario`) sets the persona, intent,
    bank, caller facts, line and limits; explicit arguments override it. Without a scenario the
    caller is ``caller_type`` (default: typical) with a lost gold card. Every argument is
    validated before anything is written; a bad one raises :class:`InputError` naming the
    value and the valid choices. At the end the call is evaluated against the scenario's checks
    (or the persona's goal) and its metrics are computed; both go into call_metadata.json.
    """
    sc = resolve_scenario(scenario)
    if sc is not None and caller_type is None:
        persona = sc.resolve_persona()
    else:
        persona = resolve_persona(caller_type or "typical")
    intent = intent or (sc.intent if sc else "lost_card")
    duration = (
        duration if duration is not None else (sc.duration_s if sc and sc.duration_s else 300.0)
    )
    max_turns = max_turns or (sc.turn_limit if sc else None)
    line_spec = line_condition(line if line is not None else (sc.line if sc else None))
    check_choice("route", route, ROUTES)
    caller_backend = check_backend(caller_backend or backend)
    cs_backend = check_backend(cs_backend or backend)
    # Hosted models behave as on a phone line only when audio arrives at speaking speed.
    hosted = any(b == "openai" or b.startswith("wss://") for b in (caller_backend, cs_backend))
    pace = check_choice("pace", pace or ("realtime" if hosted else "fast"), PACES)
    check_choice("audio_format", audio_format, tuple(AUDIO_FORMATS))
    check_choice("intent", intent, agents.INTENTS)
    if not 1 <= duration <= MAX_DURATION_S:
        raise InputError(f"invalid duration {duration!r}; valid: 1 to {MAX_DURATION_S} seconds")
    turns_limit = max_turns or persona.goal.max_conversation_turns
    if turns_limit < 1:
        raise InputError(f"invalid max_turns {max_turns!r}; valid: a positive number")
    conversation_id = (
        conversation_id
        or f"{persona.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    )
    try:
        validate_conversation_id(conversation_id)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    out = Path(output_dir)
    if (out / conversation_id).exists() and any((out / conversation_id).iterdir()):
        raise InputError(
            f"conversation {conversation_id!r} already exists in {out}; choose another --conversation-id"
        )

    if sc is not None and fixture is None and customer_id is None:
        fixture, facts = sc.bank_fixture(), sc.caller_facts()
    else:
        fixture = fixture or bank.default_fixture()
        try:
            facts = agents.caller_facts_from_fixture(fixture, customer_id)
        except ValueError as exc:
            raise InputError(str(exc)) from None
    state = bank.BankState.from_fixture(fixture)
    modalities = ["text"] if route == "text" else ["audio"]
    models = {
        "caller": caller_model
        or (agents.LOCAL_CALLER_MODEL if caller_backend == "local" else DEFAULT_OPENAI_MODEL),
        "cs": cs_model
        or (agents.LOCAL_CS_MODEL if cs_backend == "local" else DEFAULT_OPENAI_MODEL),
    }
    sessions = {
        "caller": agents.caller_session(
            persona,
            facts,
            intent=intent,
            seed=seed,
            model=models["caller"],
            voice=caller_voice,
            output_modalities=modalities,
        ),
        "cs": agents.cs_session(
            seed=seed, model=models["cs"], voice=cs_voice, output_modalities=modalities
        ),
    }
    settings = CallSettings(
        route=route,  # type: ignore[arg-type]
        max_turns=turns_limit,
        max_duration_s=duration,
        speaking_rate={"caller": persona.personality.speaking_rate, "cs": 1.0},
        line=line_spec,
        interrupt_probability=persona.personality.tendency_to_interrupt,
        seed=seed,
    )

    def execute_tool(agent: Agent, name: str, arguments: str) -> dict[str, Any]:
        return bank.execute_tool(state, name, arguments, agent=agent)

    metadata = {
        "package_version": __version__,
        "caller_type": persona.personality.type.value if persona.personality.type else persona.name,
        "persona": persona.model_dump(mode="json"),
        "scenario": sc.metadata()
        if sc is not None
        else {"name": f"{intent}-default", "intent": intent, "customer": facts.as_dict()},
        "line": line_spec.describe(),
        "backend": {"caller": _public_backend(caller_backend), "cs": _public_backend(cs_backend)},
        "models": models,
        "voices": {a: sessions[a].audio.output.voice for a in ("caller", "cs")},  # type: ignore[union-attr]
        "route": route,
        "pace": pace,
        "seed": seed,
        "max_turns": turns_limit,
        "duration_limit_s": duration,
        "audio_format": audio_format,
    }
    needs_local = "local" in (caller_backend, cs_backend)
    server_cm = local_backend(local_server) if needs_local else contextlib.nullcontext(None)
    async with server_cm as server:
        local_url = server.url if server is not None else None
        endpoints = {
            "caller": endpoint_for(caller_backend, models["caller"], local_url),
            "cs": endpoint_for(cs_backend, models["cs"], local_url),
        }
        recorder = CallRecorder(out, conversation_id, audio_format=audio_format, metadata=metadata)
        bridge = DualAgentBridge(
            endpoints=endpoints,
            sessions=sessions,
            settings=settings,
            execute_tool=execute_tool,
            recorder=recorder,
            pace=pace,  # type: ignore[arg-type]
            idle_timeout_s=idle_timeout_s,
            on_log=on_log,
        )
        try:
            await bridge.run()
        finally:
            _write_final_state(recorder, state)
            _write_costs(recorder, models)
            _write_evaluation(recorder, sc or persona, intent, llm_judge)
    return CallResult(
        recorder.directory, json.loads((recorder.directory / "call_metadata.json").read_text())
    )


def _write_costs(recorder: CallRecorder, models: dict[str, str]) -> None:
    usage = recorder.metadata.get("usage") or {}
    costs = {agent: estimate_cost_usd(models[agent], usage.get(agent, {})) for agent in models}
    known = [c for c in costs.values() if c is not None]
    with contextlib.suppress(Exception):
        recorder.update_metadata(
            estimated_cost_usd={**costs, "total": round(sum(known), 6) if known else None}
        )


def _write_evaluation(
    recorder: CallRecorder, judge: Scenario | Persona, intent: str, llm_judge: bool | None = None
) -> None:
    """Outcome (per-criterion evidence) and metrics, from what the recording holds; and the
    optional LLM judge's second opinion."""
    try:
        record = load_call(recorder.directory)
        outcome = evaluate(record, judge)
        metrics = compute_metrics(
            record.turns, record.function_calls, record.metadata, intent=intent
        )
    except Exception as exc:  # evaluation must never lose a recording
        recorder.update_metadata(evaluation_error=f"{type(exc).__name__}: {exc}")
        return
    recorder.update_metadata(outcome=outcome.as_dict(), metrics=metrics)
    if judge_enabled(llm_judge):
        criteria = [c["name"] for c in outcome.as_dict().get("criteria", [])]
        recorder.update_metadata(llm_judge=judge_call(record.turns, criteria))


def resolve_scenario(scenario: str | Path | Scenario | None) -> Scenario | None:
    if scenario is None or isinstance(scenario, Scenario):
        return scenario
    try:
        return load_scenario(scenario)
    except ScenarioError as exc:
        raise InputError(str(exc)) from None


def line_condition(spec: Any) -> LineModel:
    try:
        return make_line(spec)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def _write_final_state(recorder: CallRecorder, state: bank.BankState) -> None:
    with contextlib.suppress(Exception):
        recorder.update_metadata(bank_state=state.snapshot())


def _public_backend(backend: str) -> str:
    """The backend as it may be written to disk (no query strings: they can hold secrets)."""
    return backend.split("?")[0]


def run(caller_type: str | Persona | None = None, **kwargs: Any) -> CallResult:
    """Synchronous :func:`simulate` for scripts (inside Jupyter, use ``await simulate(...)``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(simulate(caller_type, **kwargs))
    raise RuntimeError(
        "dualagent.run() cannot be used inside a running event loop; use `await dualagent.simulate(...)`"
    )
