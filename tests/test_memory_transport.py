"""The in-memory transport (``memory://``): the same events and the same call as the websocket.

Both transports drive the same session core, engines and brains of one embedded server; these
tests hold them to that: every event either way reads as the typed models, a session answers
the same events in the same order, and a seeded call says and hears the same words with the
same outcome, on the text route for every persona and on the audio route for two.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

import dualagent
from dualagent import batch
from dualagent.call.options import CallOptions
from dualagent.call.plan import plan_call
from dualagent.call.record import load_call
from dualagent.errors import InputError
from dualagent.realtime import protocol as p
from dualagent.realtime.client import RealtimeConnectionError
from dualagent.realtime.local.faults import FaultPlan
from dualagent.realtime.local.server import LocalRealtimeServer
from dualagent.realtime.server_events import UnknownServerEvent, parse_server_event
from dualagent.realtime.transports import open_connection

HANG_GUARD_S = 300.0
PERSONAS = ["typical", "frustrated", "elderly", "hurried"]


async def call(server: LocalRealtimeServer, out: Path, name: str, transport: str, **kw: Any):
    kw.setdefault("caller_type", "typical")
    return await asyncio.wait_for(
        dualagent.simulate(
            output_dir=out, conversation_id=name, local_server=server, transport=transport, **kw
        ),
        HANG_GUARD_S,
    )


def said_and_heard(folder: Path) -> list[tuple[str, str, str | None]]:
    """Each turn's speaker, the words said and the words the other agent heard."""
    return [(t["speaker"], t["text"], t.get("heard")) for t in load_call(folder).turns]


def outcome(folder: Path) -> dict[str, Any]:
    """How the call ended and was judged (the times quoted in evidence aside: a fast call's
    timeline follows the machine's timing, on either transport)."""
    record = load_call(folder)
    meta = record.metadata
    judged = meta.get("outcome") or {}
    return {
        "status": meta["status"],
        "end_reason": meta["end_reason"],
        "result": judged.get("result"),
        "criteria": [
            (c["name"], c["passed"], re.sub(r"t=[\d.]+s", "t=?", str(c.get("evidence"))))
            for c in judged.get("criteria", [])
        ],
        "tools": [(c.get("name"), c.get("arguments")) for c in record.function_calls],
        "final_state": meta.get("agent_state"),
    }


def events_by_side(folder: Path) -> dict[tuple[str, str], list[str]]:
    """Event types per (agent, direction), in order."""
    sides: dict[tuple[str, str], list[str]] = {}
    for entry in load_call(folder).events():
        sides.setdefault((entry["agent"], entry["direction"]), []).append(entry["type"])
    return sides


def check_typed(folder: Path) -> int:
    """Every recorded event reads as the typed models (client events sent, server events
    received) and is JSON as it is; returns how many were checked."""
    checked = 0
    for entry in load_call(folder).events():
        event = entry["event"]
        assert json.loads(json.dumps(event)) == event
        if entry["direction"] == "sent":
            p.parse_client_event(event)
        else:
            assert not isinstance(parse_server_event(event), UnknownServerEvent), entry["type"]
        checked += 1
    return checked


# ------------------------------------------------------------------------------ events


async def test_a_session_answers_the_same_typed_events_on_both_transports(local_server) -> None:
    """One scripted exchange, straight through the transport: the server events are the same
    (ids aside: sessions are numbered), read as the typed models, and are plain JSON data."""
    client_events = [
        p.SessionUpdate(session=p.SessionConfig(type="realtime", output_modalities=["text"])),
        p.ConversationItemCreate(item=p.text_message("Hello, I lost my card.")),
        p.ResponseCreate(),
    ]

    async def exchange(url: str) -> list[dict[str, Any]]:
        connection = await open_connection(p_url(url))
        received: list[dict[str, Any]] = []
        try:
            for event in client_events:
                sent = await connection.send(event)
                p.parse_client_event(sent)
            async for event in connection:
                received.append(event)
                if event["type"] == "response.done":
                    break
        finally:
            await connection.close()
        assert connection.closed
        return received

    def p_url(url: str) -> str:
        return f"{url}?model=local-cs"

    over_ws = await asyncio.wait_for(exchange(local_server.url), HANG_GUARD_S)
    in_memory = await asyncio.wait_for(exchange(local_server.memory_url), HANG_GUARD_S)

    def shape(events: list[dict[str, Any]]) -> list[Any]:
        return [
            (e["type"], e.get("delta"), e.get("text"), (e.get("response") or {}).get("status"))
            for e in events
        ]

    assert shape(in_memory) == shape(over_ws)
    assert any(e["type"] == "response.output_text.delta" for e in in_memory)
    for event in in_memory:
        assert json.loads(json.dumps(event)) == event  # JSON data, as the wire would carry
        assert not isinstance(parse_server_event(event), UnknownServerEvent)


async def test_memory_urls_reach_only_a_server_of_this_process() -> None:
    with pytest.raises(RealtimeConnectionError, match="no embedded server 'local-999999'"):
        await open_connection("memory://local-999999/v1/realtime?model=local-cs")
    with pytest.raises(RealtimeConnectionError, match="invalid memory URL"):
        await open_connection("memory://local-1/elsewhere")


# ------------------------------------------------------------------------------ same call


@pytest.mark.parametrize("persona", PERSONAS)
async def test_text_route_same_seed_same_call_on_both_transports(
    persona: str, local_server, tmp_path: Path
) -> None:
    results = {
        transport: await call(
            local_server, tmp_path, transport, transport, caller_type=persona, route="text", seed=7
        )
        for transport in ("websocket", "memory")
    }
    ws, mem = (results[t].path for t in ("websocket", "memory"))
    assert said_and_heard(mem) == said_and_heard(ws)
    assert len(said_and_heard(mem)) >= 4
    assert outcome(mem) == outcome(ws)
    assert events_by_side(mem) == events_by_side(ws)
    assert check_typed(mem) > 50
    assert load_call(ws).metadata["transport"] == "websocket"
    assert load_call(mem).metadata["transport"] == "memory"


def speech(path: Path) -> np.ndarray:
    """A channel's samples without its silence: the words as spoken, wherever the timeline
    put them (a fast call's pauses follow the machine's timing, on either transport)."""
    samples, _ = sf.read(path, dtype="int16")
    return samples[samples != 0]


@pytest.mark.slow  # real speech both ways, two calls each
@pytest.mark.parametrize("persona", ["typical", "elderly"])
async def test_audio_route_same_seed_same_call_on_both_transports(
    persona: str, local_server, tmp_path: Path
) -> None:
    results = {
        transport: await call(
            local_server,
            tmp_path,
            transport,
            transport,
            caller_type=persona,
            route="audio",
            seed=5,
            max_turns=4,
        )
        for transport in ("websocket", "memory")
    }
    ws, mem = (results[t].path for t in ("websocket", "memory"))
    assert said_and_heard(mem) == said_and_heard(ws)
    assert all(heard for _, _, heard in said_and_heard(mem))  # recognised from real audio
    assert outcome(mem) == outcome(ws)
    assert check_typed(mem) > 50
    # The timeline's pauses depend on timing on both transports (so the files' bytes differ
    # from run to run even on one); the speech on each channel is the same, sample for sample.
    for channel in ("caller_audio.wav", "cs_audio.wav"):
        assert np.array_equal(speech(mem / channel), speech(ws / channel)), channel
        assert speech(mem / channel).size > 24_000


# ------------------------------------------------------------------------------ choosing it


def test_the_transport_is_checked_with_the_backend(tmp_path: Path) -> None:
    with pytest.raises(InputError) as bad:
        CallOptions.build(transport="pigeon")
    assert all(word in str(bad.value) for word in ("pigeon", "'websocket'", "'memory'"))
    remote = CallOptions.build(
        transport="memory", backend="ws://127.0.0.1:9/v1/realtime", output_dir=tmp_path
    )
    with pytest.raises(InputError) as info:
        plan_call(remote)
    message = str(info.value)
    assert "\n" not in message and "memory" in message and "websocket" in message
    # One call: the websocket, unless asked; a batch: memory on the embedded backend only.
    assert plan_call(CallOptions.build(output_dir=tmp_path)).transport == "websocket"
    local = CallOptions.build(output_dir=tmp_path)
    assert plan_call(local, default_transport="memory").transport == "memory"
    given = CallOptions.build(backend="ws://127.0.0.1:9/v1/realtime", output_dir=tmp_path)
    assert plan_call(given, default_transport="memory").transport == "websocket"


def test_cli_refuses_an_unknown_transport_naming_the_choices(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "dualagent", "run", "--transport", "pigeon"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        cwd=tmp_path,
    )
    assert run.returncode == 2
    assert "pigeon" in run.stderr and "websocket" in run.stderr and "memory" in run.stderr


async def test_batches_on_the_embedded_backend_go_through_memory(local_server, tmp_path) -> None:
    result = await asyncio.wait_for(
        batch.run(
            caller_types=["typical"],
            route="text",
            output_dir=tmp_path,
            progress=False,
            local_server=local_server,
            batch_id="mem",
        ),
        HANG_GUARD_S,
    )
    assert result.errors == 0
    folder = tmp_path / "mem" / "typical-000"
    assert load_call(folder).metadata["transport"] == "memory"
    chosen = await asyncio.wait_for(
        batch.run(
            caller_types=["typical"],
            route="text",
            output_dir=tmp_path,
            progress=False,
            local_server=local_server,
            batch_id="ws",
            transport="websocket",
        ),
        HANG_GUARD_S,
    )
    assert chosen.errors == 0
    assert load_call(tmp_path / "ws" / "typical-000").metadata["transport"] == "websocket"


# ------------------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("spec", "end_reason"),
    [("drop@cs:2", "cs_disconnected"), ("close=1011@caller:1", "caller_disconnected"),
     ("malformed@cs:2", "cs_bad_event")],
)  # fmt: skip
async def test_a_faulted_memory_line_ends_the_call_as_a_websocket_would(
    spec: str, end_reason: str, tmp_path: Path
) -> None:
    async with LocalRealtimeServer(warm=False) as server:
        server.faults = FaultPlan.parse(spec)
        result = await call(server, tmp_path, "faulted", "memory", route="text", seed=3)
        assert not server.connections  # both sessions ended and their work stopped
    record = load_call(result.path)
    assert (record.status, record.end_reason) == ("error", end_reason)
    assert record.turns, "what was said before the fault is kept"
