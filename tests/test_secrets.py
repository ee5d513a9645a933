"""No key ever leaks: with DEBUG on for every logger, hosted calls against the fake service with
recognisable credentials leave them in no log record, printed line, written file or exception.

The websockets library logs the request line and every request header at DEBUG; without the
redacting logger of :mod:`dualagent.realtime.redact` the bearer key is in the log (the last
test turns redaction off to show the scan would catch it).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

import dualagent
from dualagent import batch
from dualagent.call.options import CallOptions
from dualagent.realtime import client
from dualagent.realtime.client import RealtimeConnection, RealtimeConnectionError
from dualagent.realtime.redact import redact_text, redact_url
from tests.fake_openai import FakeOpenAIRealtime

KEY = "sk-test-SCANME-9f8e7d6c5b4a"
PROVIDER_TOKEN = "tok-SCANME-provider-31337"
QUERY_SECRET = "qs-SCANME-query-2718"
URL_PASSWORD = "pw-SCANME-url-1414"
SECRETS = [
    KEY,
    PROVIDER_TOKEN,
    QUERY_SECRET,
    URL_PASSWORD,
    base64.b64encode(f"scan:{URL_PASSWORD}".encode()).decode(),  # HTTP Basic of the URL's user
]


class Collect(logging.Handler):
    """Every record, formatted with its traceback, at any level."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.format(record))
        self.texts.append(repr(record.args))
        self.texts.append(str(record.msg))


@pytest.fixture
def debug_everywhere(caplog):
    """DEBUG on the root and on every logger that exists, a handler on the root, and caplog."""
    root = logging.getLogger()
    handler = Collect()
    saved = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    saved_root = root.level
    root.setLevel(logging.DEBUG)
    for name in saved:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def found_in(texts: list[str]) -> list[str]:
    return [s for s in SECRETS if any(s in t for t in texts)]


def written_texts(folder: Path) -> list[str]:
    return [p.read_bytes().decode("utf-8", "replace") for p in folder.rglob("*") if p.is_file()]


def exception_texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


async def hosted_calls(local_server, tmp_path: Path, monkeypatch) -> list[str]:
    """Hosted calls with every kind of credential; returns what they raised or reported."""
    reported: list[str] = []
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, required_headers={"x-provider-token": PROVIDER_TOKEN}
    ) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
        monkeypatch.setenv("DUALAGENT_OPENAI_URL", f"{fake.url}?{'api-key'}={QUERY_SECRET}")
        monkeypatch.setenv("DUALAGENT_CALLER_HEADERS", f"x-provider-token: {PROVIDER_TOKEN}")
        ok = await dualagent.simulate(
            "typical",
            backend="openai",
            cs_header=f"x-provider-token: {PROVIDER_TOKEN}",
            pace="fast",
            max_turns=2,
            output_dir=tmp_path,
            conversation_id="hosted",
        )
        assert ok.status == "completed", ok.metadata.get("error")
        assert [h.get("x-provider-token") for h in fake.headers_seen] == [PROVIDER_TOKEN] * 2

        # A refused header (HTTP 401) and a rate-limited connect (HTTP 429, Retry-After).
        refused = await dualagent.simulate(
            "typical",
            backend="openai",
            route="text",
            output_dir=tmp_path,
            conversation_id="refused",
        )  # the caller's env header arrives, the agent's does not (no cs_header)
        assert refused.end_reason == "connection_failed"
        reported.append(refused.metadata["error"])

        # A malformed custom URL with a user:password@ and an ?api-key= query.
        bad_port = f"ws://scan:{URL_PASSWORD}@127.0.0.1:notaport/v1/realtime?api-key={QUERY_SECRET}"
        malformed = await dualagent.simulate(
            "typical", cs_backend=bad_port, route="text", output_dir=tmp_path,
            conversation_id="malformed",
        )  # fmt: skip
        assert malformed.end_reason == "connection_failed"
        metadata = json.loads((malformed.path / "call_metadata.json").read_text())
        assert found_in([json.dumps(metadata)]) == []
        assert metadata["backend"]["cs"].startswith("ws://")
        reported.append(metadata["error"])

        # The same user:password@ and query on a URL that parses: HTTP Basic goes out too.
        refused_url = (
            f"ws://scan:{URL_PASSWORD}@127.0.0.1:{fake.port}/v1/realtime?api-key={QUERY_SECRET}"
        )
        basic = await dualagent.simulate(
            "typical", cs_backend=refused_url, route="text", output_dir=tmp_path,
            conversation_id="basic",
        )  # fmt: skip
        assert basic.end_reason == "connection_failed"
        assert redact_url(refused_url) in basic.metadata["backend"]["cs"]
        reported.append(basic.metadata["error"])

        for url in (bad_port, refused_url, "http://scan:" + URL_PASSWORD + "@x/?token=" + KEY):
            with pytest.raises(RealtimeConnectionError) as info:
                await RealtimeConnection.connect(url, headers={"Authorization": f"Bearer {KEY}"})
            reported += exception_texts(info.value)

        # A batch with headers: batch.json and the manifest hold none.
        result = await batch.run(
            caller_types=["typical"],
            backend="openai",
            header=f"x-provider-token: {PROVIDER_TOKEN}",
            route="text",
            max_turns=2,
            output_dir=tmp_path / "batches",
            progress=False,
            local_server=local_server,
        )
        assert result.errors == 0
    reported.append(repr(CallOptions.build(cs_header=f"api-key: {PROVIDER_TOKEN}")))
    reported.append(CallOptions.build(header=f"api-key: {PROVIDER_TOKEN}").model_dump_json())
    return reported


async def test_no_credential_reaches_a_log_a_file_an_exception_or_the_terminal(
    local_server, tmp_path, monkeypatch, debug_everywhere, caplog, capfd
) -> None:
    reported = await hosted_calls(local_server, tmp_path, monkeypatch)
    out, err = capfd.readouterr()
    assert debug_everywhere.texts, "DEBUG records were captured"
    assert any("GET /v1/realtime" in t for t in debug_everywhere.texts)  # the request line
    assert found_in(debug_everywhere.texts) == []
    assert found_in([caplog.text, *(r.getMessage() for r in caplog.records)]) == []
    assert found_in([out, err]) == []
    assert found_in(written_texts(tmp_path)) == []
    assert found_in(reported) == []


async def test_the_cli_at_debug_prints_no_key(local_server, tmp_path) -> None:
    async with FakeOpenAIRealtime(
        local_server.url, api_key=KEY, required_headers={"x-provider-token": PROVIDER_TOKEN}
    ) as fake:
        env = {
            **os.environ,
            "OPENAI_API_KEY": KEY,
            "DUALAGENT_OPENAI_URL": fake.url,
            "DUALAGENT_HEADERS": f"x-provider-token: {PROVIDER_TOKEN}",
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dualagent", "--log-level", "DEBUG", "run",
            "--backend", "openai", "--pace", "fast", "--route", "text", "--max-turns", "2",
            "--output-dir", str(tmp_path),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await proc.communicate()
    text = stdout.decode() + stderr.decode()
    assert proc.returncode == 0, text
    assert "GET /v1/realtime" in text  # DEBUG was on: websockets logged the handshake
    assert found_in([text]) == []
    assert found_in(written_texts(tmp_path)) == []


async def test_the_scan_catches_a_key_when_redaction_is_off(
    local_server, tmp_path, monkeypatch, debug_everywhere
) -> None:
    """The scan is not vacuous: the library's own DEBUG records carry the bearer key."""

    class PassThrough(logging.LoggerAdapter):
        def __init__(self, logger, secrets=()) -> None:
            super().__init__(logger, {})

        def redact(self, text: str) -> str:
            return text

    monkeypatch.setattr(client, "RedactingLogger", PassThrough)
    async with FakeOpenAIRealtime(local_server.url, api_key=KEY) as fake:
        connection = await RealtimeConnection.connect(
            f"{fake.url}?model=gpt-realtime-2.1", headers={"Authorization": f"Bearer {KEY}"}
        )
        await connection.close()
    assert KEY in found_in(debug_everywhere.texts)


def test_redaction_of_urls_headers_and_text() -> None:
    assert redact_url(f"wss://u:{URL_PASSWORD}@h.example/x?api-key={QUERY_SECRET}&v=1") == (
        "wss://h.example/x?api-key=[redacted]&v=1"
    )
    assert QUERY_SECRET not in redact_url(f"ws://[::1/x?token={QUERY_SECRET}")
    line = f"> Authorization: Bearer {KEY}"
    assert redact_text(line) == "> Authorization: [redacted]"
    assert redact_text(f"> api-key: {PROVIDER_TOKEN}") == "> api-key: [redacted]"
    assert redact_text("> Host: api.openai.com") == "> Host: api.openai.com"
    assert PROVIDER_TOKEN not in redact_text(f"odd place {PROVIDER_TOKEN}", [PROVIDER_TOKEN])
    assert KEY not in redact_text(f"key={KEY} in prose: {KEY}")


async def test_the_embedded_server_logs_no_header_a_client_sends(local_server, caplog) -> None:
    """A client may point at `dualagent local-server` with its usual auth header: the server's
    DEBUG request log must not keep it."""
    with caplog.at_level(logging.DEBUG):
        connection = await RealtimeConnection.connect(
            local_server.url + "?model=local-cs", headers={"Authorization": f"Bearer {KEY}"}
        )
        await connection.close()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "GET /v1/realtime" in logged  # the server did log the request...
    assert KEY not in logged  # ...without the key
