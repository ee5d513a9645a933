"""A language model as a brain: the session behind an OpenAI-compatible chat-completions endpoint.

Speech in (PocketSphinx) -> chat completion, streamed (this module) -> sentences out (Piper),
so any model that Ollama, vLLM, llama.cpp's server, LM Studio or a hosted API serves can be an
agent of the embedded server. What the model sees is what a hosted Realtime model would see:

- the session's instructions (or the response's own) as the system message;
- the conversation items as messages: what it heard as ``user``, what it said as ``assistant``
  (the words actually heard when a message was truncated), its function calls as
  ``tool_calls`` and their ``function_call_output`` items as ``tool`` messages;
- the session's tools as chat tools.

Choosing it, by model name (the session's model, ``?model=...``):

- ``llm:MODEL@URL``: that model at that endpoint, e.g.
  ``llm:qwen2.5:3b@http://127.0.0.1:11434/v1``. ``dualagent run --cs-llm URL#MODEL`` sends
  this name (:meth:`LlmEndpoint.model_name`), so no server-side setup is needed.
- ``llm:MODEL``: an endpoint registered with :func:`register_llm`
  (``dualagent local-server --llm URL#MODEL``).

Sampling settings (temperature, max tokens, the call's seed) are fixed per endpoint and are
recorded in the call's metadata (:meth:`LlmEndpoint.describe`); the API key comes from
``$DUALAGENT_LLM_API_KEY`` and is never written anywhere.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dualagent.realtime.local.brains.base import BrainInput, ReplyPart, TextDelta
from dualagent.realtime.local.chat_client import API_KEY_ENV, stream_chat
from dualagent.realtime.local.session import ConversationEntry

LLM_PREFIX = "llm:"
DEFAULT_TEMPERATURE = 0.7
DEFAULT_MAX_TOKENS = 200  # a spoken turn; ~150 words
INAUDIBLE = "[inaudible]"  # what the model reads when the recogniser heard nothing
BARGE_IN_NOTE = "You are cutting in while the other person is still talking: say only a few words."
# A model name travels in a URL query (?model=...) and in JSON: keep it to characters that
# survive both unchanged.
_FORBIDDEN_IN_NAME = set(" \t\r\n#?&%@\"'<>")
_FORBIDDEN_SHOWN = "#?&%@\"'<> or spaces"
_NOT_SPOKEN = str.maketrans("", "", "*#`")  # markdown a model may write; Piper would not say it


@dataclass(frozen=True)
class LlmEndpoint:
    """A model at an OpenAI-compatible endpoint, with the sampling settings used for it."""

    base_url: str  # the API base, e.g. http://127.0.0.1:11434/v1 (``/chat/completions`` is added)
    model: str
    temperature: float = DEFAULT_TEMPERATURE
    max_tokens: int = DEFAULT_MAX_TOKENS

    def __post_init__(self) -> None:
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(
                f"invalid LLM endpoint URL {self.base_url!r}; valid: http(s)://HOST[:PORT]/PATH, "
                "e.g. http://127.0.0.1:11434/v1"
            )
        if url.username or url.password:
            raise ValueError(
                f"the LLM endpoint URL must not hold credentials; put the key in ${API_KEY_ENV}"
            )
        if url.query or url.fragment or _FORBIDDEN_IN_NAME & set(self.base_url):
            raise ValueError(
                f"invalid LLM endpoint URL {self.base_url!r}: no query, fragment, "
                f"{_FORBIDDEN_SHOWN}"
            )
        if not self.model or _FORBIDDEN_IN_NAME & set(self.model):
            raise ValueError(
                f"invalid LLM model name {self.model!r}: not empty, no {_FORBIDDEN_SHOWN}"
            )

    @classmethod
    def parse(cls, spec: str) -> LlmEndpoint:
        """``URL#MODEL`` (as typed after ``--cs-llm``/``--llm``) -> an endpoint."""
        url, hash_sign, model = spec.strip().rpartition("#")
        if not hash_sign or not url or not model:
            raise ValueError(
                f"invalid LLM spec {spec!r}; valid: URL#MODEL, "
                "e.g. http://127.0.0.1:11434/v1#qwen2.5:3b"
            )
        return cls(url.rstrip("/"), model)

    @classmethod
    def from_model_name(cls, name: str) -> LlmEndpoint:
        """``llm:MODEL@URL`` (a session's model name) -> an endpoint."""
        rest = name.removeprefix(LLM_PREFIX)
        model, at, url = rest.partition("@")
        if not name.startswith(LLM_PREFIX) or not at:
            raise ValueError(
                "No language model is registered under this name on the local server; valid: "
                "llm:MODEL@URL (e.g. llm:qwen2.5:3b@http://127.0.0.1:11434/v1) or a name that "
                "`dualagent local-server --llm URL#MODEL` registered (llm:MODEL)."
            )
        return cls(url, model)

    @property
    def model_name(self) -> str:
        """The session model name that selects this endpoint on any embedded server."""
        return f"{LLM_PREFIX}{self.model}@{self.base_url}"

    def sampling(self, seed: int | None) -> dict[str, Any]:
        """The sampling fields of a request (``seed`` where the endpoint honours it)."""
        fields: dict[str, Any] = {"temperature": self.temperature, "max_tokens": self.max_tokens}
        if seed is not None:
            fields["seed"] = seed
        return fields

    def describe(self, seed: int | None) -> dict[str, Any]:
        """What a recording says about this agent's model (no API key, ever)."""
        return {
            "endpoint": self.base_url,
            "model": self.model,
            **self.sampling(seed),
            "api_key_env": API_KEY_ENV,
        }


def register_llm(endpoint: LlmEndpoint) -> str:
    """Serve ``llm:MODEL`` with ``endpoint`` on this process's embedded servers; returns the name."""
    from dualagent.realtime.local.brains.registry import register_brain

    name = f"{LLM_PREFIX}{endpoint.model}"
    register_brain(name, lambda profile: LlmBrain(endpoint, profile))
    return name


class LlmBrain:
    """A :class:`~dualagent.realtime.local.brains.base.StreamingBrain` backed by a chat endpoint."""

    def __init__(self, endpoint: LlmEndpoint, profile: dict[str, Any]) -> None:
        self.endpoint = endpoint
        seed = profile.get("seed")
        self.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else None

    def request(self, given: BrainInput) -> dict[str, Any]:
        """The chat-completions request for one response (without ``stream``)."""
        request: dict[str, Any] = {
            "model": self.endpoint.model,
            "messages": chat_messages(given),
            **self.endpoint.sampling(self.seed),
            "stream_options": {"include_usage": True},
        }
        tools = chat_tools(given.tool_specs)
        if tools:
            request["tools"] = tools
            request["tool_choice"] = "auto"
        return request

    async def stream(self, given: BrainInput) -> AsyncIterator[ReplyPart]:
        async for part in stream_chat(self.endpoint.base_url, self.request(given)):
            if isinstance(part, TextDelta):
                text = part.text.translate(_NOT_SPOKEN)
                if text:
                    yield TextDelta(text)
            else:
                yield part


def chat_messages(given: BrainInput) -> list[dict[str, Any]]:
    """The conversation as chat messages (see the module docstring)."""
    system = given.response_instructions or given.instructions
    if given.barge_in:
        system = f"{system}\n\n{BARGE_IN_NOTE}" if system else BARGE_IN_NOTE
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    answered = {e.call_id for e in given.conversation if e.role == "tool" and e.call_id}
    for entry in given.conversation:
        _add_entry(messages, entry, answered)
    return messages


def _add_entry(
    messages: list[dict[str, Any]], entry: ConversationEntry, answered: set[str | None]
) -> None:
    last = messages[-1] if messages else None
    if entry.role == "tool":
        messages.append(
            {"role": "tool", "tool_call_id": entry.call_id or "", "content": entry.output or ""}
        )
    elif entry.role == "assistant" and entry.call_id:
        if entry.call_id not in answered:  # never run (cut off, deleted): the model never saw it
            return
        call = {
            "id": entry.call_id,
            "type": "function",
            "function": {"name": entry.name or "", "arguments": entry.arguments or "{}"},
        }
        if last is not None and last["role"] == "assistant":
            last.setdefault("tool_calls", []).append(call)
        else:
            messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
    elif entry.role in ("user", "assistant", "system"):
        text = entry.text.strip()
        if entry.role == "assistant" and not text:
            return  # a message cut before its first word
        text = text or INAUDIBLE
        # Merge a run of one speaker (some chat templates insist on alternation).
        if last is not None and last["role"] == entry.role and not last.get("tool_calls"):
            last["content"] = f"{last['content']} {text}".strip()
        else:
            messages.append({"role": entry.role, "content": text})


def chat_tools(tool_specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Realtime tool declarations -> chat-completions tools."""
    tools = []
    for spec in tool_specs:
        if spec.get("type", "function") != "function" or not spec.get("name"):
            continue
        function = {"name": spec["name"]}
        if spec.get("description"):
            function["description"] = spec["description"]
        function["parameters"] = spec.get("parameters") or {"type": "object", "properties": {}}
        tools.append({"type": "function", "function": function})
    return tools
