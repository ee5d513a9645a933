"""The service's calls: websocket parameters -> :class:`CallOptions`, the capacity limit, one
task per call on the shared embedded server, and what a finished call reports.

A call belongs to the :class:`CallManager`, not to the websocket that started it: a client that
leaves stops it (the bridge finalises the recording as ``interrupted``) or, with ``detach=1``,
lets it run to its end. Every call stops after ``max_session_s`` of wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args

from pydantic import SecretStr

from dualagent.agent_spec import list_agents
from dualagent.call.options import CallOptions
from dualagent.call.plan import CallPlan, plan_call
from dualagent.call.record import load_call
from dualagent.call.simulate import run_plan
from dualagent.errors import InputError
from dualagent.personas import list_personas
from dualagent.scenarios import list_scenarios
from dualagent.service.live import LiveCall
from dualagent.service.security import redact
from dualagent.service.settings import ServiceSettings

if TYPE_CHECKING:
    from dualagent.realtime.local.server import LocalRealtimeServer

log = logging.getLogger(__name__)

# CallOptions fields a client may not set, and why.
NOT_PARAMETERS: dict[str, str] = {
    "fixture": "a Python object",
    "output_dir": "the service decides where recordings go (--output-dir)",
}
# Parameters of the service itself (not of the call).
SERVICE_PARAMETERS: dict[str, str] = {
    "audio": "1: also stream the mixed audio (base64 PCM16)",
    "detach": "1: the call runs to its end if the client leaves",
    "token": "the service's token, when it has one",
}
AUDIO_CHANNELS = {"stereo": "stereo_recording", "caller": "caller_audio", "cs": "cs_audio"}


class ParameterError(InputError):
    """A bad query parameter: ``parameter`` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class CapacityError(Exception):
    """As many calls as allowed are running."""

    def __init__(self, active: int, maximum: int) -> None:
        super().__init__(f"{active} of {maximum} conversations are running; try again later")
        self.active = active
        self.maximum = maximum


def is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in get_args(annotation)


def call_parameters() -> list[str]:
    """The query parameters ``/agent-conversation`` takes: call fields, then the service's.

    Secret fields (backend headers) are not among them: a URL ends up in access logs and
    browser histories; hosted backends are configured where the service runs.
    """
    fields = [
        name
        for name, field in CallOptions.model_fields.items()
        if name not in NOT_PARAMETERS and not is_secret(field.annotation)
    ]
    return [*fields, *SERVICE_PARAMETERS]


def _flag(name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ParameterError(name, f"{name}: invalid value {value!r}; valid values: 0 or 1")


def parse_call_parameters(
    items: Iterable[tuple[str, str]], output_dir: Path
) -> tuple[CallOptions, dict[str, bool]]:
    """``(options, {"audio": bool, "detach": bool})`` from the websocket's query parameters.

    Raises :class:`ParameterError` naming the parameter and its valid values. Personas and
    scenarios and agent specs are the shipped ones: a client never names a file or a module on
    the server.
    """
    valid = call_parameters()
    given: dict[str, str] = {}
    for name, value in items:
        if name not in valid:
            raise ParameterError(
                name, f"unknown parameter {name!r}; valid parameters: {', '.join(valid)}"
            )
        if name in given:
            raise ParameterError(name, f"{name}: given more than once")
        given[name] = value
    flags = {name: _flag(name, given.pop(name, "0")) for name in ("audio", "detach")}
    given.pop("token", None)
    for name, choices in (
        ("caller_type", list_personas()),
        ("scenario", list_scenarios()),
        ("agent", list_agents()),  # a path or module:attribute would load code on the server
    ):
        if name in given and given[name] not in choices:
            raise ParameterError(
                name, f"{name}: invalid value {given[name]!r}; valid values: {', '.join(choices)}"
            )
    for name in ("backend", "caller_backend", "cs_backend"):
        if given.get(name, "").startswith("replay:"):  # dualagent.realtime.replay reads files
            raise ParameterError(
                name, f"{name}: replay:PATH would read a file on the server; not allowed here"
            )
    try:
        options = CallOptions.build(**given, output_dir=str(output_dir))
    except InputError as exc:
        message = str(exc)
        name = message.split(":", 1)[0].split(".", 1)[0]
        raise ParameterError(name if name in valid else "(parameters)", message) from None
    return options, flags


class CallManager:
    """The running calls of one service, at most ``settings.max_conversations`` at once."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.server: LocalRealtimeServer | None = None
        self.calls: dict[str, LiveCall] = {}
        self._starting = 0  # calls being planned (they hold a slot already)
        self.closing = False
        self._stopping: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self.calls) + self._starting

    def ids(self) -> set[str]:
        return set(self.calls)

    async def start(self, options: CallOptions, *, detach: bool = False) -> LiveCall:
        """Plan and start a call; :class:`CapacityError` when full, :class:`InputError` on a
        bad value (nothing is written then)."""
        if self.closing or self.active >= self.settings.max_conversations:
            raise CapacityError(self.active, self.settings.max_conversations)
        self._starting += 1  # taken before the first await: two clients cannot both get it
        try:
            plan = await asyncio.to_thread(_plan, options)
            if plan.conversation_id in self.calls:
                raise ParameterError(
                    "conversation_id", f"conversation {plan.conversation_id!r} is running already"
                )
        finally:
            self._starting -= 1
        live = LiveCall(plan.conversation_id, _call_info(plan))
        live.detached = detach
        self.calls[plan.conversation_id] = live
        live.publish({"type": "call.started", **live.info, "started_at": live.started_at})
        live.task = asyncio.create_task(self._run(live, plan), name=f"call-{live.conversation_id}")
        log.info("call %s started (%s)", live.conversation_id, live.info["caller_type"])
        return live

    async def stop(self, live: LiveCall, reason: str) -> None:
        """End a call now; its recording is finalised (status ``interrupted``)."""
        if live.task is None or live.task.done():
            return
        live.stop_requested = True
        live.info["stopped_by"] = reason
        live.task.cancel()
        await live.wait_ended()

    def _secrets(self) -> list[str]:
        token = self.settings.token
        return [
            s for s in (token and token.get_secret_value(), os.environ.get("OPENAI_API_KEY")) if s
        ]

    def stop_soon(self, live: LiveCall, reason: str) -> None:
        """:meth:`stop` without waiting (from a task that must not block on it)."""
        task = asyncio.create_task(self.stop(live, reason))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def close(self) -> None:
        """Stop every call (their recordings are finalised) and wait for them."""
        self.closing = True
        for live in list(self.calls.values()):
            await self.stop(live, "shutdown")

    async def _run(self, live: LiveCall, plan: CallPlan) -> None:
        stopped_by: str | None = None
        failure: str | None = None
        try:
            async with asyncio.timeout(self.settings.max_session_s):
                await run_plan(plan, local_server=self.server, observer=live)
        except TimeoutError:
            stopped_by = "session_limit"
        except asyncio.CancelledError:
            if not live.stop_requested:
                raise
        except Exception as exc:  # the call machinery failed; the recording says what it can
            failure = redact(f"{type(exc).__name__}: {exc}", self._secrets())
            log.error("call %s failed: %s", live.conversation_id, failure)
            live.publish({"type": "log", "level": "error", "text": failure})
        finally:
            try:
                ended = await asyncio.to_thread(
                    ended_info, plan.output_dir / plan.conversation_id, plan.conversation_id
                )
            except Exception:  # no recording (the call failed before it): still end the stream
                ended = {"status": "error", "end_reason": "error", "error": failure}
            stopped_by = stopped_by or live.info.pop("stopped_by", None)
            if stopped_by:
                ended["stopped_by"] = stopped_by
            live.finish(ended)
            self.calls.pop(live.conversation_id, None)
            log.info(
                "call %s ended: %s (%s)",
                live.conversation_id,
                ended.get("status"),
                ended.get("end_reason"),
            )


def _plan(options: CallOptions) -> CallPlan:
    """:func:`plan_call`, with a refusal named by the parameter it is about (a hosted backend
    without its key on the server is one: refused before the call, as anything that would fail
    at connect time)."""
    try:
        return plan_call(options)
    except ParameterError:
        raise
    except InputError as exc:
        name = str(exc).split(":", 1)[0]
        raise ParameterError(
            name if name in call_parameters() else "(parameters)", str(exc)
        ) from None


def _call_info(plan: CallPlan) -> dict[str, Any]:
    persona = plan.persona
    return {
        "caller_type": plan.metadata.get("caller_type", persona.name),
        "persona": {
            "name": persona.name,
            "description": persona.description,
            "patience_level": persona.personality.patience_level,
            "tendency_to_interrupt": persona.personality.tendency_to_interrupt,
            "speaking_rate": persona.personality.speaking_rate,
        },
        "scenario": plan.metadata.get("scenario", {}).get("name"),
        "intent": plan.intent,
        "route": plan.route,
        "pace": plan.pace,
        "seed": plan.options.seed,
        "duration_limit_s": plan.metadata.get("duration_limit_s"),
        "max_turns": plan.metadata.get("max_turns"),
    }


def audio_files(metadata: dict[str, Any]) -> dict[str, str]:
    """Channel (``stereo``, ``caller``, ``cs``) -> file name in the call folder."""
    files = (metadata.get("audio") or {}).get("files") or {}
    found = {}
    for channel, name in AUDIO_CHANNELS.items():
        entry = files.get(name) or {}
        if isinstance(entry.get("path"), str):
            found[channel] = Path(entry["path"]).name
    return found


def conversation_urls(conversation_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
    base = f"/conversations/{conversation_id}"
    return {
        "conversation": base,
        "audio": {channel: f"{base}/audio/{channel}" for channel in audio_files(metadata)},
    }


def ended_info(folder: Path, conversation_id: str) -> dict[str, Any]:
    """What ``call.ended`` says: how the call ended, its outcome and figures, where it is."""
    record = load_call(folder)
    files = {"folder": str(folder)}
    for channel, name in audio_files(record.metadata).items():
        files[channel] = str(folder / name)
    for name in ("call_metadata.json", "transcript.json", "function_calls.json"):
        files[name.removesuffix(".json")] = str(folder / name)
    summary = record.summary()
    return {
        "status": record.status,
        "end_reason": record.end_reason,
        "error": record.error,
        "outcome": record.outcome,
        "success": record.success,
        "turns": summary["turns"],
        "duration_s": summary["duration_s"],
        "wall_time_s": summary["wall_time_s"],
        "tool_calls": summary["tool_calls"],
        "interruptions": summary["interruptions"],
        "paths": files,
        "urls": conversation_urls(conversation_id, record.metadata),
    }


async def wait_quietly(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(BaseException):
        await task
