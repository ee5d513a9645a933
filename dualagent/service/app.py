"""The service as a FastAPI app: ``create_app(settings)``; OpenAPI docs at ``/docs``.

One embedded Realtime server is started with the app and shared by every call and batch;
retention runs at start and daily; on shutdown every running call is stopped and finalised.
HTTP routes are here, websocket routes in :mod:`dualagent.service.ws`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from dualagent.call.options import ROUTES
from dualagent.call.record import load_call
from dualagent.call.recording import validate_conversation_id
from dualagent.errors import InputError
from dualagent.personas import list_personas
from dualagent.scenarios import list_scenarios
from dualagent.service import retention, ws
from dualagent.service.batches import BatchRunner
from dualagent.service.calls import (
    AUDIO_CHANNELS,
    CallManager,
    audio_files,
    call_parameters,
    conversation_urls,
)
from dualagent.service.security import TokenMiddleware, install_redaction, remove_redaction
from dualagent.service.settings import ServiceSettings
from dualagent.version import __version__

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
RETENTION_INTERVAL_S = 24 * 3600
AUDIO_MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".ogg": "audio/ogg"}


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    """The service for ``settings`` (checked: a public bind needs a token)."""
    settings = settings or ServiceSettings()
    settings.check_bind()
    manager = CallManager(settings)
    batches = BatchRunner(manager)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from dualagent.realtime.local.server import LocalRealtimeServer

        redactor = install_redaction([settings.token, os.environ.get("OPENAI_API_KEY")])
        app.state.started = time.monotonic()
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        retention_task = asyncio.create_task(_retention_loop(settings, manager, batches))
        server = LocalRealtimeServer(warm=settings.warm_engines)
        try:
            manager.server = await server.start()
            yield
        finally:
            retention_task.cancel()
            with contextlib.suppress(BaseException):
                await retention_task
            await manager.close()
            await batches.close()
            await server.close()
            remove_redaction(redactor)

    app = FastAPI(
        title="dualagent",
        version=__version__,
        summary="Two voice agents call each other over the Realtime protocol; watch and record.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.manager = manager
    app.state.batches = batches
    app.state.started = time.monotonic()
    app.add_middleware(TokenMiddleware, token=settings.token)
    app.include_router(ws.router)

    @app.get("/", include_in_schema=False)
    async def monitor() -> HTMLResponse:
        """The monitor page, its CSS and JS inline (so ``/?token=`` is all a browser needs)."""
        return HTMLResponse(await asyncio.to_thread(monitor_page))

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        path = STATIC_DIR / name
        if "/" in name or name.startswith(".") or not path.is_file():
            return _error(404, f"no static file {name!r}")
        return FileResponse(path)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Status, version, active and maximum conversations, backends, uptime."""
        return {
            "status": "ok" if manager.server is not None and not manager.closing else "starting",
            "version": __version__,
            "active_conversations": manager.active,
            "max_conversations": settings.max_conversations,
            "running_batches": batches.running,
            "backends": {
                "local": {
                    "status": "ready" if manager.server is not None else "starting",
                    "engines": {"tts": "piper", "asr": "pocketsphinx"},
                },
                "openai": {"configured": bool(os.environ.get("OPENAI_API_KEY"))},
            },
            "uptime_s": round(time.monotonic() - app.state.started, 1),
            "settings": settings.public_view(),
        }

    @app.get("/call-options")
    async def call_options() -> dict[str, Any]:
        """What ``/agent-conversation`` takes: its parameters and the valid names."""
        return {
            "parameters": call_parameters(),
            "caller_types": list_personas(),
            "scenarios": list_scenarios(),
            "routes": list(ROUTES),
        }

    @app.get("/calls")
    async def active_calls() -> dict[str, Any]:
        """The calls running now: persona, elapsed time, who is speaking."""
        calls = [live.summary() for live in manager.calls.values()]
        return {"calls": calls, "active": manager.active, "max": settings.max_conversations}

    @app.get("/conversations")
    async def conversations(limit: int = 50) -> Any:
        """Recorded conversations, newest first (summary figures and URLs)."""
        if not 1 <= limit <= 1000:
            return _error(400, f"limit: invalid value {limit}; valid values: 1 to 1000")
        items = await asyncio.to_thread(_list_conversations, settings.output_dir, limit)
        for item in items:
            item["live"] = item["conversation_id"] in manager.calls
        return {"conversations": items}

    @app.get("/conversations/{conversation_id}")
    async def conversation(conversation_id: str) -> Any:
        """One conversation: metadata, transcript, tool calls, outcome, metrics, audio URLs."""
        folder = _call_folder(settings, conversation_id)
        if isinstance(folder, JSONResponse):
            return folder
        record = await asyncio.to_thread(load_call, folder)
        return {
            "conversation_id": conversation_id,
            "live": conversation_id in manager.calls,
            "summary": record.summary(),
            "outcome": record.outcome_details or None,
            "metrics": record.metrics,
            "metadata": record.metadata,
            "transcript": record.turns,
            "function_calls": record.function_calls,
            "load_error": record.load_error,
            "urls": conversation_urls(conversation_id, record.metadata),
        }

    @app.get("/conversations/{conversation_id}/audio/{channel}")
    async def conversation_audio(conversation_id: str, channel: str) -> Response:
        """The recording's audio: ``stereo`` (caller left, agent right), ``caller`` or ``cs``."""
        if channel not in AUDIO_CHANNELS:
            valid = ", ".join(AUDIO_CHANNELS)
            return _error(404, f"channel: invalid value {channel!r}; valid values: {valid}")
        folder = _call_folder(settings, conversation_id)
        if isinstance(folder, JSONResponse):
            return folder
        if conversation_id in manager.calls:
            return _error(409, f"conversation {conversation_id!r} is still running")
        record = await asyncio.to_thread(load_call, folder)
        name = audio_files(record.metadata).get(channel)
        path = folder / name if name else None
        if path is None or not path.is_file():
            return _error(404, f"conversation {conversation_id!r} has no {channel} audio")
        media_type = AUDIO_MEDIA_TYPES.get(path.suffix, "application/octet-stream")
        return FileResponse(path, media_type=media_type)

    @app.post("/batches", status_code=202)
    async def start_batch(request: Request) -> Any:
        """Start a batch: ``config`` (built-in name), ``caller_types``, ``scenarios``,
        ``repeat``, ``parallel``, ``seed``, ``batch_id`` and any call default (``route``...)."""
        body = await _read_json(request, settings.max_message_bytes)
        if isinstance(body, JSONResponse):
            return body
        try:
            batch_id = await batches.start(body)
        except InputError as exc:
            return _error(400, str(exc))
        return {"batch_id": batch_id, "status": "running", "url": f"/batches/{batch_id}"}

    @app.get("/batches")
    async def list_batches() -> dict[str, Any]:
        return {"batches": await asyncio.to_thread(batches.list)}

    @app.get("/batches/{batch_id}")
    async def batch_status(batch_id: str) -> Any:
        """A batch's progress (per-call status) and summary."""
        try:
            validate_conversation_id(batch_id)
        except ValueError as exc:
            return _error(400, str(exc).replace("conversation id", "batch id"))
        if not (settings.batch_dir / batch_id / "batch.json").is_file():
            return _error(404, f"no batch {batch_id!r}")
        try:
            return await asyncio.to_thread(batches.status, batch_id)
        except InputError as exc:
            return _error(500, str(exc))

    return app


def monitor_page() -> str:
    """``static/index.html`` with ``monitor.css`` and ``monitor.js`` inline."""
    page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    css = (STATIC_DIR / "monitor.css").read_text(encoding="utf-8")
    js = (STATIC_DIR / "monitor.js").read_text(encoding="utf-8")
    page = page.replace(
        '<link rel="stylesheet" href="static/monitor.css">', f"<style>\n{css}</style>"
    )
    return page.replace('<script src="static/monitor.js"></script>', f"<script>\n{js}</script>")


def _call_folder(settings: ServiceSettings, conversation_id: str) -> Path | JSONResponse:
    try:
        validate_conversation_id(conversation_id)
    except ValueError as exc:
        return _error(400, str(exc))
    folder = settings.output_dir / conversation_id
    if not (folder / "call_metadata.json").is_file():
        return _error(404, f"no conversation {conversation_id!r}")
    return folder


def _list_conversations(root: Path, limit: int) -> list[dict[str, Any]]:
    if not root.is_dir():
        return []
    folders = [f for f in root.iterdir() if (f / "call_metadata.json").is_file()]
    folders.sort(key=lambda f: (f / "call_metadata.json").stat().st_mtime, reverse=True)
    items = []
    for folder in folders[:limit]:
        record = load_call(folder)
        items.append(
            {
                **record.summary(),
                "urls": conversation_urls(record.conversation_id, record.metadata),
            }
        )
    return items


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _error(413, f"request body over {limit} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _error(413, f"request body over {limit} bytes")
    try:
        return json.loads(body or b"{}")
    except ValueError:
        return _error(400, "the body must be JSON")


async def _retention_loop(
    settings: ServiceSettings, manager: CallManager, batches: BatchRunner
) -> None:
    """Delete what is older than ``retention_days`` now, then once a day."""
    while True:
        keep = manager.ids() | {bid for bid, t in batches.tasks.items() if not t.done()}
        try:
            removed = await asyncio.to_thread(
                retention.clean,
                [settings.output_dir, settings.batch_dir],
                settings.retention_days * 86400,
                keep=keep,
            )
        except Exception as exc:
            log.error("retention failed: %s: %s", type(exc).__name__, exc)
        else:
            for entry in removed:
                log.info(
                    "retention: removed %s %s (%.1f days old)",
                    entry.kind,
                    entry.path,
                    entry.age_days,
                )
        await asyncio.sleep(RETENTION_INTERVAL_S)
