"""Running a batch: check the input, plan, run the calls N at a time, keep the manifest.

``await run(config="difficult_customers")`` runs every (caller type or scenario) × ``repeat``
calls, ``parallel`` at a time, each recorded in its own conversation folder under one batch
folder ``{output_dir}/{batch_id}/`` (see :mod:`dualagent.batch.manifest` and ``docs/batch.md``).

Local calls share ONE embedded :class:`LocalRealtimeServer`; ``executor="dask://HOST:PORT"`` (or
a ``distributed.Client``) runs them as Dask tasks instead (:mod:`dualagent.batch.dask`). Either
way the calls are tasks of this event loop: a failed call never stops the batch; cancelling the
run (Ctrl-C) cancels the calls in flight and the manifest says ``"interrupted"``;
``resume=True`` re-runs only the calls that did not finish.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualagent.batch.ci import check_junit_path, write_junit
from dualagent.batch.config import BatchConfig, as_config, config_from_dict, load_config
from dualagent.batch.manifest import (
    DEFAULT_OUTPUT_DIR,
    FINISHED_STATUSES,
    MANIFEST_FILE,
    BatchResult,
    Manifest,
    batch_result,
    error_figures,
    finished_before,
    interrupted_figures,
    new_batch_id,
    overall,
    read_manifest,
    recorded_figures,
    utc_now,
    validate_batch_id,
    write_results,
)
from dualagent.batch.notebook import run_notebook
from dualagent.batch.plan import (
    CallSpec,
    call_kwargs,
    check_scenarios,
    default_parallel,
    plan_calls,
)
from dualagent.call.hosted import secret_fields
from dualagent.call.record import load_call
from dualagent.call.simulate import simulate
from dualagent.errors import InputError
from dualagent.realtime.client import RealtimeConnectionError, RetryPolicy
from dualagent.realtime.local.server import LocalRealtimeServer
from dualagent.version import __version__

CALL_RETRY = RetryPolicy(base_delay_s=2.0, max_delay_s=60.0)
"""Pauses before a batch runs a failed call again (``retries``): jittered, growing."""
_NO_RETRY_AFTER = RealtimeConnectionError("call failed", transient=True)

# One call of the batch: runs it (here or on a worker) and returns its figures.
CallRunner = Callable[[CallSpec], Awaitable[dict[str, Any]]]


@dataclass
class _Batch:
    """Everything a run needs once the input is checked."""

    config: BatchConfig
    batch_id: str
    batch_dir: Path
    specs: list[CallSpec]
    parallel: int
    executor: Any
    notebook: Path | None
    resume: bool
    progress: bool
    local_server: LocalRealtimeServer | None
    junit: Path | None = None


async def run(
    config: BatchConfig | str | Path | dict[str, Any] | None = None,
    *,
    caller_types: Sequence[str] | str | None = None,
    scenarios: Sequence[str] | str | None = None,
    repeat: int | None = None,
    parallel: int | None = None,
    executor: Any = "local",
    processes: int | None = None,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    seed: int | None = None,
    resume: bool = False,
    progress: bool = True,
    batch_id: str | None = None,
    notebook: str | Path | None = None,
    local_server: LocalRealtimeServer | None = None,
    retries: int | None = None,
    min_success: float | None = None,
    junit: str | Path | None = None,
    **call_defaults: Any,
) -> BatchResult:
    """Run a batch of calls; return its :class:`BatchResult` (also written to the batch folder).

    ``config`` is a :class:`BatchConfig`, a dict, a built-in config name or a YAML path; the
    keyword arguments override its fields (``None`` = keep the config's value), and
    ``call_defaults`` are :class:`~dualagent.call.options.CallDefaults` fields for every call
    (``route``, ``duration``, ``max_turns``, ``line``, ``audio_format``...; without a config
    the defaults are all four caller types, repeat 1, route audio, seed 0, and the scenario's
    duration limit or 300 s). ``local_server``: a running server to share (else one is started).
    ``parallel=None``: 16 on the text route, one per CPU core on audio (Dask: the cluster's
    threads). ``executor``: ``"local"`` (one shared embedded server in this process),
    ``"dask://HOST:PORT"`` or a ``distributed.Client``. ``processes``: worker processes for the
    local executor, each with its own embedded backend (default: one per core for fast text
    batches of 64 calls or more, else 1; :mod:`dualagent.batch.processes`). ``resume=True`` with ``batch_id`` re-runs
    only the calls of that batch that did not complete. ``notebook``: a papermill notebook run
    afterwards with ``input_dir`` and ``output_dir`` set to the batch folder. ``retries``: run
    a call again (up to N times, after a jittered pause) when it failed on a rate limit or a
    transient connect or server error; the manifest keeps each failed attempt (``retried``).
    ``min_success``: the share of judged calls that must succeed (0 to 1; a config field):
    ``result.gate`` compares the batch's success rate with it (``gate.passed``,
    ``gate.message()``). ``junit``: write a JUnit XML report there (one test case per call;
    :mod:`dualagent.batch.ci`), also when the batch is interrupted.

    Bad input raises :class:`InputError` before anything is written. A failing call is recorded
    and counted, never raised. Cancelling the task (Ctrl-C) cancels the calls in flight and
    marks the manifest ``"interrupted"``.
    """
    overrides = {
        "caller_types": list(caller_types)
        if isinstance(caller_types, list | tuple)
        else caller_types,
        "scenarios": list(scenarios) if isinstance(scenarios, list | tuple) else scenarios,
        "repeat": repeat,
        "parallel": parallel,
        "processes": processes,
        "seed": seed,
        "retries": retries,
        "min_success": min_success,
        **call_defaults,
    }
    batch = _prepare(
        config,
        overrides,
        executor=executor,
        output_dir=output_dir,
        resume=resume,
        progress=progress,
        batch_id=batch_id,
        notebook=notebook,
        local_server=local_server,
        junit=junit,
    )
    return await _execute(batch)


# ------------------------------------------------------------------------------ input


def _prepare(
    config: BatchConfig | str | Path | dict[str, Any] | None,
    overrides: dict[str, Any],
    *,
    executor: Any,
    output_dir: str | Path,
    resume: bool,
    progress: bool,
    batch_id: str | None,
    notebook: str | Path | None,
    local_server: LocalRealtimeServer | None,
    junit: str | Path | None = None,
) -> _Batch:
    """Check every input and plan the calls. Writes nothing; raises InputError."""
    out = Path(output_dir)
    previous: dict[str, Any] | None = None
    if resume:
        if not batch_id:
            raise InputError(
                "resume needs the batch id of the batch to resume (batch_id= / --batch-id)"
            )
        validate_batch_id(batch_id)
        if not (out / batch_id / MANIFEST_FILE).is_file():
            raise InputError(
                f"no batch {batch_id!r} to resume in {out} (missing {out / batch_id / MANIFEST_FILE})"
            )
        previous = read_manifest(out / batch_id)

    base = as_config(config)
    given = {k: v for k, v in overrides.items() if v is not None}
    if base is None:
        if previous is not None:
            base = config_from_dict(
                previous["config"], source=f"manifest {out / str(batch_id) / MANIFEST_FILE}"
            )
        elif "caller_types" not in given and "scenarios" not in given:
            base = load_config("default")
    data = {**(base.model_dump() if base is not None else {}), **given}
    if base is not None:  # headers are excluded from dumps (secrets): pass them on in memory
        data = {**secret_fields(base), **data}
    cfg = config_from_dict(data, source="batch settings")
    check_scenarios(cfg.scenarios)
    specs = plan_calls(cfg)

    batch_id = validate_batch_id(batch_id or new_batch_id(cfg.name))
    batch_dir = (out / batch_id).resolve()
    if not resume and batch_dir.exists() and (not batch_dir.is_dir() or any(batch_dir.iterdir())):
        raise InputError(
            f"batch {batch_id!r} already exists in {out}; use resume (--resume) or another batch id"
        )

    executor = check_executor(executor)
    parallel = cfg.parallel
    if parallel is None and _is_local(executor):
        parallel = default_parallel(cfg.route)
    nb = None
    if notebook is not None:
        nb = Path(notebook)
        if nb.suffix != ".ipynb" or not nb.is_file():
            raise InputError(f"notebook {str(notebook)!r} not found or not a .ipynb file")
    junit_path = check_junit_path(junit)
    if _is_local(executor) and (cfg.processes or 1) > 1 and specs and local_server is None:
        from dualagent.batch.processes import runs_elsewhere

        if not runs_elsewhere(call_kwargs(specs[0], cfg, str(batch_dir))):
            raise InputError(
                f"processes={cfg.processes}: a worker process cannot rebuild this batch's call "
                "options (they name objects of the running script or notebook, __main__); "
                "put them in a module, or use processes=1"
            )
    return _Batch(
        cfg,
        batch_id,
        batch_dir,
        specs,
        parallel or 0,
        executor,
        nb,
        resume,
        progress,
        local_server,
        junit_path.resolve() if junit_path is not None else None,
    )


def check_executor(executor: Any) -> Any:
    """``executor`` if it is one a batch can run on, else :class:`InputError` naming the choices."""
    if executor is None or executor == "local":
        return "local"
    if isinstance(executor, str):
        if re.fullmatch(r"(dask|tcp|tls)://[^\s/:]+(:\d+)?/?", executor):
            return executor
        raise InputError(f"invalid executor {executor!r}; valid choices: local, dask://HOST:PORT")
    if type(executor).__name__ == "Client" and type(executor).__module__.startswith("distributed"):
        return executor
    raise InputError(
        f"invalid executor {executor!r}; valid choices: local, dask://HOST:PORT, or a distributed.Client"
    )


def _is_local(executor: Any) -> bool:
    return isinstance(executor, str) and executor == "local"


def _executor_label(executor: Any) -> str:
    if isinstance(executor, str):
        return executor
    return f"dask {getattr(executor.scheduler, 'address', '?')}"


# ------------------------------------------------------------------------------ running


def _new_manifest(batch: _Batch, previous: dict[str, Any] | None) -> dict[str, Any]:
    old = {c["call_id"]: c for c in (previous or {}).get("calls", [])}
    calls = [
        {
            "call_id": spec.call_id,
            "kind": spec.kind,
            "item": spec.item,
            "repeat": spec.repeat,
            "seed": spec.seed,
            "status": "pending",
            "path": spec.call_id,
            "resumed": False,
            "attempts": old.get(spec.call_id, {}).get("attempts", 0),
        }
        for spec in batch.specs
    ]
    return {
        "batch_id": batch.batch_id,
        "status": "running",
        "package_version": __version__,
        "created_at": (previous or {}).get("created_at") or utc_now(),
        "started_at": utc_now(),
        "ended_at": None,
        "resumed_from_previous_run": previous is not None,
        "executor": _executor_label(batch.executor),
        "parallel": batch.parallel or None,
        "retries": batch.config.retries,
        "config": batch.config.model_dump(mode="json"),
        "seeds": {spec.call_id: spec.seed for spec in batch.specs},
        "calls": calls,
    }


def _progress_bar(manifest: Manifest, enabled: bool, desc: str) -> Any:
    """A ``tqdm.auto`` bar (terminal or notebook widget) with ok/failed counts; None if disabled."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    counts = manifest.counts()
    bar = tqdm(
        total=counts["total"],
        initial=counts["finished"],
        desc=desc,
        unit="call",
        disable=None,  # a terminal bar only on a TTY; a notebook always shows its widget
    )
    _postfix(bar, counts)
    return bar


def _postfix(bar: Any, counts: dict[str, int]) -> None:
    bar.set_postfix_str(f"ok={counts['successes']}, failed={counts['failures']}", refresh=False)


async def _execute(batch: _Batch) -> BatchResult:
    previous = read_manifest(batch.batch_dir) if batch.resume else None
    batch.batch_dir.mkdir(parents=True, exist_ok=True)
    manifest = Manifest(batch.batch_dir, _new_manifest(batch, previous))

    todo: list[CallSpec] = []
    for spec in batch.specs:
        call_dir = batch.batch_dir / spec.call_id
        record = (
            finished_before(call_dir, spec.call_id, spec.seed, batch.config.route)
            if batch.resume
            else None
        )
        if record is not None:
            manifest.update(spec.call_id, **record, resumed=True)
            continue
        if call_dir.exists():  # a failed or unfinished attempt: run it again from scratch
            shutil.rmtree(call_dir)
        todo.append(spec)
    manifest.save()

    bar = _progress_bar(manifest, batch.progress, batch.batch_id)

    def finished(spec: CallSpec, record: dict[str, Any]) -> None:
        entry = manifest.by_id[spec.call_id]
        manifest.update(spec.call_id, **record, attempts=entry.get("attempts", 0) + 1)
        if bar is not None and record["status"] in FINISHED_STATUSES:
            _postfix(bar, manifest.counts())
            bar.update(1)
        manifest.save(force=False)

    try:
        async with contextlib.AsyncExitStack() as stack:
            if _is_local(batch.executor):
                processes = _processes(batch, len(todo))
                manifest.data["processes"] = processes
                if processes > 1:
                    from dualagent.batch.processes import process_calls

                    # one call at a time per worker: more would only queue in the pool
                    batch.parallel = min(batch.parallel, processes)
                    manifest.data["parallel"] = batch.parallel
                    call = await stack.enter_async_context(
                        process_calls(batch.config, str(batch.batch_dir), processes)
                    )
                else:
                    call = await _local_calls(batch, stack) if todo else None
            else:
                from dualagent.batch.dask import dask_calls

                call, threads = await stack.enter_async_context(
                    dask_calls(batch.executor, batch.config, str(batch.batch_dir))
                )
                if not batch.parallel:
                    batch.parallel = threads
                    manifest.data["parallel"] = threads
            if todo and call is not None:
                await _run_calls(batch, todo, manifest, call, finished)
        manifest.data["status"] = "completed"
    except (asyncio.CancelledError, KeyboardInterrupt):
        manifest.data["status"] = "interrupted"
        raise
    except BaseException as exc:
        manifest.data["status"] = "failed"
        manifest.data["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if bar is not None:
            bar.close()
        for entry in manifest.data["calls"]:
            if entry["status"] == "running":
                entry["status"] = "interrupted"
        manifest.data["ended_at"] = utc_now()
        result = batch_result(batch.batch_dir, manifest.data)
        manifest.data["overall"] = overall(result.summary, batch.config.repeat)
        manifest.save()
        write_results(result)
        if batch.junit is not None:  # CI reads it whatever happened, an interrupted batch too
            write_junit(result, batch.junit)

    if batch.notebook is not None:
        manifest.data["notebook"] = await asyncio.to_thread(
            run_notebook, batch.notebook, batch.batch_dir
        )
        manifest.save()
    return result


def _processes(batch: _Batch, calls: int) -> int:
    """Worker processes for the local executor: the config's, else automatic (see
    :func:`dualagent.batch.processes.auto_processes`); 1 with a server given to share."""
    if batch.local_server is not None:
        return 1
    if batch.config.processes is not None:
        return min(batch.config.processes, max(calls, 1))
    from dualagent.batch.processes import auto_processes, runs_elsewhere

    processes = auto_processes(batch.config, calls)
    if processes > 1 and batch.specs:  # objects of this script or notebook: stay here
        kwargs = call_kwargs(batch.specs[0], batch.config, str(batch.batch_dir))
        processes = processes if runs_elsewhere(kwargs) else 1
    return processes


async def _local_calls(batch: _Batch, stack: contextlib.AsyncExitStack) -> CallRunner:
    """Calls in this process, all on one shared embedded server (started here if not given;
    on the text route without loading the speech engines, which load if a call needs them)."""
    server = batch.local_server or await stack.enter_async_context(
        LocalRealtimeServer(warm=batch.config.route != "text")
    )
    output_dir = str(batch.batch_dir)

    async def call(spec: CallSpec) -> dict[str, Any]:
        # ``simulate`` is looked up in this module at call time (tests replace it here).
        result = await simulate(**call_kwargs(spec, batch.config, output_dir), local_server=server)
        return recorded_figures(result.path)

    return call


async def _run_calls(
    batch: _Batch,
    todo: list[CallSpec],
    manifest: Manifest,
    call: CallRunner,
    finished: Callable[[CallSpec, dict[str, Any]], None],
) -> None:
    """Run ``todo``, ``parallel`` at a time, each as a task of this loop; record each result."""
    semaphore = asyncio.Semaphore(batch.parallel)

    async def one(spec: CallSpec) -> None:
        async with semaphore:
            call_dir = batch.batch_dir / spec.call_id
            rng = random.Random(spec.seed)  # jitter: calls that failed together come back apart
            for attempt in range(batch.config.retries + 1):
                manifest.update(spec.call_id, status="running", started_at=utc_now())
                try:
                    record = await call(spec)
                except asyncio.CancelledError:
                    finished(spec, interrupted_figures(call_dir))
                    raise
                except Exception as exc:  # one failed call never stops the batch
                    record = error_figures(call_dir, exc)
                if attempt == batch.config.retries or not _worth_retrying(call_dir, record):
                    break
                _note_retry(manifest, spec.call_id, record)
                shutil.rmtree(call_dir, ignore_errors=True)
                await _pause(CALL_RETRY.delay_s(attempt, _NO_RETRY_AFTER, rng))
            finished(spec, record)

    tasks = [asyncio.create_task(one(spec), name=f"call-{spec.call_id}") for spec in todo]
    try:
        # Not gather(): on cancellation it returns at the first cancelled child, and
        # cancelling the others again would cut their recordings' finalisation short.
        await asyncio.wait(tasks)
    except BaseException:
        for task in tasks:
            if not task.done():
                task.cancel()  # once: simulate() finalises the recording as "interrupted"
        await asyncio.wait(tasks)
        raise
    for task in tasks:
        task.result()  # an unexpected bug in the batch machinery surfaces here


# ------------------------------------------------------------------------------ retries


def _worth_retrying(call_dir: Path, record: dict[str, Any]) -> bool:
    """A call that ended in error on something passing: its recording says ``retryable``
    (a rate limit, a server error, a transient connect failure)."""
    if record.get("status") != "error":
        return False
    try:
        return bool(load_call(call_dir).metadata.get("retryable"))
    except Exception:  # no readable recording: nothing says it may pass
        return False


def _note_retry(manifest: Manifest, call_id: str, record: dict[str, Any]) -> None:
    """Keep a failed attempt in the manifest (its folder is replaced by the next attempt)."""
    entry = manifest.by_id[call_id]
    failed = {"end_reason": record.get("end_reason"), "error": record.get("error")}
    manifest.update(
        call_id,
        attempts=entry.get("attempts", 0) + 1,
        retried=[*entry.get("retried", []), failed],
    )
    manifest.save(force=False)


async def _pause(seconds: float) -> None:
    """Wait before a retry (looked up at call time: tests count the pauses instead)."""
    await asyncio.sleep(seconds)
