"""The hosted (OpenAI GA) code path, run against a faithful fake that relays to our local server."""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

import dualagent
from dualagent.call.options import DEFAULT_TRANSCRIPTION_MODEL
from dualagent.call.plan import DEFAULT_OPENAI_MODEL
from dualagent.call.record import load_call
from dualagent.evaluation.pricing import estimate_cost_usd
from dualagent.realtime.client import (
    RealtimeConnectionError,
    RetryPolicy,
    connect_with_retry,
    parse_retry_after,
)
from dualagent.realtime.local.server import LocalRealtimeServer
from tests.fake_openai import FakeOpenAIRealtime

KEY = "sk-test-fake-key-0123456789"


@pytest.fixture
def openai_env(monkeypatch):
    def point_at(fake: FakeOpenAIRealtime) -> None:
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("DUALAGENT_OPENAI_URL", fake.url)

    return point_at


def assert_valid_ga_client_events(events: list[dict]) -> None:
    """Every client event validates strictly against the openai SDK's GA types, with no field
    the GA protocol does not define (the must-hold of the hosted path)."""
    from tests.test_sdk_compat import CLIENT_EVENTS, _unknown_fields

    assert events
    for event in events:
        model = CLIENT_EVENTS.validate_python(json.loads(json.dumps(event)), strict=True)
        assert not _unknown_fields(model), event


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
    assert fake.models == [DEFAULT_OPENAI_MODEL, DEFAULT_OPENAI_MODEL]
    update = next(e for e in fake.client_events if e["type"] == "session.update")["session"]
    assert update["type"] == "realtime"
    assert "model" not in update  # the URL names it; a GA session cannot change it
    assert_valid_ga_client_events(fake.client_events)
    assert update["audio"]["input"]["transcription"] == {"model": DEFAULT_TRANSCRIPTION_MODEL}
    # Nothing is asked of a model before both sessions are confirmed as configured.
    kinds = [e["type"] for e in fake.client_events]
    assert kinds.index("response.create") > kinds.index("session.update")
    assert update["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24000}
    assert (
        update["audio"]["input"]["turn_detection"] is None
    )  # explicit null: the bridge owns turns
    assert {t["speaker"] for t in result.turns} == {"caller", "cs"}
    assert result.metadata["models"] == {"caller": DEFAULT_OPENAI_MODEL, "cs": DEFAULT_OPENAI_MODEL}
    usage = result.metadata["usage"]
    assert usage["cs"]["output_tokens"] > 0
    assert usage["cs"]["transcription_seconds"] > 0  # the fake bills 1.5 s per transcription
    costs = result.metadata["estimated_cost_usd"]
    assert costs["cs"] == estimate_cost_usd(DEFAULT_OPENAI_MODEL, usage["cs"], "gpt-transcribe")
    assert costs["total"] == pytest.approx(costs["caller"] + costs["cs"])
    assert costs["cs"] > estimate_cost_usd(
        DEFAULT_OPENAI_MODEL, {**usage["cs"], "transcription_seconds": 0}, "gpt-transcribe"
    )
    events = load_call(result.path).events()
    assert any(e["type"] == "rate_limits.updated" for e in events)  # kept in the event log
    assert set(result.metadata["rate_limits"]) == {"caller", "cs"}
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


# ------------------------------------------------------------------------------ server answers


async def test_a_rejected_session_update_ends_the_call_before_any_response(
    local_server, tmp_path, openai_env
) -> None:
    async with FakeOpenAIRealtime(local_server.url, api_key=KEY, fault="session_rejected") as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", route="text", output_dir=tmp_path
        )
    assert (result.status, result.end_reason) == ("error", "session_rejected")
    assert "invalid_value" in result.metadata["error"]
    assert "response.create" not in [e["type"] for e in fake.client_events]
    assert result.turns == []


async def test_a_failed_transcription_is_marked_and_does_not_stall_the_call(
    local_server, tmp_path, openai_env
) -> None:
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, fault="transcription_failed", fault_after=1
    ) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "hurried",  # it may cut in: then cancel and truncate go out too
            backend="openai",
            pace="fast",
            max_turns=2,
            transcription_language="en",
            cs_noise_reduction="near_field",
            output_dir=tmp_path,
        )
    assert result.status == "completed", result.metadata.get("error")
    assert result.end_reason == "max_turns"  # not "stalled": nothing waited for the 60 s watchdog
    assert_valid_ga_client_events(fake.client_events)
    updates = [
        e["session"]["audio"]["input"] for e in fake.client_events if e["type"] == "session.update"
    ]
    assert {u["transcription"]["language"] for u in updates} == {"en"}
    assert [u.get("noise_reduction") for u in updates].count({"type": "near_field"}) == 1
    [failure] = result.metadata["transcription_failures"]
    assert "audio_unintelligible" in failure["error"]
    failed_turn = result.turns[failure["turn_index"]]
    assert failed_turn["heard"] is None and "audio_unintelligible" in failed_turn["heard_error"]


async def test_an_incomplete_response_is_recorded_with_its_reason(
    local_server, tmp_path, openai_env
) -> None:
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, fault="incomplete", fault_after=1
    ) as fake:
        openai_env(fake)
        result = await dualagent.simulate(
            "typical", backend="openai", pace="fast", route="text", max_turns=2, output_dir=tmp_path
        )
    assert result.status == "completed", result.metadata.get("error")
    [issue] = result.metadata["response_issues"]
    assert (issue["status"], issue["reason"]) == ("incomplete", "max_output_tokens")
    greeting = result.turns[0]
    assert greeting["response_status"] == "incomplete"
    assert greeting["response_reason"] == "max_output_tokens"


# ------------------------------------------------------------------------------ any provider

AZURE_KEY = "azure-SECRET-key-4242"


async def test_provider_headers_arrive_query_strings_are_kept_and_nothing_is_written(
    local_server, tmp_path, monkeypatch
) -> None:
    """Azure OpenAI style: ``api-key`` header, ``api-version`` and ``deployment`` in the URL."""
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, required_headers={"api-key": AZURE_KEY}
    ) as fake:
        url = f"{fake.url}?api-version=2025-08-28&deployment=my-realtime"
        monkeypatch.setenv(
            "DUALAGENT_CALLER_HEADERS", f"Authorization: Bearer {KEY}\napi-key: {AZURE_KEY}"
        )
        result = await dualagent.simulate(
            "typical",
            backend=url,
            caller_model="my-realtime",
            cs_model="my-realtime",
            cs_header=f"api-key: {AZURE_KEY}\nAuthorization: Bearer {KEY}",
            route="text",
            max_turns=2,
            output_dir=tmp_path,
        )
    assert result.status == "completed", result.metadata.get("error")
    assert [h.get("api-key") for h in fake.headers_seen] == [AZURE_KEY, AZURE_KEY]
    assert all(
        path.endswith("?api-version=2025-08-28&deployment=my-realtime") for path in fake.paths
    )
    assert result.metadata["backend"]["cs"] == url  # nothing secret in it
    # An unpriced deployment name: the cost is unknown, the token counts are kept.
    costs = result.metadata["estimated_cost_usd"]
    assert costs["total"] is None and costs["unknown"] == ["caller", "cs"]
    assert result.metadata["usage"]["cs"]["output_tokens"] > 0
    assert files_mention(tmp_path, AZURE_KEY) == [] and files_mention(tmp_path, KEY) == []


# ------------------------------------------------------------------------------ retries


async def test_connect_retries_wait_for_retry_after_with_jittered_backoff(local_server) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:  # counts the delays instead of waiting them
        slept.append(seconds)

    policy = RetryPolicy(attempts=4, base_delay_s=0.5, max_delay_s=4.0)
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, fail_connects=3, fail_status=429, retry_after="7"
    ) as fake:
        connection = await connect_with_retry(
            f"{fake.url}?model=gpt-realtime-2.1",
            headers={"Authorization": f"Bearer {KEY}"},
            policy=policy,
            rng=random.Random(1),
            sleep=sleep,
        )
        await connection.close()
    assert fake.handshakes == 4
    assert slept == [7.0, 7.0, 7.0]  # Retry-After wins over the (shorter) backoff


def test_backoff_is_jittered_exponential_and_capped() -> None:
    policy = RetryPolicy(attempts=8, base_delay_s=0.5, max_delay_s=4.0, max_retry_after_s=30.0)
    error = RealtimeConnectionError("HTTP 503", transient=True, status=503)
    rng = random.Random(3)
    delays = [policy.delay_s(n, error, rng) for n in range(6)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert len(set(delays)) == len(delays)  # jittered: no two calls retry in step
    again = random.Random(3)
    assert delays == [policy.delay_s(n, error, again) for n in range(6)]  # seeded: reproducible
    slow_down = RealtimeConnectionError("HTTP 429", transient=True, status=429, retry_after_s=90)
    assert policy.delay_s(0, slow_down, rng) == 30.0  # Retry-After, capped


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("12", now) == 12.0
    assert parse_retry_after("Fri, 27 Nov 2026 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_a_failed_connect_closes_the_other_agents_socket(local_server, tmp_path) -> None:
    async with (
        FakeOpenAIRealtime(local_server.url, api_key=KEY) as good,
        FakeOpenAIRealtime(local_server.url, api_key="sk-other-key-0000") as refusing,
    ):
        result = await dualagent.simulate(
            "typical",
            caller_backend=f"{good.url}?model=gpt-realtime-2.1",
            cs_backend=f"{refusing.url}?model=gpt-realtime-2.1",
            header=f"Authorization: Bearer {KEY}",
            route="text",
            output_dir=tmp_path,
        )
        assert good.handshakes == 1
        assert good.open_connections == 0 or await _all_closed(good)
    assert (result.status, result.end_reason) == ("error", "connection_failed")
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("connect-")]


async def _all_closed(fake: FakeOpenAIRealtime) -> bool:
    """Wait (event-driven, bounded) until the fake's handlers have seen their sockets close."""
    async with asyncio.timeout(5):
        while fake.open_connections:
            await asyncio.sleep(0.01)
    return True
