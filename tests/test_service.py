"""`dualagent serve`: the real service on 127.0.0.1, driven over HTTP and websockets."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
import pytest_asyncio
import soundfile as sf
import websockets

from dualagent.cli import main
from dualagent.errors import InputError
from dualagent.service import security
from dualagent.service.live import AudioMixer
from dualagent.service.settings import ServiceSettings
from tests.service_helpers import read_call, running_service, wait_for

TOKEN = "s3cret-token-for-tests-0123456789"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("service")
    old = root / "calls" / "ancient-call"
    _fake_call(old, days_ago=30)  # retention at start removes it
    settings = ServiceSettings.build(
        output_dir=root / "calls", batch_dir=root / "batches", max_conversations=10
    )
    async with running_service(settings) as running:
        running.ancient = old  # type: ignore[attr-defined]
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def client(service):
    async with httpx.AsyncClient(base_url=service.http, timeout=60) as http:
        yield http


def _fake_call(folder: Path, days_ago: float, status: str = "completed") -> None:
    folder.mkdir(parents=True)
    started = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    meta = {"conversation_id": folder.name, "status": status, "started_at": started}
    (folder / "call_metadata.json").write_text(json.dumps(meta))


def _fake_batch(folder: Path, days_ago: float) -> None:
    folder.mkdir(parents=True)
    started = (datetime.now(UTC) - timedelta(days=days_ago)).isoformat()
    (folder / "batch.json").write_text(json.dumps({"batch_id": folder.name, "started_at": started}))


async def _call(service, query: str) -> list[dict]:
    async with websockets.connect(f"{service.ws}/agent-conversation?{query}", max_size=None) as ws:
        return await read_call(ws)


async def _refusal(service, query: str) -> tuple[int, dict, dict]:
    """(close code, close reason as JSON, the error event) of a refused call."""
    async with websockets.connect(f"{service.ws}/agent-conversation?{query}") as ws:
        event = json.loads(await ws.recv())
        with pytest.raises(websockets.ConnectionClosedError) as closed:
            await ws.recv()
    frame = closed.value.rcvd
    return frame.code, json.loads(frame.reason), event


# ------------------------------------------------------------------------------ health


async def test_health_says_status_version_capacity_backends_uptime(client):
    health = (await client.get("/health")).json()
    assert health["status"] == "ok"
    assert health["version"]
    assert health["active_conversations"] == 0
    assert health["max_conversations"] == 10
    assert health["backends"]["local"]["status"] == "ready"
    assert health["backends"]["openai"] == {"configured": False}
    assert health["uptime_s"] >= 0
    assert (await client.get("/openapi.json")).json()["paths"]["/health"]
    assert (await client.get("/docs")).status_code == 200


async def test_retention_at_start_removed_the_old_recording(service):
    await wait_for(lambda: not service.ancient.exists())


# ------------------------------------------------------------------------------ one call


async def test_a_text_call_is_streamed_end_to_end_and_recorded(service, client):
    events = await _call(service, "caller_type=frustrated&route=text&seed=2")
    kinds = [e["type"] for e in events]
    started, ended = events[0], events[-1]
    assert started["type"] == "call.started"
    assert started["caller_type"] == "frustrated"
    assert started["persona"]["name"] == "frustrated"
    cid = started["conversation_id"]
    assert {"utterance.started", "transcript.delta", "utterance.ended", "tool.call"} <= set(kinds)
    assert all(e["conversation_id"] == cid for e in events)
    assert ended["type"] == "call.ended"
    assert ended["status"] == "completed"
    assert ended["outcome"] in ("success", "failure", "incomplete")
    assert ended["end_reason"]

    # The transcript grew word by word, and the deltas add up to what was said.
    first = next(e for e in events if e["type"] == "utterance.ended")
    deltas = [
        e["delta"]
        for e in events
        if e["type"] == "transcript.delta" and e["item_id"] == events[1]["item_id"]
    ]
    assert "".join(deltas).strip() == first["text"]

    folder = Path(ended["paths"]["folder"])
    assert folder == service.settings.output_dir / cid
    metadata = json.loads((folder / "call_metadata.json").read_text())
    assert metadata["status"] == "completed"
    transcript = json.loads((folder / "transcript.json").read_text())["turns"]
    spoken = [e for e in events if e["type"] == "utterance.ended"]
    assert [t["text"] for t in transcript] == [e["text"] for e in spoken]

    detail = (await client.get(f"/conversations/{cid}")).json()
    assert detail["summary"]["status"] == "completed"
    assert detail["outcome"]["result"] == ended["outcome"]
    assert detail["metrics"]
    assert len(detail["transcript"]) == len(spoken)
    assert detail["function_calls"]
    listed = (await client.get("/conversations")).json()["conversations"]
    assert cid in [c["conversation_id"] for c in listed]
    audio = await client.get(detail["urls"]["audio"]["stereo"])
    assert audio.status_code == 200
    assert audio.headers["content-type"] == "audio/wav"


async def test_an_audio_call_streams_the_mixed_audio_of_its_recording(service):
    events = await _call(service, "caller_type=typical&route=audio&duration=25&audio=1&seed=4")
    ended = events[-1]
    assert ended["type"] == "call.ended"
    assert ended["status"] == "completed"
    chunks = [e for e in events if e["type"] == "audio"]
    assert chunks
    assert all(e["sample_rate"] == 24000 and e["format"] == "pcm16" for e in chunks)
    received = b"".join(__import__("base64").b64decode(e["audio"]) for e in chunks)
    # One mono stream on the call's timeline: as long as the recording, and its mix.
    stereo, rate = sf.read(ended["paths"]["stereo"], dtype="int16")
    assert rate == 24000
    assert len(received) // 2 == len(stereo)
    starts = [e["at_s"] for e in chunks]
    assert starts == sorted(starts)


def test_the_mixer_puts_both_voices_on_one_timeline():
    mixer = AudioMixer(sample_rate_hz=10)
    mixer.place((1000).to_bytes(2, "little", signed=True) * 10, at_s=0.0)  # 1 s
    mixer.place((500).to_bytes(2, "little", signed=True) * 10, at_s=0.5)  # overlaps 0.5 s
    first = mixer.release(0.5)
    rest = mixer.release(None)
    assert [at for at, _ in first] == [0.0]
    assert first[0][1] == (1000).to_bytes(2, "little", signed=True) * 5
    pcm = rest[0][1]
    assert rest[0][0] == 0.5
    values = [int.from_bytes(pcm[i : i + 2], "little", signed=True) for i in range(0, len(pcm), 2)]
    assert values == [1500] * 5 + [500] * 5
    mixer.place(b"\1\0" * 10, at_s=2.0)
    mixer.skip(2.5)  # nobody listened to this part
    assert mixer.release(None) == [(2.5, b"\1\0" * 5)]


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("query", "parameter", "valid"),
    [
        ("bogus=1", "bogus", "duration, max_turns"),
        ("caller_type=angry", "caller_type", "elderly, frustrated, hurried, typical"),
        ("route=carrier-pigeon", "route", "'audio' or 'text'"),
        ("duration=5000", "duration", "1 to 1800"),
        ("audio=maybe", "audio", "0 or 1"),
        ("scenario=/etc/passwd", "scenario", "lost_card"),
        ("agent=os%3Asystem", "agent", "bank"),
        ("agent=/tmp/agent.yaml", "agent", "bank"),
        ("output_dir=/tmp", "output_dir", "caller_type"),
        ("cs_header=Authorization%3A+Bearer+x", "cs_header", "caller_type"),
        ("cs_backend=openai", "cs_backend", "OPENAI_API_KEY"),
    ],
)
async def test_bad_parameters_are_refused_with_1008_naming_them(service, query, parameter, valid):
    before = set(service.settings.output_dir.iterdir())
    code, reason, event = await _refusal(service, query)
    assert code == 1008
    assert reason["error"] == "invalid_parameter"
    assert reason["parameter"] == parameter
    assert event["parameter"] == parameter
    assert valid in event["message"]
    assert len(json.dumps(reason).encode()) <= 123 + 10
    assert set(service.settings.output_dir.iterdir()) == before  # nothing written


async def test_over_capacity_the_websocket_is_closed_with_1013_and_a_reason(tmp_path):
    settings = ServiceSettings.build(output_dir=tmp_path / "calls", max_conversations=1)
    async with running_service(settings) as service:
        slow = "route=audio&pace=realtime&duration=600&seed=1"
        async with websockets.connect(f"{service.ws}/agent-conversation?{slow}") as first:
            started = json.loads(await first.recv())
            assert started["type"] == "call.started"
            code, reason, event = await _refusal(service, "route=text")
            assert code == 1013
            assert reason == {
                "error": "capacity",
                "active": 1,
                "max": 1,
                "message": reason["message"],
            }
            assert event["error"] == "capacity"
            # The client ends its own call; the recording is finalised.
            await first.send(json.dumps({"type": "hello"}))
            await first.send(json.dumps({"type": "end_call"}))
            events = await read_call(first)
        assert any(e["type"] == "error" and e["error"] == "invalid_message" for e in events)
        ended = events[-1]
        assert ended["type"] == "call.ended"
        assert ended["status"] == "interrupted"
        assert ended["stopped_by"] == "client_request"
        # A slot is free again.
        again = await _call(service, "route=text")
        assert again[-1]["status"] == "completed"


async def test_a_session_stops_at_the_session_limit_and_is_finalised(tmp_path):
    settings = ServiceSettings.build(output_dir=tmp_path / "calls", max_session_s=1)
    async with running_service(settings) as service:
        events = await _call(service, "route=audio&pace=realtime&duration=600")
    ended = events[-1]
    assert ended["type"] == "call.ended"
    assert ended["stopped_by"] == "session_limit"
    assert ended["status"] == "interrupted"
    assert Path(ended["paths"]["stereo"]).is_file()


async def test_a_message_over_the_size_limit_closes_the_connection(tmp_path):
    settings = ServiceSettings.build(output_dir=tmp_path / "calls", max_message_bytes=4096)
    async with running_service(settings) as service:
        slow = "route=audio&pace=realtime&duration=600"
        async with websockets.connect(f"{service.ws}/agent-conversation?{slow}") as ws:
            cid = json.loads(await ws.recv())["conversation_id"]
            await ws.send("x" * 10_000)
            with pytest.raises(websockets.ConnectionClosedError) as closed:
                while True:
                    await ws.recv()
        assert closed.value.rcvd.code == 1009
        live = service.app.state.manager
        await wait_for(lambda: cid not in live.calls)
        meta = json.loads((settings.output_dir / cid / "call_metadata.json").read_text())
        assert meta["status"] == "interrupted"


# ------------------------------------------------------------------------------ leaving early


async def test_a_client_that_leaves_early_ends_the_call_and_it_is_finalised(service, client):
    query = "caller_type=hurried&route=audio&pace=realtime&duration=600"
    async with websockets.connect(f"{service.ws}/agent-conversation?{query}") as ws:
        cid = json.loads(await ws.recv())["conversation_id"]
        while json.loads(await ws.recv())["type"] != "utterance.started":
            pass
    summary = await wait_for(
        lambda: _finished(client, cid),
    )
    assert summary["status"] == "interrupted"
    assert summary["end_reason"] == "interrupted"
    assert summary["ended_at"]
    assert cid not in [c["conversation_id"] for c in (await client.get("/calls")).json()["calls"]]


async def test_a_detached_call_runs_to_its_end_without_its_client(service, client):
    query = "caller_type=typical&route=audio&pace=realtime&duration=6&detach=1"
    async with websockets.connect(f"{service.ws}/agent-conversation?{query}") as ws:
        cid = json.loads(await ws.recv())["conversation_id"]
    calls = (await client.get("/calls")).json()["calls"]
    assert [c["detached"] for c in calls if c["conversation_id"] == cid] in ([True], [])
    summary = await wait_for(lambda: _finished(client, cid))
    assert summary["status"] == "completed"
    assert summary["end_reason"] != "interrupted"


async def test_a_watcher_sees_a_running_call_and_leaving_changes_nothing(service, client):
    query = "route=audio&pace=realtime&duration=5"
    async with websockets.connect(f"{service.ws}/agent-conversation?{query}") as owner:
        cid = json.loads(await owner.recv())["conversation_id"]
        async with websockets.connect(f"{service.ws}/conversations/{cid}/live") as watcher:
            first = json.loads(await watcher.recv())
            assert first["type"] == "call.started"  # the history first
        events = await read_call(owner)
    assert events[-1]["type"] == "call.ended"
    assert events[-1]["status"] == "completed"
    async with websockets.connect(f"{service.ws}/conversations/{cid}/live") as late:
        assert json.loads(await late.recv())["type"] == "call.ended"


async def _finished(client, cid: str) -> dict | None:
    response = await client.get(f"/conversations/{cid}")
    if response.status_code != 200:
        return None
    summary = response.json()["summary"]
    return summary if summary["status"] != "running" and not response.json()["live"] else None


# ------------------------------------------------------------------------------ HTTP reads


async def test_conversation_ids_are_checked_and_audio_channels_named(service, client):
    bad = await client.get("/conversations/bad%20id")
    assert bad.status_code == 400
    assert "letters, digits" in bad.json()["error"]
    assert (await client.get("/conversations/no-such-call")).status_code == 404
    events = await _call(service, "route=text&seed=9")
    cid = events[0]["conversation_id"]
    wrong = await client.get(f"/conversations/{cid}/audio/left")
    assert wrong.status_code == 404
    assert "stereo, caller, cs" in wrong.json()["error"]
    for channel in ("caller", "cs"):
        response = await client.get(f"/conversations/{cid}/audio/{channel}")
        assert response.headers["content-type"] == "audio/wav"


async def test_the_monitor_page_is_served_with_its_script(client):
    page = await client.get("/")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert "dualagent" in page.text
    assert "<script>" in page.text and "agent-conversation" in page.text
    options = (await client.get("/call-options")).json()
    assert "typical" in options["caller_types"]
    assert "audio" not in options["parameters"][:2]


# ------------------------------------------------------------------------------ batches


async def test_a_batch_runs_through_the_service(service, client):
    response = await client.post(
        "/batches", json={"caller_types": ["typical", "elderly"], "repeat": 2, "route": "text"}
    )
    assert response.status_code == 202
    batch_id = response.json()["batch_id"]

    async def done():
        state = (await client.get(f"/batches/{batch_id}")).json()
        return state if state["status"] != "running" else None

    state = await wait_for(done)
    assert state["status"] == "completed"
    assert state["counts"]["finished"] == 4
    assert {c["status"] for c in state["calls"]} == {"completed"}
    assert {row["item"] for row in state["summary"]} == {"typical", "elderly"}
    assert (service.settings.batch_dir / batch_id / "batch.json").is_file()
    assert batch_id in [b["batch_id"] for b in (await client.get("/batches")).json()["batches"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"config": "nope"}, "valid values: "),
        ({"bogus": 1}, "valid fields: "),
        ({"caller_types": ["../../etc/persona.yaml"]}, "valid values: elderly"),
        ({"agent": "json:loads"}, "agent: invalid value 'json:loads'; valid values: bank"),
        ({"repeat": 0, "route": "text"}, "repeat"),
    ],
)
async def test_bad_batch_requests_are_refused(client, body, message):
    response = await client.post("/batches", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


# ------------------------------------------------------------------------------ security


def test_a_public_bind_needs_a_token():
    with pytest.raises(InputError, match=r"0\.0\.0\.0.*token"):
        ServiceSettings.build(host="0.0.0.0")
    assert ServiceSettings.build(host="0.0.0.0", token=TOKEN).token_required
    assert not ServiceSettings.build(host="127.0.0.1").token_required
    assert not ServiceSettings.build(host="::1").token_required
    assert TOKEN not in repr(ServiceSettings.build(host="0.0.0.0", token=TOKEN))
    assert main(["serve", "--host", "0.0.0.0"]) == 2


def test_the_token_is_compared_in_constant_time(monkeypatch):
    seen = []
    compare = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return compare(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    expected = ServiceSettings.build(host="0.0.0.0", token=TOKEN).token
    assert security.token_matches(TOKEN, expected)
    assert not security.token_matches(TOKEN + "x", expected)
    assert len(seen) == 2


async def test_off_localhost_every_request_needs_the_token(tmp_path, caplog):
    caplog.set_level(1)  # everything, down to uvicorn's trace
    settings = ServiceSettings.build(host="0.0.0.0", token=TOKEN, output_dir=tmp_path / "calls")
    bodies = []
    async with (
        running_service(settings, log_level="trace") as service,
        httpx.AsyncClient(base_url=service.http) as http,
    ):
        for path in ("/health", "/", "/conversations", "/calls", "/docs"):
            refused = await http.get(path)
            assert refused.status_code == 401, path
            assert (await http.get(path, params={"token": "wrong-token-123"})).status_code == 401
            bodies.append(refused.text)
        ok = await http.get("/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert (await http.get("/health", params={"token": TOKEN})).status_code == 200
        bodies += [ok.text, (await http.get("/", params={"token": TOKEN})).text]

        with pytest.raises(websockets.InvalidStatus) as refused_ws:
            await websockets.connect(f"{service.ws}/agent-conversation?route=text")
        assert refused_ws.value.response.status_code == 403
        url = f"{service.ws}/agent-conversation?route=text&token={TOKEN}"
        async with websockets.connect(url) as ws:
            events = await read_call(ws)
        assert events[-1]["status"] == "completed"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with websockets.connect(
            f"{service.ws}/agent-conversation?route=text", additional_headers=headers
        ) as ws:
            events += await read_call(ws)
        bodies += [json.dumps(e) for e in events]
        cid = events[0]["conversation_id"]
        bodies.append((await http.get(f"/conversations/{cid}", headers=headers)).text)
    assert not any(TOKEN in body for body in bodies)
    # What the service logged (the test's own clients log their requests as they send them).
    clients = ("httpx", "httpcore", "websockets.client")
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(clients))
    assert "token=***" in logged  # the access log saw the query, redacted
    assert "uvicorn.asgi" in {r.name for r in caplog.records}  # scopes with headers, at trace
    assert TOKEN not in logged
    for folder in settings.output_dir.iterdir():
        for file in folder.glob("*.json"):
            assert TOKEN not in file.read_text()


def test_log_redaction_keeps_uvicorn_access_args_usable():
    redactor = security.RedactSecrets([TOKEN])
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", f"/health?token={TOKEN}", "1.1", 200),
        None,
    )
    redactor.filter(record)
    assert record.args[2] == "/health?token=***"
    assert security.redact("/x?cs_header=Authorization%3A+Bearer+sk-1&seed=2") == (
        "/x?cs_header=***&seed=2"
    )
    assert record.args[4] == 200
    scope = {"headers": [(b"authorization", f"Bearer {TOKEN}".encode())]}
    record = logging.LogRecord("uvicorn.asgi", 5, __file__, 1, "scope=%s", (scope,), None)
    redactor.filter(record)
    assert TOKEN not in record.getMessage()


# ------------------------------------------------------------------------------ retention


def _retention_tree(root: Path) -> dict[str, Path]:
    paths = {
        "old_call": root / "calls" / "old-call",
        "new_call": root / "calls" / "new-call",
        "old_batch": root / "batches" / "old-batch",
        "new_batch": root / "batches" / "new-batch",
        "broken_old": root / "calls" / "broken-old",
        "not_a_call": root / "calls" / "notes",
    }
    _fake_call(paths["old_call"], days_ago=8)
    (paths["old_call"] / "stereo_recording.wav").write_bytes(b"\0" * 1000)
    _fake_call(paths["new_call"], days_ago=6)
    _fake_batch(paths["old_batch"], days_ago=10)
    _fake_call(paths["old_batch"] / "typical-r0", days_ago=10)
    _fake_batch(paths["new_batch"], days_ago=1)
    paths["broken_old"].mkdir()
    (paths["broken_old"] / "call_metadata.json").write_text("{not json")
    old = (datetime.now() - timedelta(days=9)).timestamp()
    os.utime(paths["broken_old"], (old, old))
    paths["not_a_call"].mkdir()
    (paths["not_a_call"] / "readme.txt").write_text("keep me")
    os.utime(paths["not_a_call"], (old, old))
    return paths


def test_clean_dry_run_lists_and_then_deletes_what_is_older_than_the_age(tmp_path, capsys):
    paths = _retention_tree(tmp_path)
    dirs = ["--output-dir", str(tmp_path / "calls"), "--output-dir", str(tmp_path / "batches")]
    expired = {"old_call", "old_batch", "broken_old"}

    assert main(["clean", "--older-than", "7d", "--dry-run", *dirs]) == 0
    out = capsys.readouterr().out
    for name, path in paths.items():
        assert path.exists()
        assert (str(path) in out) == (name in expired), name
    assert "would remove 3 folders older than 7d" in out

    assert main(["clean", "--older-than", "7d", *dirs]) == 0
    out = capsys.readouterr().out
    assert "removed 3 folders" in out
    for name, path in paths.items():
        assert path.exists() == (name not in expired), name

    assert main(["clean", "--older-than", "seven days"]) == 2
    assert "valid: a positive number with a unit" in capsys.readouterr().err


# ------------------------------------------------------------------------------ load


def _resources() -> dict:
    process = psutil.Process()
    return {
        "fds": process.num_fds(),
        "children": sorted(c.pid for c in process.children(recursive=True)),
        "tasks": set(asyncio.all_tasks()),
    }


def _nothing_new(before: dict) -> bool:
    """No task, file descriptor or process that was not there before."""
    now = _resources()
    return (
        now["tasks"] <= before["tasks"]
        and now["fds"] <= before["fds"]
        and now["children"] == before["children"]
    )


async def test_ten_concurrent_text_calls_complete_and_leak_nothing(service):
    await _call(service, "route=text&seed=100")  # everything a call starts lazily is up
    before = _resources()
    kinds = ["typical", "frustrated", "elderly", "hurried"] * 2 + ["typical", "frustrated"]
    results = await asyncio.gather(
        *(
            _call(service, f"route=text&seed={seed}&caller_type={kind}")
            for seed, kind in enumerate(kinds)
        )
    )
    assert len(results) == 10
    ids = set()
    for events in results:
        assert events[0]["type"] == "call.started"
        assert not [e for e in events if e["type"] == "error" or e.get("level") == "error"]
        assert events[-1]["type"] == "call.ended"
        assert events[-1]["status"] == "completed", events[-1]
        ids.add(events[0]["conversation_id"])
    assert len(ids) == 10
    assert service.app.state.manager.active == 0
    # Handlers and sockets wind down after the last close frame: wait for that, then check.
    await wait_for(lambda: _nothing_new(before), timeout_s=60)
    after = _resources()
    assert after["tasks"] <= before["tasks"]
    assert after["fds"] <= before["fds"]
    assert after["children"] == before["children"]
