"""Every parameter of one call, defined once: :class:`CallOptions`.

``simulate()``, ``dualagent run`` (its flags are derived from the fields, see
:func:`add_cli_flags`), batch configs and the notebook widgets all build a ``CallOptions``.
:class:`CallDefaults` are the fields that can hold for many calls at once (a batch config is
one); ``CallOptions`` adds what makes one call (caller, scenario, seed, where it is written).
Validation and the precedence rule live here and nowhere else:

    an explicit value  >  the scenario's value  >  the default.

A field left unset is ``None`` (or absent) and means "the scenario's, else the default"; the
resolved values are in the :class:`~dualagent.call.plan.CallPlan` that :func:`plan_call` makes.
Bad values raise :class:`~dualagent.errors.InputError` with one line naming the value and the
valid choices.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

__all__ = ["CallOptions", "InputError", "add_cli_flags", "cli_fields"]

from dualagent.agent_spec import AgentSpec
from dualagent.call.hosted import as_secret_headers
from dualagent.errors import InputError, describe_validation_error
from dualagent.personas import Persona
from dualagent.scenarios import Scenario

Route = Literal["audio", "text"]
Pace = Literal["fast", "realtime"]
AudioFormat = Literal["wav", "flac", "ogg"]
NoiseReduction = Literal["off", "near_field", "far_field"]
AgentSessionMode = Literal["ours", "keep"]
Transport = Literal["websocket", "memory"]

ROUTES: tuple[str, ...] = get_args(Route)
PACES: tuple[str, ...] = get_args(Pace)
AUDIO_FORMATS: tuple[str, ...] = get_args(AudioFormat)
TRANSPORTS: tuple[str, ...] = get_args(Transport)
MAX_DURATION_S = 30 * 60
DEFAULT_DURATION_S = 300.0
DEFAULT_OUTPUT_DIR = "agent_conversations"
BACKEND_CHOICES = "local, openai, or a ws:// / wss:// URL"
PHONE_STREAM_CHOICE = "a phone-stream bot's twilio+ws:// / twilio+wss:// URL"
"""What the agent under test's backend (``cs_backend``) may be besides (issue 21)."""
DEFAULT_TRANSCRIPTION_MODEL = "gpt-transcribe"
"""What hosted backends transcribe the heard audio with (OpenAI's recommended model for
committed turns in a Realtime session, checked 2026-11-27)."""

# Fields that are not command-line flags, and why (a test holds the CLI to this list).
NOT_FLAGS: dict[str, str] = {
    "fixture": "a bank fixture object (Python only; scenarios carry their own bank)",
}


def _flag(help: str, metavar: str | None = None) -> dict[str, Any]:
    return {"help": help, **({"metavar": metavar} if metavar else {})}


class CallDefaults(BaseModel):
    """The options that can hold for many calls at once (a batch config sets them for all)."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    # -- limits and conditions ----------------------------------------------------------------
    duration: float | None = Field(
        default=None,
        json_schema_extra=_flag(
            f"call length limit in seconds, 1 to {MAX_DURATION_S} "
            f"(default: the scenario's, else {DEFAULT_DURATION_S:.0f})",
            "SECONDS",
        ),
    )
    max_turns: int | None = Field(
        default=None,
        json_schema_extra=_flag(
            "conversation turn limit (default: the scenario's, else the persona's)", "N"
        ),
    )
    line: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "phone line between the agents: clean, telephone, noisy[:SNR_DB] "
            "(default: the scenario's, else clean)",
            "LINE",
        ),
    )
    route: Route = Field(
        default="audio",
        json_schema_extra=_flag("audio: real speech both ways; text: transcripts only (fast)"),
    )
    pace: Pace | None = Field(
        default=None,
        json_schema_extra=_flag(
            "fast (default for local backends) or realtime (default for hosted)"
        ),
    )

    # -- the agent under test (dualagent.agent_spec) ----------------------------------------
    agent: str | AgentSpec | None = Field(
        default=None,
        json_schema_extra=_flag(
            "the agent under test: a shipped spec (dualagent agents), a spec .yaml path or "
            "package.module:attribute (default: the scenario's, else bank)",
            "NAME|PATH",
        ),
    )
    agent_session: AgentSessionMode = Field(
        default="ours",
        json_schema_extra=_flag(
            "ours: configure the agent under test from its spec (session.update); keep: send "
            "it nothing and let a deployed agent's own configuration stand"
        ),
    )

    # -- where the agents run -----------------------------------------------------------------
    backend: str = Field(
        default="local",
        json_schema_extra=_flag(
            f"where both agents run: {BACKEND_CHOICES} (default: local)", "BACKEND"
        ),
    )
    caller_backend: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "backend for the caller only; replay:PATH replays the caller's own audio of a "
            "recorded call (a recording folder or a transcript JSON with audio)",
            "BACKEND",
        ),
    )
    cs_backend: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "backend for the agent under test only; also twilio+ws://HOST:PORT/PATH (or wss): "
            "a phone-stream bot, start parameters in the URL fragment (#caller_id=...)",
            "BACKEND",
        ),
    )
    caller_model: str | None = Field(
        default=None, json_schema_extra=_flag("the caller's model", "MODEL")
    )
    cs_model: str | None = Field(
        default=None, json_schema_extra=_flag("the agent's model", "MODEL")
    )
    caller_voice: str | None = Field(
        default=None, json_schema_extra=_flag("the caller's voice", "VOICE")
    )
    cs_voice: str | None = Field(
        default=None, json_schema_extra=_flag("the agent's voice", "VOICE")
    )
    transport: Transport | None = Field(
        default=None,
        json_schema_extra=_flag(
            "how the bridge reaches the embedded server: websocket (the protocol on the wire; "
            "default for one call) or memory (in this process, no socket; default for batches "
            "on the embedded backend)"
        ),
    )
    idle_timeout_s: float = Field(
        default=60.0,
        json_schema_extra=_flag(
            "end the call when no event arrives for this long (seconds)", "SECONDS"
        ),
    )

    # -- hosted services: input transcription, headers (see dualagent.call.hosted) ------------
    transcription_model: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "model that transcribes what each agent hears (default on hosted backends: "
            f"{DEFAULT_TRANSCRIPTION_MODEL})",
            "MODEL",
        ),
    )
    caller_transcription_model: str | None = Field(
        default=None, json_schema_extra=_flag("transcription model of the caller only", "MODEL")
    )
    cs_transcription_model: str | None = Field(
        default=None,
        json_schema_extra=_flag("transcription model of the agent under test only", "MODEL"),
    )
    transcription_language: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "language of the speech, ISO-639-1 like en (default: detected)", "LANG"
        ),
    )
    caller_transcription_language: str | None = Field(
        default=None, json_schema_extra=_flag("language the caller hears", "LANG")
    )
    cs_transcription_language: str | None = Field(
        default=None, json_schema_extra=_flag("language the agent under test hears", "LANG")
    )
    noise_reduction: NoiseReduction | None = Field(
        default=None,
        json_schema_extra=_flag("input noise reduction: off (default), near_field or far_field"),
    )
    caller_noise_reduction: NoiseReduction | None = Field(
        default=None, json_schema_extra=_flag("the caller's input noise reduction")
    )
    cs_noise_reduction: NoiseReduction | None = Field(
        default=None, json_schema_extra=_flag("the agent under test's input noise reduction")
    )
    # Secrets: never dumped (batch.json, call_metadata.json), never shown (SecretStr).
    header: SecretStr | None = Field(
        default=None,
        exclude=True,
        json_schema_extra=_flag(
            "extra header for both backends, 'Name: value' (or env DUALAGENT_HEADERS); "
            "never written to disk",
            "'NAME: VALUE'",
        ),
    )
    caller_header: SecretStr | None = Field(
        default=None,
        exclude=True,
        json_schema_extra=_flag(
            "header for the caller's backend only (or env DUALAGENT_CALLER_HEADERS)",
            "'NAME: VALUE'",
        ),
    )
    cs_header: SecretStr | None = Field(
        default=None,
        exclude=True,
        json_schema_extra=_flag(
            "header for the agent's backend only, e.g. 'api-key: ...' for Azure OpenAI "
            "(or env DUALAGENT_CS_HEADERS)",
            "'NAME: VALUE'",
        ),
    )

    @field_validator("header", "caller_header", "cs_header", mode="before")
    @classmethod
    def _headers_as_secret(cls, value: Any) -> SecretStr | None:
        return as_secret_headers(value)

    # -- what is written ----------------------------------------------------------------------
    audio_format: AudioFormat = Field(
        default="wav", json_schema_extra=_flag("wav (default), flac or ogg")
    )
    llm_judge: bool | None = Field(
        default=None,
        json_schema_extra=_flag(
            "ask an LLM judge for a second opinion (needs OPENAI_API_KEY; default: DUALAGENT_LLM_JUDGE=1)"
        ),
    )

    # -- language models behind the embedded server (dualagent.realtime.local.brains.llm) -----
    caller_llm: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "the caller is a language model at an OpenAI-compatible chat endpoint, heard and "
            "voiced by the local engines, e.g. http://127.0.0.1:11434/v1#qwen2.5:3b "
            "(key: env DUALAGENT_LLM_API_KEY)",
            "URL#MODEL",
        ),
    )
    cs_llm: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "the agent under test is a language model at an OpenAI-compatible chat endpoint "
            "(as --caller-llm)",
            "URL#MODEL",
        ),
    )

    # -- checks -------------------------------------------------------------------------------

    @field_validator("duration")
    @classmethod
    def _duration_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 1 <= value <= MAX_DURATION_S:
            raise ValueError(f"out of range; valid: 1 to {MAX_DURATION_S} seconds")
        return value

    @field_validator("max_turns")
    @classmethod
    def _positive_turns(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError("not allowed; valid: a positive number")
        return value

    @field_validator("idle_timeout_s")
    @classmethod
    def _positive_timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("not allowed; valid: more than 0 seconds")
        return value

    @field_validator("backend", "caller_backend", "cs_backend")
    @classmethod
    def _known_backend(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or value in ("local", "openai") or value.startswith(("ws://", "wss://")):
            return value
        if value.startswith(("twilio+ws://", "twilio+wss://")):  # dualagent.realtime.phone_stream
            if info.field_name == "cs_backend":
                return value
            raise ValueError(
                f"{value!r}: a phone-stream bot is an agent under test; use cs_backend"
            )
        if value.startswith("replay:") and len(value) > len("replay:"):
            if info.field_name == "caller_backend":  # dualagent.realtime.replay
                return value
            raise ValueError(f"{value!r}: replay:PATH replays a caller; use caller_backend")
        choices = BACKEND_CHOICES
        if info.field_name == "cs_backend":
            choices += f", or {PHONE_STREAM_CHOICE}"
        raise ValueError(f"unknown backend {value!r}; valid choices: {choices}")


class CallOptions(CallDefaults):
    """What one call takes. Unset fields fall back to the scenario's value, then the default."""

    # -- who calls, about what ----------------------------------------------------------------
    caller_type: str | Persona | None = Field(
        default=None,
        json_schema_extra=_flag(
            "persona: typical, frustrated, elderly, hurried, or a persona .yaml path "
            "(default: the scenario's, else typical)",
            "TYPE",
        ),
    )
    scenario: str | Scenario | None = Field(
        default=None,
        json_schema_extra=_flag(
            "a built-in scenario (dualagent scenarios) or a scenario .yaml path", "NAME|PATH"
        ),
    )
    intent: str | None = Field(
        default=None,
        json_schema_extra=_flag(
            "what the caller wants (default: the scenario's, else lost_card)", "INTENT"
        ),
    )
    customer_id: str | None = Field(
        default=None,
        json_schema_extra=_flag("the bank customer the caller is (default: the first)", "ID"),
    )
    fixture: Any = Field(default=None, description="a dualagent.bank.BankFixture")

    # -- which call, where it is written --------------------------------------------------------
    seed: int = Field(
        default=0, ge=0, json_schema_extra=_flag("same seed, same call (local backend); 0 or more")
    )
    output_dir: str | Path = Field(
        default=DEFAULT_OUTPUT_DIR,
        json_schema_extra=_flag(f"where recordings go (default: {DEFAULT_OUTPUT_DIR})", "DIR"),
    )
    conversation_id: str | None = Field(
        default=None,
        json_schema_extra=_flag("folder name: letters, digits, - and _ (default: generated)", "ID"),
    )

    @classmethod
    def build(cls, **values: Any) -> CallOptions:
        """``CallOptions(**values)``, with a bad value raised as a one-line :class:`InputError`."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise InputError(describe_validation_error(exc, model=cls)) from None

    def explicit(self) -> dict[str, Any]:
        """The fields that were set (what overrides a scenario), by name."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}


# ------------------------------------------------------------------------------ the CLI view


def cli_fields(model: type[CallDefaults] = CallOptions) -> dict[str, Any]:
    """The fields of ``model`` that are flags, by name (all but :data:`NOT_FLAGS`): for
    ``dualagent run`` what makes the call first, then what may hold for many calls (the
    fields of :class:`CallDefaults`, which are ``dualagent batch``'s call flags)."""
    own = [n for n in model.model_fields if n not in CallDefaults.model_fields]
    names = [*own, *CallDefaults.model_fields]
    return {n: model.model_fields[n] for n in names if n not in NOT_FLAGS}


def add_cli_flags(parser: argparse.ArgumentParser, model: type[CallDefaults] = CallOptions) -> None:
    """Add one flag per field of ``model`` (``--caller-type`` for ``caller_type``...).

    Every flag defaults to "not given" (``argparse.SUPPRESS``), so only what the user typed
    reaches the model and the precedence rule stays in one place.
    """
    for name, field in cli_fields(model).items():
        extra = dict(field.json_schema_extra or {})  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": extra.get("help")}
        if "metavar" in extra:
            kwargs["metavar"] = extra["metavar"]
        kind, choices = _cli_type(field.annotation)
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = kind
            if choices:
                kwargs["choices"] = choices
        parser.add_argument("--" + name.replace("_", "-"), dest=name, **kwargs)


def _cli_type(annotation: Any) -> tuple[type, tuple[str, ...] | None]:
    """The argparse type (and choices) for a field's annotation."""
    args = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    if args and all(isinstance(a, str) for a in args):  # the annotation is a Literal
        return str, tuple(args)
    for arg in args:
        if get_args(arg) and all(isinstance(a, str) for a in get_args(arg)):  # a Literal
            return str, get_args(arg)
    for kind in (bool, int, float):
        if kind in args:
            return kind, None
    return str, None
