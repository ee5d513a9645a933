"""Run one simulated call: ``await simulate(...)`` in a notebook, ``run(...)`` in a script.

``simulate(**options)`` builds :class:`~dualagent.call.options.CallOptions`, plans the call
(:func:`~dualagent.call.plan.plan_call`: every check before anything is written) and runs the
plan (:func:`run_plan`): backends, bridge and recorder, then evaluation, metrics and costs
written into the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from dualagent import bank
from dualagent.call.bridge import BridgeObserver, DualAgentBridge, Endpoint
from dualagent.call.core import Log
from dualagent.call.hosted import OPENAI_REALTIME_URL, with_model
from dualagent.call.options import CallOptions
from dualagent.call.plan import CallPlan, plan_call
from dualagent.call.record import CallRecord, load_call
from dualagent.call.recording import CallRecorder
from dualagent.call.result import CallResult
from dualagent.call.tools import Toolbox
from dualagent.errors import InputError
from dualagent.evaluation.judge import judge_call, judge_enabled
from dualagent.evaluation.metrics import compute_metrics, llm_stats
from dualagent.evaluation.outcome import evaluate
from dualagent.evaluation.pricing import estimate_cost_usd
from dualagent.files import json_text
from dualagent.personas import Persona
from dualagent.scenarios import Scenario

if TYPE_CHECKING:  # the server (and its speech engines) load only when a call needs them
    from dualagent.realtime.local.server import LocalRealtimeServer

__all__ = [
    "OPENAI_REALTIME_URL",
    "CallOptions",
    "CallResult",
    "InputError",
    "run",
    "run_plan",
    "simulate",
]


async def simulate(
    caller_type: str | Persona | None = None,
    *,
    options: CallOptions | None = None,
    local_server: LocalRealtimeServer | None = None,
    on_log: Callable[[Log], None] | None = None,
    default_transport: str = "websocket",
    **fields: Any,
) -> CallResult:
    """Run one call between a persona-driven caller and the agent under test; record it all.

    ``fields`` are :class:`~dualagent.call.options.CallOptions` fields (``scenario``,
    ``duration``, ``route``, ``seed``, ``output_dir``...; or pass ``options=``). A scenario (a
    built-in name, a YAML path or a :class:`Scenario`) sets the persona, intent, bank, caller
    facts, line and limits; explicit values override it. Every value is checked before
    anything is written; a bad one raises :class:`InputError` naming the value and the valid
    choices. At the end the call is evaluated against the scenario's checks (or the persona's
    goal) and its metrics are computed; both go into call_metadata.json.

    ``local_server`` shares one running embedded server between calls; ``on_log`` receives
    the live transcript and tool calls as they happen. ``default_transport``: how the bridge
    reaches the embedded server when ``transport`` is not given (batches: ``memory``).
    """
    if caller_type is not None:
        fields["caller_type"] = caller_type
    if options is not None:
        if fields:
            options = CallOptions.build(**{**options.explicit(), **fields})
    else:
        options = CallOptions.build(**fields)
    plan = plan_call(options, default_transport=default_transport)
    return await run_plan(plan, local_server=local_server, on_log=on_log)


async def run_plan(
    plan: CallPlan,
    *,
    local_server: LocalRealtimeServer | None = None,
    on_log: Callable[[Log], None] | None = None,
    observer: BridgeObserver | None = None,
) -> CallResult:
    """Run a planned call: backends, bridge, recorder; then judge what was recorded.

    ``observer`` sees every server event and core effect as the call happens (the service's
    live events).
    """
    toolbox = Toolbox(plan.agent, plan.agent.new_state(plan.state_data))

    server_cm = local_backend(local_server) if plan.needs_local_server else contextlib.nullcontext()
    async with server_cm as server:
        local_url = None
        if server is not None:
            local_url = server.memory_url if plan.transport == "memory" else server.url
        endpoints = {
            agent: endpoint_for(
                plan.backends[agent], plan.models[agent], local_url, plan.headers.get(agent)
            )
            for agent in ("caller", "cs")
        }
        recorder = CallRecorder(
            plan.output_dir,
            plan.conversation_id,
            audio_format=plan.options.audio_format,
            metadata=plan.metadata,
        )
        with _closed_on_error(recorder):  # a bridge that cannot start leaves closed files
            bridge = _bridge(plan, endpoints, toolbox, recorder, on_log, observer)
        # Nothing rewrites call_metadata.json while the call runs (it was written "running" when
        # the recorder opened): the end, final state, costs and evaluation make one rewrite.
        with recorder.metadata_held():
            try:
                async with _phone_stream(plan, bridge, recorder):
                    await bridge.run()
            finally:
                _write_final_state(recorder, toolbox)
                _write_costs(recorder, plan.models, plan.metadata.get("hearing"))
                _write_evaluation(recorder, plan.judge, plan.intent, plan.options.llm_judge)
    return CallResult(recorder.directory)


@contextlib.asynccontextmanager
async def _phone_stream(
    plan: CallPlan, bridge: DualAgentBridge, recorder: CallRecorder
) -> AsyncIterator[None]:
    """For a phone-stream bot: our tool report hook while the call runs (its URL goes to the
    bot in ``start``), each report recorded as the bot's tool call; then what the stream
    carried (clears, latencies measured on it) into the metadata."""
    if "phone_stream" not in plan.metadata:
        yield
        return
    from dualagent.realtime.phone_stream import with_stream_parameters
    from dualagent.realtime.tool_reports import TOOL_REPORT_PARAMETER, ToolReportHook

    def record(report: dict[str, Any]) -> None:
        core = bridge.core
        arguments, output = report.get("arguments", {}), report.get("output")
        ok = report.get("ok", not (isinstance(output, dict) and output.get("ok") is False))
        call = {"call_id": f"call_bot_{len(core.tool_calls) + 1}", "agent": "cs"}
        call.update(name=report["name"], arguments=arguments, output=output, ok=bool(ok))
        call.update(t_s=round(core.timeline_s, 3), turn_index=len(core.turns) - 1)
        call["reported_by"] = "bot"
        core.tool_calls.append(call)
        recorder.add_function_call(call)

    endpoint = bridge.endpoints["cs"]
    async with ToolReportHook(record) as hook:
        url = with_stream_parameters(endpoint.url, {TOOL_REPORT_PARAMETER: hook.url})
        bridge.endpoints["cs"] = Endpoint(url, endpoint.headers)
        try:
            yield
        finally:
            connection = bridge.connections.get("cs")
            report = connection.report() if hasattr(connection, "report") else {}
            observable = {**report.get("observable", {}), "tool_calls": "reported"}
            if not hook.reports:
                observable["tool_calls"] = False
            report.update(tool_reports=hook.reports, observable=observable)
            recorder.update_metadata(phone_stream={**plan.metadata["phone_stream"], **report})


@contextlib.contextmanager
def _closed_on_error(recorder: CallRecorder) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        recorder.close("error", "error", f"{type(exc).__name__}: {exc}")
        raise


def _bridge(
    plan: CallPlan,
    endpoints: dict[str, Endpoint],
    toolbox: Toolbox,
    recorder: CallRecorder,
    on_log: Callable[[Log], None] | None,
    observer: BridgeObserver | None,
) -> DualAgentBridge:
    return DualAgentBridge(
        endpoints=endpoints,
        sessions=plan.sessions,
        settings=plan.settings,
        execute_tool=toolbox,
        recorder=recorder,
        pace=plan.pace,  # type: ignore[arg-type]
        idle_timeout_s=plan.options.idle_timeout_s,
        on_log=on_log,
        observer=observer,
    )


def endpoint_for(
    backend: str,
    model: str,
    local_url: str | None,
    headers: Mapping[str, str] | None = None,
) -> Endpoint:
    """The websocket endpoint for one agent on ``backend``, with its extra ``headers``.

    ``openai`` adds ``Authorization: Bearer $OPENAI_API_KEY`` (``DUALAGENT_OPENAI_URL`` replaces
    the address, e.g. for a proxy); a URL gets ``model=`` unless it names one (``model`` or
    ``deployment``), and its own query string is kept.
    """
    extra = dict(headers or {})
    if backend.startswith(("twilio+ws://", "twilio+wss://")):  # a phone-stream bot: no model
        return Endpoint(backend, extra)
    if backend == "local":  # our embedded server: no provider, no credentials to send
        assert local_url is not None
        return Endpoint(with_model(local_url, model))
    if backend == "openai":
        key = os.environ.get("OPENAI_API_KEY")
        if not key:
            raise InputError(
                "backend 'openai' needs an API key: set OPENAI_API_KEY in the environment"
            )
        base = os.environ.get("DUALAGENT_OPENAI_URL", OPENAI_REALTIME_URL)
        return Endpoint(with_model(base, model), {"Authorization": f"Bearer {key}", **extra})
    return Endpoint(with_model(backend, model), extra)


@contextlib.asynccontextmanager
async def local_backend(
    server: LocalRealtimeServer | None = None,
) -> AsyncIterator[LocalRealtimeServer]:
    """A running embedded server: ``server`` if given (shared by many calls) or a new one."""
    if server is not None:
        yield server
        return
    from dualagent.realtime.local.server import LocalRealtimeServer

    async with LocalRealtimeServer() as started:
        yield started


def _write_costs(
    recorder: CallRecorder, models: dict[str, str], hearing: dict[str, Any] | None = None
) -> None:
    """Estimated USD per agent and in total; None ("unknown") where a model has no price (the
    token counts stay in ``usage``)."""
    usage = recorder.metadata.get("usage") or {}
    hearing = hearing or {}
    costs = {
        agent: estimate_cost_usd(
            models[agent],
            usage.get(agent, {}),
            (hearing.get(agent) or {}).get("transcription_model"),
        )
        for agent in models
    }
    unknown = [agent for agent, cost in costs.items() if cost is None]
    total = None if unknown else round(sum(c for c in costs.values() if c is not None), 9)
    with contextlib.suppress(Exception):
        recorder.update_metadata(
            estimated_cost_usd={
                **costs,
                "total": total,
                **({"unknown": unknown} if unknown else {}),
            }
        )


def _closed_record(recorder: CallRecorder) -> CallRecord:
    """The closed recording as :func:`load_call` reads it, from the recorder's memory (its
    metadata may be held back, see :meth:`CallRecorder.metadata_held`): the same JSON data."""
    if not recorder.closed:
        return load_call(recorder.directory)
    data = orjson.loads(
        json_text([recorder.metadata, recorder.turns, recorder.function_calls], indent=None)
    )
    metadata, turns, calls = data
    return CallRecord(
        path=recorder.directory,
        metadata=metadata,
        turns=[t for t in turns if isinstance(t, dict)],
        function_calls=[c for c in calls if isinstance(c, dict)],
    )


def _write_evaluation(
    recorder: CallRecorder, judge: Scenario | Persona, intent: str, llm_judge: bool | None = None
) -> None:
    """Outcome (per-criterion evidence) and metrics, from what the recording holds; and the
    optional LLM judge's second opinion."""
    try:
        record = _closed_record(recorder)
        outcome = evaluate(record, judge)
        metrics = compute_metrics(
            record.turns, record.function_calls, record.metadata, intent=intent
        )
        # Answers a language model wrote, if any (the events as session_events.json holds them).
        llm = llm_stats(recorder.events if recorder.closed else record.events())
        if llm:
            metrics["llm"] = llm
    except Exception as exc:  # evaluation must never lose a recording
        recorder.update_metadata(evaluation_error=f"{type(exc).__name__}: {exc}")
        return
    recorder.update_metadata(outcome=outcome.as_dict(), metrics=metrics)
    if judge_enabled(llm_judge):
        criteria = [c["name"] for c in outcome.as_dict().get("criteria", [])]
        recorder.update_metadata(llm_judge=judge_call(record.turns, criteria))


def _write_final_state(recorder: CallRecorder, toolbox: Toolbox) -> None:
    """The state the agent's tools left (``bank_state`` too for the banking agent, whose checks
    read it by that name)."""
    with contextlib.suppress(Exception):
        snapshot = toolbox.snapshot()
        fields: dict[str, Any] = {"agent_state": snapshot}
        if isinstance(toolbox.state, bank.BankState):
            fields["bank_state"] = snapshot
        recorder.update_metadata(**fields)


def run(caller_type: str | Persona | None = None, **kwargs: Any) -> CallResult:
    """Synchronous :func:`simulate` for scripts (inside Jupyter, use ``await simulate(...)``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(simulate(caller_type, **kwargs))
    raise RuntimeError(
        "dualagent.run() cannot be used inside a running event loop; use `await dualagent.simulate(...)`"
    )
