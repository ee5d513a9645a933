"""Estimated cost of a call on hosted Realtime models, from the usage the servers reported.

Prices are data: :data:`PRICES` maps a model name to USD per million tokens of each kind (or
USD per minute of audio, for transcription models billed by duration), as OpenAI published
them (checked 2026-11-27 on the model pages of developers.openai.com). They change: override
or extend the table with ``DUALAGENT_PRICES_JSON`` (same shape, merged per model).

Matching is exact: a model is priced by its own entry, or by the entry it is a dated snapshot
of (``gpt-realtime-2025-08-28`` -> ``gpt-realtime``); ``gpt-realtime-mini`` never gets
``gpt-realtime``'s prices. A model with no entry has cost ``None`` ("unknown"); its token counts
stay in the recording's ``usage``.

The usage is what :mod:`dualagent.call.answers` sums per agent: ``input_text_tokens``,
``input_audio_tokens``, ``input_image_tokens``, ``input_cached_tokens`` with its split
``input_cached_text_tokens`` / ``input_cached_audio_tokens`` / ``input_cached_image_tokens``,
``output_text_tokens``, ``output_audio_tokens``, and the input transcription's
``transcription_*`` counts (tokens, or ``transcription_seconds``). Cached tokens are part of
the input counts: they are billed at the cached rate instead of the full one. Local models
cost nothing.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

# Price names: (input, cached input, output) per modality, per 1M tokens; "per_minute" for
# models billed by audio duration.
_REALTIME = {
    "input_text": 4.0,
    "cached_text": 0.4,
    "output_text": 16.0,
    "input_audio": 32.0,
    "cached_audio": 0.4,
    "output_audio": 64.0,
    "input_image": 5.0,
    "cached_image": 0.5,
}
_REALTIME_2 = {**_REALTIME, "output_text": 24.0}
_REALTIME_MINI = {
    "input_text": 0.6,
    "cached_text": 0.06,
    "output_text": 2.4,
    "input_audio": 10.0,
    "cached_audio": 0.3,
    "output_audio": 20.0,
    "input_image": 0.8,
    "cached_image": 0.08,
}

PRICES: dict[str, dict[str, float]] = {
    # Realtime models (USD per 1M tokens)
    "gpt-realtime-2.1": _REALTIME_2,
    "gpt-realtime-2": _REALTIME_2,
    "gpt-realtime-1.5": _REALTIME,
    "gpt-realtime": _REALTIME,
    "gpt-realtime-2.1-mini": _REALTIME_MINI,
    "gpt-realtime-mini": _REALTIME_MINI,
    # Input transcription models
    "gpt-transcribe": {"per_minute": 0.0045},
    "gpt-live-transcribe": {"per_minute": 0.017},
    "gpt-realtime-whisper": {"per_minute": 0.017},
    "whisper-1": {"per_minute": 0.006},
    "gpt-4o-transcribe": {"input_text": 2.5, "input_audio": 6.0, "output_text": 10.0},
    "gpt-4o-mini-transcribe": {"input_text": 1.25, "input_audio": 3.0, "output_text": 5.0},
}
"""USD per 1M tokens (or ``per_minute``), by model. Checked 2026-11-27."""

_SNAPSHOT = re.compile(r"^(?P<base>.+)-\d{4}-\d{2}-\d{2}$")


# The override's older price names (before cached text and audio were priced apart).
_OLD_NAMES = {
    "input_text_tokens": ("input_text",),
    "input_audio_tokens": ("input_audio",),
    "input_cached_tokens": ("cached_text", "cached_audio"),
    "output_text_tokens": ("output_text",),
    "output_audio_tokens": ("output_audio",),
}


def price_table() -> dict[str, dict[str, float]]:
    """:data:`PRICES`, with ``DUALAGENT_PRICES_JSON`` merged over it per model (the older
    names ``input_audio_tokens``... are accepted too)."""
    override = os.environ.get("DUALAGENT_PRICES_JSON")
    if not override:
        return PRICES
    merged = dict(PRICES)
    for model, prices in json.loads(override).items():
        merged[model] = {
            name: float(value)
            for key, value in prices.items()
            for name in _OLD_NAMES.get(key, (key,))
        }
    return merged


def prices_for(
    model: str, table: dict[str, dict[str, float]] | None = None
) -> dict[str, float] | None:
    """The prices of ``model``: its own entry, else its base model's if it is a dated
    snapshot (``<base>-YYYY-MM-DD``), else None."""
    table = price_table() if table is None else table
    if model in table:
        return table[model]
    snapshot = _SNAPSHOT.match(model)
    return table.get(snapshot.group("base")) if snapshot else None


def estimate_cost_usd(
    model: str, usage: dict[str, Any], transcription_model: str | None = None
) -> float | None:
    """USD for one agent's usage totals; None ("unknown") if a model that was used has no
    price. ``transcription_model`` prices the ``transcription_*`` counts."""
    if model.startswith("local-"):
        return 0.0
    table = price_table()
    prices = prices_for(model, table)
    if prices is None:
        return None
    total = _response_cost(prices, usage)
    if any(key.startswith("transcription_") for key in usage):
        transcription = prices_for(transcription_model or "", table)
        if transcription is None:
            return None
        total += _transcription_cost(transcription, usage)
    return round(total, 9)  # nano-dollars: a response can cost a fraction of a cent


def _response_cost(prices: dict[str, float], usage: dict[str, Any]) -> float:
    """Cost of the responses' tokens, cached input at the cached rate per modality."""
    cached = _cached_split(usage)
    total = 0.0
    for kind in ("text", "audio", "image"):
        full = usage.get(f"input_{kind}_tokens", 0)
        hit = min(cached[kind], full) if full else cached[kind]
        total += max(0, full - hit) * prices.get(f"input_{kind}", 0.0)
        total += hit * prices.get(f"cached_{kind}", prices.get(f"input_{kind}", 0.0))
        total += usage.get(f"output_{kind}_tokens", 0) * prices.get(f"output_{kind}", 0.0)
    return total / 1e6


def _cached_split(usage: dict[str, Any]) -> dict[str, float]:
    """Cached input tokens per modality: as the server split them, else ``input_cached_tokens``
    shared out in proportion to the text and audio input (an older server's usage)."""
    split = {k: float(usage.get(f"input_cached_{k}_tokens", 0)) for k in ("text", "audio", "image")}
    unsplit = usage.get("input_cached_tokens", 0) - sum(split.values())
    if unsplit > 0:
        text, audio = usage.get("input_text_tokens", 0), usage.get("input_audio_tokens", 0)
        if text + audio:
            split["text"] += unsplit * text / (text + audio)
            split["audio"] += unsplit * audio / (text + audio)
    return split


def _transcription_cost(prices: dict[str, float], usage: dict[str, Any]) -> float:
    if "per_minute" in prices:
        seconds = usage.get("transcription_seconds")
        if seconds is None:  # counted in tokens: user audio is 10 tokens per second
            seconds = usage.get("transcription_input_audio_tokens", 0) / 10
        return seconds / 60 * prices["per_minute"]
    audio = usage.get("transcription_input_audio_tokens", 0)
    text = usage.get("transcription_input_text_tokens", 0)
    if not audio and not text:  # no split given: all input is audio
        audio = usage.get("transcription_input_tokens", 0)
    out = usage.get("transcription_output_tokens", 0)
    return (
        audio * prices.get("input_audio", 0.0)
        + text * prices.get("input_text", 0.0)
        + out * prices.get("output_text", 0.0)
    ) / 1e6
