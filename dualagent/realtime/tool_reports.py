"""An HTTP endpoint of ours on 127.0.0.1 that a bot we call can POST its tool calls to: what we
cannot see inside a phone-stream bot (:mod:`dualagent.realtime.phone_stream`), it may report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request

__all__ = ["TOOL_REPORT_PARAMETER", "ToolReportHook"]

TOOL_REPORT_PARAMETER = "tool_report_url"
"""The ``start`` custom parameter that tells a bot where to POST its tool calls."""


class ToolReportHook:
    """An HTTP endpoint of ours on 127.0.0.1 a bot may POST its tool calls to, one JSON object
    per call: ``{"name": ..., "arguments": {...}, "output": {...}}`` (``ok`` optional). Each
    report is handed to ``on_report`` as it comes; the URL goes to the bot in the ``start``
    message's custom parameters (:data:`TOOL_REPORT_PARAMETER`)."""

    def __init__(self, on_report: Callable[[dict[str, Any]], None]) -> None:
        self.on_report = on_report
        self.reports = 0
        self.url = ""
        self._server: Any = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ToolReportHook:
        import uvicorn

        app = FastAPI()

        @app.post("/tool-calls")
        async def tool_call(request: Request) -> dict[str, bool]:
            try:
                report = await request.json()
            except ValueError:
                raise HTTPException(400, "the body must be a JSON object") from None
            if not isinstance(report, dict) or not isinstance(report.get("name"), str):
                raise HTTPException(400, 'a tool report needs at least {"name": "..."}')
            self.reports += 1
            self.on_report(report)
            return {"ok": True}

        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(), name="tool-report-hook")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what stopped it
                raise RuntimeError("the tool report hook did not start")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/tool-calls"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5.0)
