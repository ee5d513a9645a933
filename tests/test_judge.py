"""The optional LLM judge, with a stand-in chat client (the hosted service is not reachable)."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace

import dualagent
from dualagent.evaluation import judge


class FakeChat:
    """Answers like the chat completions API; records what it was asked."""

    def __init__(self, content: str) -> None:
        self.content = content
        self.requests: list[dict] = []
        self.completions = self

    def create(self, **request):
        self.requests.append(request)
        message = SimpleNamespace(content=self.content)
        return SimpleNamespace(choices=[SimpleNamespace(message=message)])


TURNS = [
    {"speaker": "cs", "text": "Your replacement card has been ordered."},
    {"speaker": "caller", "text": "Thank you, goodbye."},
]


def test_judge_grades_each_criterion_from_the_transcript() -> None:
    answer = {
        "criteria": [{"name": "card replacement confirmed", "passed": True, "evidence": "ordered"}],
        "summary": "ok",
    }
    chat = FakeChat(json.dumps(answer))
    verdict = judge.judge_call(
        TURNS, ["card replacement confirmed"], client=SimpleNamespace(chat=chat), model="m"
    )
    assert verdict["passed"] is True and verdict["criteria"][0]["evidence"] == "ordered"
    prompt = chat.requests[0]["messages"][1]["content"]
    assert (
        "card replacement confirmed" in prompt
        and "cs: Your replacement card has been ordered." in prompt
    )
    assert chat.requests[0]["response_format"] == {"type": "json_object"}


def test_a_failing_criterion_or_a_broken_answer_is_reported_not_raised() -> None:
    failing = {"criteria": [{"name": "x", "passed": False, "evidence": "never said"}]}
    verdict = judge.judge_call(
        TURNS, ["x"], client=SimpleNamespace(chat=FakeChat(json.dumps(failing)))
    )
    assert verdict["passed"] is False
    broken = judge.judge_call(TURNS, ["x"], client=SimpleNamespace(chat=FakeChat("not json")))
    assert "JSONDecodeError" in broken["error"]


def test_judge_is_off_without_a_key_or_a_request(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert judge.judge_enabled(True) is False
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.delenv("DUALAGENT_LLM_JUDGE", raising=False)
    assert judge.judge_enabled(None) is False
    assert judge.judge_enabled(True) is True


async def test_simulate_records_the_judges_opinion_when_asked(
    local_server, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    seen: list[list[str]] = []

    def fake_judge(turns, criteria, **kwargs):
        seen.append(criteria)
        return {"model": "fake", "criteria": [], "passed": False, "summary": f"{len(turns)} turns"}

    # The package exports the simulate() function under the module's name: reach the module.
    monkeypatch.setattr(
        importlib.import_module("dualagent.call.simulate"), "judge_call", fake_judge
    )
    result = await dualagent.simulate(
        "typical", route="text", llm_judge=True, output_dir=tmp_path, local_server=local_server
    )
    assert seen and "card replacement confirmed" in seen[0]
    assert result.metadata["llm_judge"]["model"] == "fake"
    plain = await dualagent.simulate(
        "typical", route="text", output_dir=tmp_path, local_server=local_server
    )
    assert "llm_judge" not in plain.metadata
