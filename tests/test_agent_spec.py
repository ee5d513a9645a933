"""Agent specs: loading and refusing specs, and the three tool implementations in real calls.

The HTTP tools are served by a real HTTP server on 127.0.0.1 (the standard library's), and the
calls run on the shared embedded server: what the tool answered must reach the agent and the
recording; a failing endpoint must give the agent an error result while the call goes on.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

import dualagent
from dualagent import bank
from dualagent.agent_spec import AgentSpecError, agent_from_dict, list_agents, load_agent
from dualagent.call.tools import Toolbox
from tests.test_e2e import run_cli

BANK_YAML = Path(dualagent.__file__).parent / "data" / "agents" / "bank.yaml"


def bank_spec_dict() -> dict[str, Any]:
    return yaml.safe_load(BANK_YAML.read_text())


def with_tool(spec: dict[str, Any], name: str, **implementation: Any) -> dict[str, Any]:
    """``spec`` with tool ``name``'s implementation replaced."""
    for tool in spec["tools"]:
        if tool["name"] == name:
            for key in ("python", "responses", "http"):
                tool.pop(key, None)
            tool.update(implementation)
    return spec


# ---------------------------------------------------------------------------- loading


def test_the_shipped_bank_spec_is_the_bank_agent() -> None:
    spec = load_agent("bank")
    assert "bank" in list_agents()
    # The YAML's schemas are the tools' pydantic models: they cannot drift apart.
    assert spec.session_tools() == bank.CS_TOOLS
    assert spec.ending_tools() == {
        "transfer_to_human": "transferred_to_human",
        "end_call": "hang_up",
    }
    assert {t.implementation for t in spec.tools} == {"python"}


def test_every_shipped_specs_tool_schemas_are_json_schemas() -> None:
    # Loading a shipped spec skips the metaschema check (it costs `dualagent run` a second of
    # its start); this is where they are checked. A spec from a file still is (below).
    from dualagent.agent_spec import check_json_schema

    for name in list_agents():
        for tool in load_agent(name).tools:
            check_json_schema(tool.parameters)
    with pytest.raises(ValueError, match="not a JSON schema"):
        check_json_schema({"type": 7})


def test_a_spec_can_be_a_path_or_a_python_object(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({**bank_spec_dict(), "name": "mine"}))
    assert load_agent(path).name == "mine"
    assert load_agent(str(path)).source == str(path)
    spec = load_agent("tests.test_agent_spec:PYTHON_SPEC")
    assert spec.name == "python-made" and spec.source == "tests.test_agent_spec:PYTHON_SPEC"


PYTHON_SPEC = agent_from_dict(
    {
        "name": "python-made",
        "instructions": "Answer questions about opening hours.",
        "tools": [
            {
                "name": "opening_hours",
                "responses": [{"result": {"ok": True, "hours": "nine to five"}}],
            }
        ],
    }
)


BAD_SPECS = [
    (
        {"tools": [{"name": "x", "rubbish": 1, "responses": []}]},
        "tools.0.rubbish: unknown field",
    ),
    ({"tools": [{"name": "x"}]}, "needs exactly one implementation"),
    (
        {"tools": [{"name": "x", "http": "http://127.0.0.1:1/x", "responses": []}]},
        "(got responses, http)",
    ),
    (
        {"tools": [{"name": "x", "python": "no_such_module_here:fn"}]},
        "tools.0: python: cannot import 'no_such_module_here'",
    ),
    (
        {"tools": [{"name": "x", "python": "json:no_such_function"}]},
        "module 'json' has no 'no_such_function'",
    ),
    (
        {"tools": [{"name": "x", "responses": [], "parameters": {"type": 7}}]},
        "tools.0.parameters: not a JSON schema",
    ),
    (
        {
            "tools": [
                {
                    "name": "x",
                    "responses": [],
                    "parameters": {"type": "object", "properties": {}, "required": ["day"]},
                }
            ]
        },
        "required names undeclared properties: day",
    ),
    ({"tools": [{"name": "x", "http": "ftp://example"}]}, "is not an http:// or https:// URL"),
    ({"turn_detection": {"type": "vad"}}, "turn_detection.type"),
    ({"turn_detection": {"type": "none", "threshold": 0.5}}, "only apply to type server_vad"),
    ({"state": "nowhere_module:make"}, "state: cannot import 'nowhere_module'"),
    ({"instructions": None}, "instructions"),
]


@pytest.mark.parametrize(("change", "needle"), BAD_SPECS, ids=[n for _, n in BAD_SPECS])
def test_a_bad_spec_is_refused_with_one_line_naming_the_field(
    change: dict[str, Any], needle: str
) -> None:
    data = {"name": "bad", "instructions": "Be helpful.", **change}
    with pytest.raises(AgentSpecError) as info:
        agent_from_dict(data, source="bad.yaml")
    message = str(info.value)
    assert needle in message
    assert message.startswith("bad.yaml: ") and "\n" not in message


def test_an_unknown_agent_name_lists_the_shipped_ones() -> None:
    with pytest.raises(AgentSpecError, match="valid choices: bank"):
        load_agent("pizzeria")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("tools:\n  - name: x\n    python: no_such_module_here:fn\n", "cannot import"),
        ("name: [unclosed\n", "not valid YAML"),
        ("tools:\n  - name: x\n    carrier_pigeon: yes\n", "tools.0.carrier_pigeon"),
    ],
)
def test_run_with_a_bad_spec_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, content: str, needle: str
) -> None:
    spec = tmp_path / "agent.yaml"
    spec.write_text("name: bad\ninstructions: Be helpful.\n" + content)
    out = tmp_path / "calls"
    proc = run_cli("run", "--agent", str(spec), "--output-dir", str(out), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert not out.exists()


def test_run_with_an_unknown_agent_exits_2_naming_the_choices(tmp_path: Path) -> None:
    proc = run_cli("run", "--agent", "pizzeria", "--output-dir", str(tmp_path / "c"), cwd=tmp_path)
    assert proc.returncode == 2
    assert "unknown agent 'pizzeria'; valid choices: bank" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_dualagent_agents_lists_the_shipped_specs(tmp_path: Path) -> None:
    proc = run_cli("agents", cwd=tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.startswith("bank ")
    assert "verify_customer" in proc.stdout


# ---------------------------------------------------------------------------- the toolbox


def _spec_with(tool: dict[str, Any], state: str | None = None) -> Any:
    data = {"name": "t", "instructions": "Help.", "tools": [tool]}
    if state:
        data["state"] = state
    return agent_from_dict(data)


def counter_state(data: Any) -> dict[str, Any]:
    return {"count": (data or {}).get("start", 0)}


def increment(arguments: dict[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    state["count"] += int(arguments.get("by", 1))
    return {"ok": True, "count": state["count"]}


async def async_echo(arguments: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"ok": True, "echo": arguments}


async def test_python_tools_get_the_arguments_and_the_calls_state() -> None:
    spec = _spec_with(
        {"name": "increment", "python": "tests.test_agent_spec:increment"},
        state="tests.test_agent_spec:counter_state",
    )
    toolbox = Toolbox(spec, spec.new_state({"start": 5}))
    assert await toolbox("cs", "increment", '{"by": 2}') == {"ok": True, "count": 7}
    assert await toolbox("cs", "increment", "") == {"ok": True, "count": 8}
    assert toolbox.snapshot() == {"count": 8}
    echo = Toolbox(_spec_with({"name": "echo", "python": "tests.test_agent_spec:async_echo"}))
    assert await echo("cs", "echo", '{"a": 1}') == {"ok": True, "echo": {"a": 1}}


async def test_canned_responses_match_the_arguments_first_match_wins() -> None:
    spec = _spec_with(
        {
            "name": "find_slots",
            "parameters": {
                "type": "object",
                "properties": {"day": {"type": "string"}},
                "required": ["day"],
            },
            "responses": [
                {"when": {"day": "monday"}, "result": {"slots": ["nine"]}},
                {"when": {"day": "Tuesday"}, "result": {"slots": []}},
            ],
        }
    )
    toolbox = Toolbox(spec)
    assert await toolbox("cs", "find_slots", '{"day": "Monday morning"}') == {"slots": ["nine"]}
    assert await toolbox("cs", "find_slots", '{"day": "tuesday"}') == {"slots": []}
    miss = await toolbox("cs", "find_slots", '{"day": "Sunday"}')
    assert miss["ok"] is False and "no canned response matches" in miss["error"]
    bad = await toolbox("cs", "find_slots", '{"day": 3}')
    assert bad["ok"] is False and "day: 3 is not of type 'string'" in bad["error"]
    missing = await toolbox("cs", "find_slots", "{}")
    assert "'day' is a required property" in missing["error"]
    unknown = await toolbox("cs", "fly", "{}")
    assert unknown == {"ok": False, "error": "unknown tool 'fly'; valid tools: find_slots"}
    junk = await toolbox("cs", "find_slots", "{not json")
    assert "not valid JSON" in junk["error"]


async def test_a_python_tool_that_raises_becomes_an_error_result() -> None:
    spec = _spec_with({"name": "boom", "python": "json:loads"})
    output = await Toolbox(spec)("cs", "boom", "{}")
    assert output["ok"] is False and output["error"].startswith("boom: TypeError")


# ---------------------------------------------------------------------------- http tools

TRANSACTIONS = {
    "ok": True,
    "customer_id": "CUST-1001",
    "transactions": [
        {
            "transaction_id": "TX-HTTP-1",
            "account_id": "ACC-1",
            "date": "2026-11-20",
            "merchant": "Blue Lake Bakery",
            "amount": -12.5,
            "status": "posted",
        }
    ],
    "more_available": False,
}


class _Handler(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, Any, str | None]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"null")
        _Handler.received.append((self.path, body, self.headers.get("X-Api-Key")))
        if self.path == "/slow":
            time.sleep(1.5)
        if self.path == "/fail":
            self._answer(500, b'{"detail": "database is down"}')
        elif self.path == "/notjson":
            self._answer(200, b"<html>hello</html>")
        else:
            self._answer(200, json.dumps(TRANSACTIONS).encode())

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # quiet
        pass


@pytest.fixture(scope="module")
def tool_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_http_tools_post_the_arguments_and_use_the_answer(
    tool_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOOL_KEY_FOR_TEST", "s3cret-key")
    spec = _spec_with(
        {
            "name": "lookup",
            "http": f"{tool_server}/lookup",
            "headers": {"X-Api-Key": "${TOOL_KEY_FOR_TEST}"},
        }
    )
    _Handler.received.clear()
    output = await Toolbox(spec)("cs", "lookup", '{"customer_id": "CUST-1001"}')
    assert output == TRANSACTIONS
    assert _Handler.received == [("/lookup", {"customer_id": "CUST-1001"}, "s3cret-key")]
    assert "s3cret-key" not in json.dumps(spec.describe())


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/fail", 'answered HTTP 500: {"detail": "database is down"}'),
        ("/notjson", "is not JSON"),
        ("/slow", "did not answer within 0.3 s"),
    ],
)
async def test_a_failing_endpoint_is_the_tools_error_result(
    tool_server: str, path: str, needle: str
) -> None:
    spec = _spec_with({"name": "lookup", "http": f"{tool_server}{path}", "timeout_s": 0.3})
    output = await Toolbox(spec)("cs", "lookup", "{}")
    assert output["ok"] is False and needle in output["error"]


async def test_an_unreachable_endpoint_is_the_tools_error_result() -> None:
    spec = _spec_with({"name": "lookup", "http": "http://127.0.0.1:9/x", "timeout_s": 2})
    output = await Toolbox(spec)("cs", "lookup", "{}")
    assert output["ok"] is False and "cannot reach http://127.0.0.1:9/x" in output["error"]


async def test_an_http_tools_answer_reaches_the_agent_in_a_call(
    local_server, tool_server: str, tmp_path: Path
) -> None:
    """The bank agent with its transaction history behind an HTTP endpoint: the endpoint's
    transactions are what the agent reads out, and what the recording keeps."""
    spec = with_tool(
        bank_spec_dict(), "get_recent_transactions", http=f"{tool_server}/transactions"
    )
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(spec))
    result = await dualagent.simulate(
        "typical",
        agent=str(tmp_path / "agent.yaml"),
        route="text",
        output_dir=tmp_path,
        conversation_id="http",
        local_server=local_server,
    )
    calls = json.loads((tmp_path / "http" / "function_calls.json").read_text())["calls"]
    http_calls = [c for c in calls if c["name"] == "get_recent_transactions"]
    assert http_calls and http_calls[0]["output"] == TRANSACTIONS
    said = " ".join(t["text"] for t in result.turns if t["speaker"] == "cs")
    assert "Blue Lake Bakery" in said
    described = {t["name"]: t for t in result.metadata["agent"]["tools"]}
    assert described["get_recent_transactions"]["implementation"] == "http"


async def test_a_failing_endpoint_in_a_call_gives_the_agent_an_error_and_the_call_goes_on(
    local_server, tool_server: str, tmp_path: Path
) -> None:
    spec = with_tool(bank_spec_dict(), "get_recent_transactions", http=f"{tool_server}/fail")
    (tmp_path / "agent.yaml").write_text(yaml.safe_dump(spec))
    result = await dualagent.simulate(
        "typical",
        agent=str(tmp_path / "agent.yaml"),
        route="text",
        output_dir=tmp_path,
        conversation_id="fail",
        local_server=local_server,
    )
    assert result.status == "completed"
    calls = json.loads((tmp_path / "fail" / "function_calls.json").read_text())["calls"]
    failed = [c for c in calls if c["name"] == "get_recent_transactions"]
    assert failed and failed[0]["ok"] is False
    assert "answered HTTP 500" in failed[0]["output"]["error"]
    names = [c["name"] for c in calls]
    assert names.index("get_recent_transactions") < len(names) - 1  # the call went on after it
