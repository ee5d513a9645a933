"""What a Realtime server answers that the call core must check or count (no I/O).

- :func:`session_mismatches`: does ``session.updated`` hold what our ``session.update`` asked
  (instructions, tools, voice, output modality, the turn detection asked: none, or the agent's
  own VAD)? A hosted service that refused part of it would otherwise run the call on its
  defaults (server VAD on, no tools) and produce a recording that looks valid and tests nothing.
- :func:`session_report`: the session a server reported last, and for each of its settings
  whether it is the value we asked for (``ours``) or the server's own (``server``): a kept
  session (``agent_session="keep"``) is all the server's.
- :func:`add_response_usage` and :func:`add_transcription_usage`: the token counts of
  ``response.done`` and of input transcriptions, summed per agent as flat keys
  (``input_audio_tokens``, ``input_cached_text_tokens``, ``transcription_seconds``...), which
  :mod:`dualagent.evaluation.pricing` prices.
- :func:`response_issue`: a response that ended ``incomplete`` (token limit, content filter)
  or was cancelled by the server, with its reason.
"""

from __future__ import annotations

from typing import Any

from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev


def session_mismatches(asked: p.SessionConfig, echoed: dict[str, Any]) -> list[str]:
    """The settings of ``asked`` that the server's ``session.updated`` echo contradicts.

    Only what the echo states is compared (a lenient server may leave fields out).
    """
    problems: list[str] = []
    wanted = asked.dump()
    for key in ("instructions", "output_modalities"):
        if key in echoed and key in wanted and echoed[key] != wanted[key]:
            problems.append(key)
    audio = echoed.get("audio") if isinstance(echoed.get("audio"), dict) else {}
    audio_in = audio.get("input") if isinstance(audio.get("input"), dict) else {}
    audio_out = audio.get("output") if isinstance(audio.get("output"), dict) else {}
    asked_vad = ((wanted.get("audio") or {}).get("input") or {}).get("turn_detection")
    echoed_vad = audio_in.get("turn_detection")
    if asked_vad is None and echoed_vad is not None:
        problems.append("audio.input.turn_detection (server VAD is on)")
    elif asked_vad is not None and "turn_detection" in audio_in:
        kind = echoed_vad.get("type") if isinstance(echoed_vad, dict) else None
        if kind != asked_vad.get("type"):
            problems.append(f"audio.input.turn_detection ({asked_vad.get('type')} is not on)")
    voice = (wanted.get("audio") or {}).get("output", {}).get("voice")
    if voice and "voice" in audio_out and audio_out["voice"] != voice:
        problems.append("audio.output.voice")
    if "tools" in echoed and isinstance(echoed["tools"], list):
        names = {t.get("name") for t in echoed["tools"] if isinstance(t, dict)}
        if names != {t.name for t in asked.tools or []}:
            problems.append("tools")
    return problems


IDENTITY_KEYS = frozenset({"id", "object", "expires_at", "client_secret"})
"""Keys of a reported session that are not settings (and a secret that is never recorded)."""


def session_report(
    asked: p.SessionConfig | None, reported: dict[str, Any] | None, reported_by: str | None
) -> dict[str, Any] | None:
    """The session the server ``reported`` last (by ``session.created`` or ``session.updated``)
    and the ``source`` of each of its settings, by dotted path (``audio.input.turn_detection.
    type``): ``ours`` when it holds the value we ``asked`` for, else ``server`` (its default,
    or its own configuration when we asked nothing). None before any report."""
    if reported is None:
        return None
    session = {k: v for k, v in reported.items() if k != "client_secret"}
    ours = _leaves(asked.model_copy(update={"model": None}).dump()) if asked is not None else {}
    source = {
        path: "ours" if path in ours and ours[path] == value else "server"
        for path, value in _leaves(session).items()
        if path.split(".")[0] not in IDENTITY_KEYS
    }
    return {"reported_by": reported_by, "session": session, "source": source}


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [..]}`` -> ``{"a.b": 1, "c": [..]}`` (lists are one value)."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_leaves(value, path + "."))
        else:
            out[path] = value
    return out


def add_response_usage(total: dict[str, int], usage: ev.Usage) -> None:
    """Add one ``response.done`` usage block to ``total`` (flat keys).

    ``input_token_details.cached_tokens_details`` becomes ``input_cached_text_tokens`` and
    ``input_cached_audio_tokens``, so cached text and cached audio can be priced apart.
    """
    data = usage.model_dump(exclude_none=True)
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        _add(total, key, data.get(key))
    for group in ("input_token_details", "output_token_details"):
        prefix = group.split("_")[0]
        for key, value in (data.get(group) or {}).items():
            if key == "cached_tokens_details" and isinstance(value, dict):
                for kind, count in value.items():
                    _add(total, f"input_cached_{kind}", count)
            else:
                _add(total, f"{prefix}_{key}", value)


def add_transcription_usage(total: dict[str, int | float], usage: dict[str, Any] | None) -> None:
    """Add the usage of one input transcription (tokens, or seconds of audio) to ``total``."""
    if not isinstance(usage, dict):
        return
    if usage.get("type") == "duration" or "seconds" in usage:
        _add(total, "transcription_seconds", usage.get("seconds"))
        return
    _add(total, "transcription_input_tokens", usage.get("input_tokens"))
    _add(total, "transcription_output_tokens", usage.get("output_tokens"))
    for kind, count in (usage.get("input_token_details") or {}).items():
        _add(total, f"transcription_input_{kind}", count)


def response_issue(agent: str, response: ev.Response) -> dict[str, Any] | None:
    """What went wrong with a response that did not complete (None if it completed)."""
    if response.status in (None, "completed", "in_progress", "failed"):
        return None  # failed responses end the call (see CallCore)
    details = response.status_details
    reason = (details.reason if details else None) or (details.type if details else None)
    return {
        "agent": agent,
        "response_id": response.id,
        "status": response.status,
        "reason": reason or "unknown",
    }


RETRYABLE_ERROR_CODES = frozenset({"rate_limit_exceeded", "server_error", "overloaded"})
"""Server errors that say "try again later" (a batch may re-run the call)."""


def worth_retrying(errors: list[dict[str, Any]]) -> bool:
    """Whether the servers' errors of a failed call were of the passing kind (rate limit,
    server error), so running the call again later may succeed."""
    return any(
        e.get("code") in RETRYABLE_ERROR_CODES or e.get("type") == "server_error" for e in errors
    )


def _add(total: dict[str, Any], key: str, value: Any) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        total[key] = total.get(key, 0) + value
