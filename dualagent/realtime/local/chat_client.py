"""A streaming client for OpenAI-compatible chat-completions endpoints (Ollama, vLLM, llama.cpp,
LM Studio, hosted APIs): one request in, text deltas and tool calls out, measured.

:func:`stream_chat` posts ``{base_url}/chat/completions`` with ``stream: true`` and parses the
server-sent events as they arrive (async, over httpx: the event loop never blocks). It yields
:class:`TextDelta` and, when the stream ends, each complete :class:`ToolCall` (the fragments of
its arguments joined and parsed) and one :class:`GenerationStats` (time to first token, tokens,
tokens per second). Anything else — the endpoint down, slow past the timeout, a non-200 answer,
a body that is not a chat-completions stream — raises :class:`ChatEndpointError` with a message
that names the endpoint and what went wrong. Closing the generator (a cancelled response) closes
the HTTP stream, so the serving engine stops generating.

The API key comes from ``$DUALAGENT_LLM_API_KEY`` when set; it is sent as a bearer token to the
endpoint being called and never logged or written.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import os
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from dualagent.realtime.local.brains.base import (
    BrainUnavailableError,
    GenerationStats,
    TextDelta,
    ToolCall,
)

API_KEY_ENV = "DUALAGENT_LLM_API_KEY"
TIMEOUT_ENV = "DUALAGENT_LLM_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 60.0  # connect, and the longest wait for the next piece of the stream
_EXCERPT_CHARS = 200


class ChatEndpointError(BrainUnavailableError):
    """The chat endpoint could not be used: down, too slow, or not speaking chat completions."""


ChatPart = TextDelta | ToolCall | GenerationStats


@dataclass
class _PendingToolCall:
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()


def timeout_s() -> float:
    """The request timeout: ``$DUALAGENT_LLM_TIMEOUT_S`` or :data:`DEFAULT_TIMEOUT_S`."""
    raw = os.environ.get(TIMEOUT_ENV)
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ChatEndpointError(
            f"invalid {TIMEOUT_ENV}={raw!r}; valid: a number of seconds"
        ) from None
    return value if value > 0 else DEFAULT_TIMEOUT_S


async def stream_chat(
    base_url: str, request: dict[str, Any], *, timeout: float | None = None
) -> AsyncIterator[ChatPart]:
    """Stream one chat completion from ``base_url`` (``.../v1``); see the module docstring."""
    # Only a session that uses a language model pays for the import, off the event loop.
    httpx = await asyncio.to_thread(importlib.import_module, "httpx")

    url = base_url.rstrip("/") + "/chat/completions"
    body = {**request, "stream": True}
    headers = {"Accept": "text/event-stream"}
    key = os.environ.get(API_KEY_ENV)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    limit_s = timeout if timeout is not None else timeout_s()
    # Loading CA certificates takes tens of milliseconds: once, off the event loop; plain
    # HTTP (a local server) needs none.
    tls = await asyncio.to_thread(_tls_context) if url.startswith("https:") else False
    model = str(request.get("model", ""))
    where = f"LLM endpoint {url} (model {model!r})"
    started = time.perf_counter()
    parser = _StreamParser(where)
    try:
        async with (
            httpx.AsyncClient(timeout=httpx.Timeout(limit_s), verify=tls) as client,
            client.stream("POST", url, json=body, headers=headers) as answer,
        ):
            if answer.status_code != 200:
                text = (await answer.aread()).decode("utf-8", "replace")
                raise ChatEndpointError(
                    f"{where} answered HTTP {answer.status_code}: {_excerpt(_error_text(text))}"
                )
            if "application/json" in answer.headers.get("content-type", ""):
                # Some servers ignore stream=true and answer with the whole completion.
                text = (await answer.aread()).decode("utf-8", "replace")
                for part in parser.whole(text):
                    yield part
            else:
                async for line in answer.aiter_lines():
                    for part in parser.line(line):
                        yield part
                    if parser.done:
                        break
    except httpx.TimeoutException as exc:
        raise ChatEndpointError(
            f"{where} timed out after {limit_s:g} s ({type(exc).__name__}); "
            f"a slow model may need a larger {TIMEOUT_ENV}"
        ) from None
    except httpx.HTTPError as exc:
        raise ChatEndpointError(
            f"{where} is unreachable: {type(exc).__name__}: {exc or 'no detail'}"
        ) from None
    for part in parser.finish():
        yield part
    yield parser.stats(model, started)


class _StreamParser:
    """Server-sent chat-completion chunks -> parts; no I/O (tested on its own)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.done = False
        self.chunks = 0
        self.deltas = 0
        self.usage_tokens: int | None = None
        self.finish_reason: str | None = None
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.tool_calls: dict[int, _PendingToolCall] = {}
        self._data: list[str] = []

    def line(self, line: str) -> list[ChatPart]:
        """One line of the event stream; an empty line ends an event."""
        if line.startswith(":"):  # an SSE comment (keep-alive)
            return []
        if not line.strip():
            return self._event()
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        elif name not in ("event", "id", "retry"):
            raise ChatEndpointError(
                f"{self.where} did not answer with a chat-completions event stream: "
                f"{_excerpt(line)}"
            )
        return []

    def _event(self) -> list[ChatPart]:
        if not self._data:
            return []
        data, self._data = "\n".join(self._data), []
        if data.strip() == "[DONE]":
            self.done = True
            return []
        try:
            chunk = json.loads(data)
        except json.JSONDecodeError:
            raise ChatEndpointError(
                f"{self.where} sent an event that is not JSON: {_excerpt(data)}"
            ) from None
        return self.chunk(chunk)

    def whole(self, text: str) -> list[ChatPart]:
        """A complete (non-streamed) chat completion, as some servers send despite stream=true."""
        try:
            completion = json.loads(text)
        except json.JSONDecodeError:
            raise ChatEndpointError(
                f"{self.where} answered JSON that does not parse: {_excerpt(text)}"
            ) from None
        if not isinstance(completion, dict):
            raise ChatEndpointError(f"{self.where} answered {_excerpt(text)}")
        for choice in completion.get("choices") or []:
            if isinstance(choice, dict) and "message" in choice:
                message = choice.get("message") or {}
                choice["delta"] = {
                    **message,
                    "tool_calls": [
                        {**call, "index": i}
                        for i, call in enumerate(message.get("tool_calls") or [])
                    ],
                }
        parts = self.chunk(completion)
        self.done = True
        return parts

    def chunk(self, chunk: Any) -> list[ChatPart]:
        """One parsed chunk: its text delta and tool-call fragments."""
        if not isinstance(chunk, dict):
            raise ChatEndpointError(f"{self.where} sent {_excerpt(json.dumps(chunk))}")
        if chunk.get("error"):
            raise ChatEndpointError(f"{self.where} reported an error: {_error_text(chunk)}")
        choices = chunk.get("choices")
        usage = chunk.get("usage")
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            self.usage_tokens = usage["completion_tokens"]
        if not isinstance(choices, list):
            if usage is not None:
                return []  # the usage-only chunk at the end
            raise ChatEndpointError(
                f"{self.where} sent a chunk without choices: {_excerpt(json.dumps(chunk))}"
            )
        self.chunks += 1
        parts: list[ChatPart] = []
        for choice in choices:
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
            delta = choice.get("delta") or {}
            if not isinstance(delta, dict):
                continue
            text = delta.get("content")
            calls = delta.get("tool_calls") or []
            if text or calls:
                self._token()
            if isinstance(text, str) and text:
                parts.append(TextDelta(text))
            for fragment in calls if isinstance(calls, list) else []:
                self._tool_fragment(fragment)
        return parts

    def _token(self) -> None:
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
        self.last_token_at = now
        self.deltas += 1

    def _tool_fragment(self, fragment: Any) -> None:
        if not isinstance(fragment, dict):
            return
        index = fragment.get("index", len(self.tool_calls))
        pending = self.tool_calls.setdefault(
            index if isinstance(index, int) else 0, _PendingToolCall()
        )
        function = fragment.get("function") or {}
        if isinstance(function, dict):
            if function.get("name"):
                pending.name += str(function["name"])
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                pending.arguments.append(arguments)
            elif isinstance(arguments, dict):  # a few servers send parsed arguments
                pending.arguments.append(json.dumps(arguments))

    def finish(self) -> list[ChatPart]:
        """The tool calls, complete; an error if the stream held no completion at all."""
        if not self.chunks:
            raise ChatEndpointError(f"{self.where} ended the stream without a completion")
        calls: list[ChatPart] = []
        for index in sorted(self.tool_calls):
            pending = self.tool_calls[index]
            if not pending.name:
                raise ChatEndpointError(f"{self.where} sent a tool call without a function name")
            raw = "".join(pending.arguments).strip()
            try:
                arguments = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                arguments = None
            if not isinstance(arguments, dict):
                # Passed on as the model wrote it: the tool refuses it and the model hears why.
                arguments = {"unparsed_arguments": raw}
            calls.append(ToolCall(pending.name, arguments))
        return calls

    def stats(self, model: str, started: float) -> GenerationStats:
        ended = time.perf_counter()
        tokens = self.usage_tokens if self.usage_tokens is not None else self.deltas
        rate = None
        if self.first_token_at is not None and self.last_token_at is not None and tokens > 1:
            span = self.last_token_at - self.first_token_at
            rate = (tokens - 1) / span if span > 0 else None
        return GenerationStats(
            model=model,
            time_to_first_token_s=(
                self.first_token_at - started if self.first_token_at is not None else None
            ),
            output_tokens=tokens,
            tokens_per_s=rate,
            generation_s=ended - started,
            finish_reason=self.finish_reason,
        )


def _error_text(body: Any) -> str:
    """The message of an OpenAI-style error body, else the body itself."""
    data = body
    if isinstance(body, str):
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            return body.strip()
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            return str(error.get("message") or error.get("detail") or error)
        return str(error)
    return str(data)


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "...")
