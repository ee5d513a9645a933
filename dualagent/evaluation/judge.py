"""Optional LLM judge: a language model reads the transcript and grades each criterion.

Off by default and never needed: the rule-based checks (:mod:`dualagent.evaluation.checks`)
decide the outcome (:mod:`dualagent.evaluation.outcome`). The judge adds a second opinion
(``call_metadata.json["llm_judge"]``) when asked for (``simulate(..., llm_judge=True)`` or
``DUALAGENT_LLM_JUDGE=1``) and ``OPENAI_API_KEY`` is set.
Its client is injectable, so it is tested without the hosted service.
"""

from __future__ import annotations

import json
import os
from typing import Any, Protocol

DEFAULT_JUDGE_MODEL = "gpt-4o-mini"

_SYSTEM = (
    "You grade a recorded phone call between a caller and the agent that answered the line "
    "(cs). For each criterion, answer whether the call meets it, with one sentence of "
    'evidence quoted from the transcript. Reply with JSON: {"criteria": [{"name": ..., '
    '"passed": true|false, "evidence": ...}], "summary": ...}.'
)


class ChatClient(Protocol):
    """The part of ``openai.OpenAI`` the judge uses."""

    chat: Any


def judge_enabled(requested: bool | None) -> bool:
    """Whether to run the judge: asked for (or DUALAGENT_LLM_JUDGE=1) and a key is set."""
    wanted = requested if requested is not None else os.environ.get("DUALAGENT_LLM_JUDGE") == "1"
    return bool(wanted and os.environ.get("OPENAI_API_KEY"))


def judge_call(
    turns: list[dict[str, Any]],
    criteria: list[str],
    *,
    client: ChatClient | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Ask the model to grade ``criteria`` against the transcript; errors are returned as data."""
    model = model or os.environ.get("DUALAGENT_JUDGE_MODEL", DEFAULT_JUDGE_MODEL)
    transcript = "\n".join(f"{t['speaker']}: {t['text']}" for t in turns)
    prompt = (
        "Criteria:\n" + "\n".join(f"- {c}" for c in criteria) + "\n\nTranscript:\n" + transcript
    )
    try:
        if client is None:
            from openai import OpenAI  # optional: installed with the test extra

            client = OpenAI()
        response = client.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": _SYSTEM}, {"role": "user", "content": prompt}],
            response_format={"type": "json_object"},
            temperature=0,
        )
        verdict = json.loads(response.choices[0].message.content or "{}")
    except Exception as exc:  # the judge is advisory: a failure must not fail the call
        return {"model": model, "error": f"{type(exc).__name__}: {exc}"}
    graded = [c for c in verdict.get("criteria", []) if isinstance(c, dict)]
    return {
        "model": model,
        "criteria": graded,
        "passed": bool(graded) and all(c.get("passed") is True for c in graded),
        "summary": verdict.get("summary"),
    }
