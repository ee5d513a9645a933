"""A Pipecat phone bot, as a team would run one: FastAPI websocket + Twilio serializer + an
OpenAI Realtime LLM service (speech to speech), here pointed at dualagent's embedded server so
it speaks with the scripted bank agent's voice, tools and words.

Run: ``python tests/bots/pipecat_phone_bot.py --port 8765 --realtime-url ws://127.0.0.1:PORT/v1``
(the embedded server of ``dualagent local-server``), then call ``twilio+ws://127.0.0.1:8765/ws``.

Everything is Pipecat's own, unmodified: ``parse_telephony_websocket`` reads ``connected`` and
``start``; ``TwilioFrameSerializer`` (``auto_hang_up=False``: it never calls Twilio's REST API)
turns ``media`` into audio frames and back, and an interruption into ``clear``; its FastAPI
websocket transport paces the bot's audio; turn detection is the Realtime server's (its
``speech_started`` interrupts the bot, which then sends ``clear``). The bank tools run here, in
the bot, as a deployed bot's own tools would; when the call's ``start`` carries a
``tool_report_url`` custom parameter, each call is POSTed there (dualagent's tool hook).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, WebSocket

REALTIME_MODEL = "local-cs"


def create_app(realtime_url: str) -> FastAPI:
    """The bot's web app: one websocket route, ``/ws``, one call per connection."""
    app = FastAPI()

    @app.websocket("/ws")
    async def call(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_bot(websocket, realtime_url)

    return app


def _bank_tools() -> tuple[Any, Any, str]:
    """The bank agent's tool schemas (Pipecat's), its tools (dualagent's bank, default data)
    and its instructions."""
    from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
    from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema

    from dualagent import bank
    from dualagent.agent_spec import DEFAULT_AGENT, load_agent
    from dualagent.agents import agent_instructions
    from dualagent.call.tools import Toolbox

    spec = load_agent(DEFAULT_AGENT)
    schemas = []
    for tool in spec.session_tools():
        parameters = tool.get("parameters") or {}
        schemas.append(
            FunctionSchema(
                name=tool["name"],
                description=tool.get("description", ""),
                properties=parameters.get("properties", {}),
                required=parameters.get("required", []),
            )
        )
    toolbox = Toolbox(spec, spec.new_state(bank.default_fixture()))
    return ToolsSchema(standard_tools=schemas), toolbox, agent_instructions(spec, 0)


async def run_bot(websocket: WebSocket, realtime_url: str) -> None:
    """One call: Pipecat's pipeline from the phone stream to the Realtime service and back."""
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
    from pipecat.runner.utils import parse_telephony_websocket
    from pipecat.serializers.twilio import TwilioFrameSerializer
    from pipecat.services.openai.realtime import events
    from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
    from pipecat.transports.websocket.fastapi import (
        FastAPIWebsocketParams,
        FastAPIWebsocketTransport,
    )
    from pipecat.workers.runner import WorkerRunner

    _, call_data = await parse_telephony_websocket(websocket)
    parameters = dict(call_data.body or {})
    serializer = TwilioFrameSerializer(
        stream_sid=call_data.stream_id,
        call_sid=call_data.call_id,
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
    )
    transport = FastAPIWebsocketTransport(
        websocket=websocket,
        params=FastAPIWebsocketParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            add_wav_header=False,
            serializer=serializer,
        ),
    )
    tools, toolbox, instructions = _bank_tools()
    llm = OpenAIRealtimeLLMService(
        api_key="not-used",
        base_url=realtime_url,
        settings=OpenAIRealtimeLLMService.Settings(
            model=REALTIME_MODEL,
            session_properties=events.SessionProperties(instructions=instructions),
        ),
    )
    report_url = parameters.get("tool_report_url")

    async def run_tool(params: Any) -> None:
        arguments = dict(params.arguments)
        result = await toolbox("cs", params.function_name, json.dumps(arguments))
        if report_url:  # tell the caller's side what ran (dualagent records it)
            report = {"name": params.function_name, "arguments": arguments, "output": result}
            try:
                async with httpx.AsyncClient(timeout=10.0) as client:
                    await client.post(report_url, json=report)
            except httpx.HTTPError as exc:
                print(f"tool report failed: {exc}", file=sys.stderr)
        await params.result_callback(result)

    for schema in tools.standard_tools:
        llm.register_function(schema.name, run_tool)
    context = LLMContext(tools=tools)
    aggregators = LLMContextAggregatorPair(context)
    pipeline = Pipeline(
        [transport.input(), aggregators.user(), llm, transport.output(), aggregators.assistant()]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=24_000, audio_out_sample_rate=24_000),
        idle_timeout_secs=None,
        enable_rtvi=False,
    )

    @transport.event_handler("on_client_disconnected")
    async def on_client_disconnected(transport: Any, client: Any) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--realtime-url", required=True, help="ws://HOST:PORT/v1 of the server")
    args = parser.parse_args(argv)
    for name, value in {"OTEL_SDK_DISABLED": "true", "DO_NOT_TRACK": "1"}.items():
        os.environ.setdefault(name, value)
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level=os.environ.get("BOT_LOG_LEVEL", "WARNING"))
    uvicorn.run(create_app(args.realtime_url), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
