"""Batches through the service: ``POST /batches`` runs :func:`dualagent.batch.run` as a task of
the service (the same config as ``dualagent batch``), ``GET /batches/{id}`` reads its
``batch.json`` through :func:`dualagent.batch.load_batch`.

Local batch calls share the service's embedded server and run at most ``max_conversations``
at a time; ``--executor dask://HOST:PORT`` runs them on a Dask cluster instead. A client names
built-in configs, personas, scenarios and agent specs only, never a file on the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from dualagent import batch
from dualagent.agent_spec import list_agents
from dualagent.batch.manifest import new_batch_id, validate_batch_id
from dualagent.call.options import CallDefaults
from dualagent.errors import InputError
from dualagent.personas import list_personas
from dualagent.scenarios import list_scenarios
from dualagent.service.calls import CallManager, is_secret

log = logging.getLogger(__name__)

BATCH_FIELDS = ("config", "caller_types", "scenarios", "repeat", "parallel", "seed", "batch_id")


def batch_request_fields() -> list[str]:
    """What ``POST /batches`` takes: the batch's fields and every call field except secrets
    (backend headers are configured where the service runs, never sent over the wire)."""
    calls = [n for n, f in CallDefaults.model_fields.items() if not is_secret(f.annotation)]
    return [*BATCH_FIELDS, *calls]


def _names(value: Any, field: str, valid: list[str]) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",")] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InputError(f"{field}: must be a list of names; valid values: {', '.join(valid)}")
    for name in names:
        if name not in valid:
            raise InputError(f"{field}: invalid value {name!r}; valid values: {', '.join(valid)}")
    return names


class BatchRunner:
    """The batches this service started (running or finished), by id."""

    def __init__(self, manager: CallManager) -> None:
        self.manager = manager
        self.settings = manager.settings
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    @property
    def running(self) -> int:
        return sum(not task.done() for task in self.tasks.values())

    async def start(self, body: Any) -> str:
        """Start a batch from a request body; its id. Bad input raises :class:`InputError`."""
        if not isinstance(body, dict):
            raise InputError("the body must be a JSON object")
        valid = batch_request_fields()
        for key in body:
            if key not in valid:
                raise InputError(f"unknown field {key!r}; valid fields: {', '.join(valid)}")
        values = dict(body)
        config = values.pop("config", None)
        if config is not None and config not in batch.list_configs():
            raise InputError(
                f"config: invalid value {config!r}; valid values: {', '.join(batch.list_configs())}"
            )
        caller_types = _names(values.pop("caller_types", None), "caller_types", list_personas())
        scenarios = _names(values.pop("scenarios", None), "scenarios", list_scenarios())
        if "agent" in values:  # a shipped spec: a path or module:attribute would load code here
            _names([values["agent"]] if isinstance(values["agent"], str) else values["agent"],
                   "agent", list_agents())  # fmt: skip
        batch_id = values.pop("batch_id", None)
        try:
            batch_id = validate_batch_id(batch_id or new_batch_id(config or "service"))
        except (InputError, ValueError) as exc:
            raise InputError(str(exc)) from None
        if batch_id in self.tasks and not self.tasks[batch_id].done():
            raise InputError(f"batch {batch_id!r} is running already")
        local = self.settings.executor == "local"
        parallel = values.pop("parallel", None)
        if local:  # local calls share this service's limit
            maximum = self.settings.max_conversations
            parallel = min(parallel, maximum) if isinstance(parallel, int) else maximum
        task = asyncio.create_task(
            batch.run(
                config,
                caller_types=caller_types,
                scenarios=scenarios,
                parallel=parallel,
                executor=self.settings.executor,
                output_dir=self.settings.batch_dir,
                batch_id=batch_id,
                progress=False,
                local_server=self.manager.server if local else None,
                **values,
            ),
            name=f"batch-{batch_id}",
        )
        # batch.run checks all its input before its first await: one turn of the loop and
        # the task has either refused the input or written its manifest.
        await asyncio.sleep(0)
        if task.done() and not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if isinstance(exc, InputError):
                raise InputError(str(exc))
            raise InputError(f"batch failed to start: {type(exc).__name__}: {exc}")
        self.tasks[batch_id] = task
        task.add_done_callback(self._log_end)
        log.info("batch %s started", batch_id)
        return batch_id

    def _log_end(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("%s failed: %s: %s", task.get_name(), type(exc).__name__, exc)

    def status(self, batch_id: str) -> dict[str, Any]:
        """The batch's progress and summary (blocking: call it in a thread)."""
        folder = Path(self.settings.batch_dir) / batch_id
        result = batch.load_batch(folder)
        manifest = result.manifest
        task = self.tasks.get(batch_id)
        return {
            "batch_id": result.batch_id,
            "status": result.status,
            "running": task is not None and not task.done(),
            "started_at": manifest.get("started_at"),
            "ended_at": manifest.get("ended_at"),
            "counts": manifest.get("counts") or {},
            "overall": manifest.get("overall"),
            "config": manifest.get("config"),
            "calls": manifest.get("calls", []),
            "summary": json.loads(result.summary.to_json(orient="records")),
            "path": str(folder),
        }

    def list(self) -> list[dict[str, Any]]:
        """Every batch folder in the batch directory, newest first (blocking)."""
        root = Path(self.settings.batch_dir)
        found = []
        for folder in root.iterdir() if root.is_dir() else ():
            if (folder / "batch.json").is_file():
                with contextlib.suppress(Exception):
                    state = self.status(folder.name)
                    state.pop("calls")
                    state.pop("summary")
                    found.append(state)
        return sorted(found, key=lambda b: str(b.get("started_at") or ""), reverse=True)

    async def close(self) -> None:
        """Cancel the running batches (their manifests say interrupted) and wait for them."""
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(BaseException):
                await task
