"""The hosted (OpenAI GA) code path, run against a faithful fake that relays to our local server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import dualagent
from dualagent.realtime.local.server import LocalRealtimeServer
from tests.fake_openai import FakeOpenAIRealtime

KEY = "sk-test-fake-key-0123456789"


@pytest.fixture
def openai_env(monkeypatch):
    def point_at(fake: FakeOpenAIRealtime) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("DUALAGENT_OPENAI_URL", fake.url)

    return point_at


def files_mention(folder: Path, needle: str) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


async def test_openai_backend_speaks_ga_with_bearer_key_and_records_costs(
    local_server, tmp_path, openai_env
) -> None:
    async with FakeOpenAIRealtime(local_server.url, api_key=KEY) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", output_dir=tmp_path, conversation_id="hosted"
        )
    assert result.status == "completed", result.metadata.get("error")
    assert fake.models == ["gpt-realtime", "gpt-realtime"]
    update = next(e for e in fake.client_events if e["type"] == "session.update")["session"]
    assert update["type"] == "realtime"
    assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert (
        update["audio"]["input"]["turn_detection"] is None
    )  # explicit null: the bridge owns turns
    assert {t["speaker"] for t in result.turns} == {"caller", "cs"}
    assert result.metadata["models"] == {"caller": "gpt-realtime", "cs": "gpt-realtime"}
    assert result.metadata["usage"]["cs"]["output_tokens"] > 0
    assert result.metadata["estimated_cost_usd"]["total"] > 0
    assert files_mention(tmp_path, KEY) == []


async def test_realtime_pacing_is_the_default_for_hosted_backends(
    local_server, tmp_path, openai_env
) -> None:
    async with FakeOpenAIRealtime(local_server.url, api_key=KEY) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", max_turns=1, output_dir=tmp_path
        )
    assert result.metadata["pace"] == "realtime"
    greeting = result.turns[0]
    spoken_s = greeting["end_s"] - greeting["start_s"]
    # Audio was forwarded at speaking speed, so the call took at least as long as the greeting.
    assert result.metadata["wall_time_s"] >= spoken_s * 0.9


async def test_same_layout_on_local_on_a_second_server_and_on_the_hosted_path(
    local_server, tmp_path, openai_env
) -> None:
    async with (
        LocalRealtimeServer(warm=False) as second,
        FakeOpenAIRealtime(local_server.url, api_key=KEY) as fake,
    ):
        openai_env(fake)
        runs = {
            "local": await dualagent.simulate(
                "hurried", route="text", output_dir=tmp_path, conversation_id="local"
            ),
            "url": await dualagent.simulate(
                "hurried",
                route="text",
                cs_backend=second.url,
                cs_model="local-cs",  # a URL's server may serve anything: name its brain
                output_dir=tmp_path,
                conversation_id="url",
                local_server=local_server,
            ),
            "openai": await dualagent.simulate(
                "hurried",
                route="text",
                backend="openai",
                pace="fast",
                output_dir=tmp_path,
                conversation_id="openai",
            ),
        }
    layouts = {name: sorted(p.name for p in r.path.iterdir()) for name, r in runs.items()}
    assert layouts["local"] == layouts["url"] == layouts["openai"]
    assert all(r.status == "completed" for r in runs.values())
    assert runs["url"].metadata["backend"]["cs"] == second.url


@pytest.mark.parametrize(
    ("fault", "end_reason", "code"),
    [
        ("rate_limit", "service_error", "rate_limit_exceeded"),
        ("server_error", "response_failed", "server_error"),
        ("session_expired", "service_error", "session_expired"),
    ],
)
async def test_service_errors_end_the_call_cleanly(
    local_server, tmp_path, openai_env, fault, end_reason, code
) -> None:
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, fault=fault, fault_after=3
    ) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", route="text", output_dir=tmp_path
        )
    assert result.status == "error"
    assert result.end_reason == end_reason
    assert code in result.metadata["error"]
    metadata = json.loads((result.path / "call_metadata.json").read_text())
    assert metadata["status"] == "error" and metadata["ended_at"]
    assert files_mention(tmp_path, KEY) == []


async def test_dropped_connection_is_a_disconnect(local_server, tmp_path, openai_env) -> None:
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, fault="drop", fault_after=4
    ) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", route="text", output_dir=tmp_path
        )
    assert result.status == "error"
    assert result.end_reason.endswith("_disconnected")


async def test_transient_connect_failures_are_retried(local_server, tmp_path, openai_env) -> None:
    async with FakeOpenAIRealtime(local_server.url, api_key=KEY, fail_connects=2) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", route="text", output_dir=tmp_path
        )
    assert result.status == "completed"
    assert fake.handshakes == 4  # two refused with 503, then one per agent


async def test_a_wrong_key_fails_without_retrying_or_leaking_it(
    local_server, tmp_path, monkeypatch
) -> None:
    async with FakeOpenAIRealtime(local_server.url, api_key=KEY) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-999")
        monkeypatch.setenv("DUALAGENT_OPENAI_URL", fake.url)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", output_dir=tmp_path
        )
    assert result.status == "error"
    assert result.end_reason == "connection_failed"
    assert (
        "HTTP 401" in result.metadata["error"] and "check the API key" in result.metadata["error"]
    )
    assert fake.handshakes == 2  # once per agent: a 401 is final
    assert files_mention(tmp_path, "sk-wrong-key-999") == []


async def test_cli_reports_a_service_error_clearly(local_server, tmp_path) -> None:
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, fault="rate_limit", fault_after=2
    ) as fake:
        env = {**__import__("os").environ, "OPENAI_API_KEY": KEY, "DUALAGENT_OPENAI_URL": fake.url}
        proc = await __import__("asyncio").create_subprocess_exec(
            sys.executable, "-m", "dualagent", "run", "--backend", "openai", "--pace", "fast", "--route", "text",
            "--output-dir", str(tmp_path),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 1
    text = stdout.decode() + stderr.decode()
    assert "rate_limit_exceeded" in text
    assert KEY not in text
