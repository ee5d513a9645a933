"""A call whose agents fall silent ends on its own, says so, and keeps what it recorded."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
import websockets

import dualagent
from dualagent.call.core import CallCore, CallSettings, EndCall
from dualagent.realtime import protocol as p

SESSIONS = {
    "caller": p.session_config(instructions="You are a caller.", voice="ash"),
    "cs": p.session_config(instructions="You are a bank agent.", voice="coral"),
}


def test_the_core_ends_a_stalled_call_with_an_error_that_says_so() -> None:
    core = CallCore(CallSettings())
    core.start(SESSIONS, 0.0)
    [end] = [e for e in core.on_timeout() if isinstance(e, EndCall)]
    assert (end.status, end.end_reason) == ("error", "stalled")
    assert "no events" in (end.error or "")
    # Once ending, another timeout finishes the call; it never ends it a second time.
    assert not [e for e in core.on_timeout() if isinstance(e, EndCall)]


async def test_a_server_that_never_answers_ends_the_call_as_stalled(tmp_path: Path) -> None:
    """A Realtime endpoint that accepts the connection and then says nothing at all."""
    received: list[str] = []

    async def silent(connection) -> None:
        async for message in connection:  # read what we are sent, answer nothing
            received.append(json.loads(message)["type"])

    async with websockets.serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        result = await dualagent.simulate(
            backend=f"ws://127.0.0.1:{port}/v1/realtime",
            route="text",
            idle_timeout_s=1.0,
            output_dir=tmp_path,
            conversation_id="silent",
        )
    assert (result.status, result.end_reason) == ("error", "stalled")
    assert "session.update" in received  # we did talk to it
    folder = tmp_path / "silent"
    for name in ("transcript.json", "function_calls.json", "session_events.json"):
        json.loads((folder / name).read_text(encoding="utf-8"))  # every file parses
    assert sf.info(folder / "stereo_recording.wav").frames == 0
