"""Estimated cost of a call on a hosted Realtime model, from the usage in ``response.done``.

Prices are USD per million tokens as OpenAI published them for the GA realtime models; they
change, so treat the figure as an estimate and override the table with the environment variable
``DUALAGENT_PRICES_JSON`` (same shape: model -> {price name -> USD per 1M tokens}).
Local models cost nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

PRICES_PER_MILLION: dict[str, dict[str, float]] = {
    "gpt-realtime": {
        "input_text_tokens": 4.0,
        "input_audio_tokens": 32.0,
        "input_cached_tokens": 0.4,
        "output_text_tokens": 16.0,
        "output_audio_tokens": 64.0,
    },
    "gpt-realtime-mini": {
        "input_text_tokens": 0.6,
        "input_audio_tokens": 10.0,
        "input_cached_tokens": 0.3,
        "output_text_tokens": 2.4,
        "output_audio_tokens": 20.0,
    },
}


def price_table() -> dict[str, dict[str, float]]:
    override = os.environ.get("DUALAGENT_PRICES_JSON")
    if override:
        return {**PRICES_PER_MILLION, **json.loads(override)}
    return PRICES_PER_MILLION


def _prices_for(model: str, table: dict[str, dict[str, float]]) -> dict[str, float] | None:
    # Dated snapshots ("gpt-realtime-2025-08-28") cost what their family costs.
    for name in sorted(table, key=len, reverse=True):
        if model == name or model.startswith(name + "-"):
            return table[name]
    return None


def estimate_cost_usd(model: str, usage: dict[str, Any]) -> float | None:
    """USD for one agent's usage totals (keys like ``input_audio_tokens``); None if unpriced."""
    if model.startswith("local-"):
        return 0.0
    prices = _prices_for(model, price_table())
    if prices is None:
        return None
    # Cached input tokens are billed at the cached rate instead of the full audio/text rate.
    cached = usage.get("input_cached_tokens", 0)
    total = 0.0
    for key, per_million in prices.items():
        count = usage.get(key, 0)
        if key == "input_audio_tokens":
            count = max(0, count - cached)
        total += count * per_million / 1e6
    return round(total, 6)
