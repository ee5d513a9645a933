"""A stand-in OpenAI-compatible chat-completions server on 127.0.0.1, for the LLM brain's tests.

It speaks just enough HTTP/1.1 and server-sent events (``text/event-stream``, one JSON chunk
per word, tool calls in fragments, ``data: [DONE]``) to play a model whose replies a test
scripts: ``ChatStub(reply)`` where ``reply(request) -> StubReply``. It records every request,
how many were in flight at once, and which streams the client abandoned (a cancelled
response). A reply can also pause (until the test sets an event), hang, fail with an HTTP
status, or answer garbage, so the failure paths are tested against a real socket.

Also here: the command that starts llama-cpp-python's server on this machine
(:func:`llama_server_command`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StubReply:
    """What the stand-in model answers to one request."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # Stream the text up to and including this many words, then wait for ``resume``.
    pause_after_words: int | None = None
    resume: asyncio.Event | None = None
    hang: bool = False  # send the headers, then nothing more
    status: int = 200  # another status: an OpenAI-style error body
    garbage: str | None = None  # a 200 text/plain body that is not an event stream
    wait_for_peers: int = 1  # answer only once this many requests have arrived


class ChatStub:
    """``async with ChatStub(reply) as stub``: ``stub.base_url`` is ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, reply: Callable[[dict[str, Any]], StubReply]) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.abandoned = 0  # streams the client closed before the end
        self.abandoned_event = asyncio.Event()
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self) -> ChatStub:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode()
            headers = {}
            while (line := (await reader.readline()).decode().strip()) != "":
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            if not request_line.startswith("POST /v1/chat/completions"):
                await self._respond(writer, 404, "application/json", b'{"error": "not found"}')
                return
            request = json.loads(body)
            self.requests.append(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                await self._answer(reader, writer, request, self.reply(request))
            finally:
                self.active -= 1
        except (ConnectionError, asyncio.IncompleteReadError):
            self.abandoned += 1
            self.abandoned_event.set()
        finally:
            writer.close()

    async def _answer(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        request: dict[str, Any],
        reply: StubReply,
    ) -> None:
        async with asyncio.timeout(60):  # a client that never sends the others fails the test
            while len(self.requests) < reply.wait_for_peers:
                await asyncio.sleep(0.01)
        if reply.status != 200:
            error = {"error": {"message": f"stub refuses with {reply.status}", "type": "stub"}}
            await self._respond(
                writer, reply.status, "application/json", json.dumps(error).encode()
            )
            return
        if reply.garbage is not None:
            await self._respond(writer, 200, "text/plain", reply.garbage.encode())
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
        )
        await writer.drain()
        if reply.hang:
            await self._wait_or_abandon(reader, asyncio.Event())  # until the client gives up
        model = request.get("model", "stub")
        words = reply.text.split(" ") if reply.text else []
        for index, word in enumerate(words):
            delta = word if index == 0 else " " + word
            await self._event(writer, _chunk(model, {"content": delta}))
            if reply.pause_after_words == index + 1 and reply.resume is not None:
                await self._wait_or_abandon(reader, reply.resume)
        for index, (name, arguments) in enumerate(reply.tool_calls):
            raw = json.dumps(arguments)
            half = len(raw) // 2
            first = {"index": index, "id": f"call_stub{index}", "type": "function"}
            first["function"] = {"name": name, "arguments": raw[:half]}
            await self._event(writer, _chunk(model, {"tool_calls": [first]}))
            rest = {"index": index, "function": {"arguments": raw[half:]}}
            await self._event(writer, _chunk(model, {"tool_calls": [rest]}))
        finish = "tool_calls" if reply.tool_calls else "stop"
        await self._event(writer, _chunk(model, {}, finish))
        usage = {"prompt_tokens": 10, "completion_tokens": len(words), "total_tokens": 10}
        await self._event(writer, {"id": "chatcmpl-stub", "choices": [], "usage": usage})
        writer.write(b"data: [DONE]\n\n")
        await writer.drain()

    @staticmethod
    async def _wait_or_abandon(reader: asyncio.StreamReader, resume: asyncio.Event) -> None:
        """Wait for ``resume``; a client that closes the stream meanwhile abandons it (the client
        sends nothing after its request, so end of input means it closed)."""
        resumed = asyncio.ensure_future(resume.wait())
        closed = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait({resumed, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            resumed.cancel()
            closed.cancel()
        if not resume.is_set():
            raise ConnectionResetError("the client closed the stream")

    @staticmethod
    async def _event(writer: asyncio.StreamWriter, data: dict[str, Any]) -> None:
        writer.write(f"data: {json.dumps(data)}\n\n".encode())
        await writer.drain()

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, kind: str, body: bytes) -> None:
        writer.write(
            f"HTTP/1.1 {status} STUB\r\ncontent-type: {kind}\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion.chunk",
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


# llama.cpp's AMX kernels crash (SIGSEGV in ggml_backend_amx_mul_mat) where the CPU reports AMX
# but the kernel or sandbox does not grant the tile state; they are used only through llama.cpp's
# extra buffer types, so the test server starts with those off (plain CPU kernels, same answers).
_LLAMA_SERVER_WITHOUT_EXTRA_BUFFERS = """
import runpy, sys
import llama_cpp.llama_cpp as lib
default_params = lib.llama_model_default_params
def model_params():
    params = default_params()
    params.use_extra_bufts = False
    return params
lib.llama_model_default_params = model_params
sys.argv[0] = "llama_cpp.server"
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


def llama_server_command(model_path: str, port: int) -> list[str]:
    """``python -m llama_cpp.server --model PATH --host 127.0.0.1 --port N --n_ctx 2048``."""
    return [
        sys.executable,
        "-c",
        _LLAMA_SERVER_WITHOUT_EXTRA_BUFFERS,
        "--model",
        model_path,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--verbose",
        "false",
    ]
