"""Costs you can trust: realistic usage blocks, priced by hand, against the estimate."""

import json

import pytest

from dualagent.call.answers import add_response_usage, add_transcription_usage
from dualagent.evaluation.pricing import PRICES, estimate_cost_usd, prices_for
from dualagent.realtime import server_events as ev

# A usage block as the hosted service sends it in response.done (late in a call: most of the
# conversation is cached).
USAGE_BLOCK = {
    "total_tokens": 821,
    "input_tokens": 789,
    "output_tokens": 32,
    "input_token_details": {
        "text_tokens": 313,
        "audio_tokens": 476,
        "image_tokens": 0,
        "cached_tokens": 640,
        "cached_tokens_details": {"text_tokens": 256, "audio_tokens": 384, "image_tokens": 0},
    },
    "output_token_details": {"text_tokens": 9, "audio_tokens": 23},
}


def flat(block: dict) -> dict:
    total: dict = {}
    add_response_usage(total, ev.Usage.model_validate(block))
    return total


def test_usage_keeps_cached_text_and_audio_apart() -> None:
    assert flat(USAGE_BLOCK) == {
        "total_tokens": 821,
        "input_tokens": 789,
        "output_tokens": 32,
        "input_text_tokens": 313,
        "input_audio_tokens": 476,
        "input_image_tokens": 0,
        "input_cached_tokens": 640,
        "input_cached_text_tokens": 256,
        "input_cached_audio_tokens": 384,
        "input_cached_image_tokens": 0,
        "output_text_tokens": 9,
        "output_audio_tokens": 23,
    }


@pytest.mark.parametrize(
    ("model", "by_hand_usd"),
    [
        # text: 57 x $4 + 256 x $0.40; audio: 92 x $32 + 384 x $0.40; out: 9 x $16 + 23 x $64
        ("gpt-realtime", (57 * 4 + 256 * 0.4 + 92 * 32 + 384 * 0.4 + 9 * 16 + 23 * 64) / 1e6),
        # gpt-realtime-2.1: output text at $24
        ("gpt-realtime-2.1", (57 * 4 + 256 * 0.4 + 92 * 32 + 384 * 0.4 + 9 * 24 + 23 * 64) / 1e6),
        # mini: text $0.60 / cached $0.06 / out $2.40; audio $10 / cached $0.30 / out $20
        (
            "gpt-realtime-mini",
            (57 * 0.6 + 256 * 0.06 + 92 * 10 + 384 * 0.3 + 9 * 2.4 + 23 * 20) / 1e6,
        ),
    ],
)
def test_a_real_usage_block_costs_what_it_costs_by_hand(model: str, by_hand_usd: float) -> None:
    assert estimate_cost_usd(model, flat(USAGE_BLOCK)) == pytest.approx(by_hand_usd, abs=1e-9)


def test_the_old_estimate_was_38_and_45_percent_low() -> None:
    """What the issue measured: all cached tokens taken off audio, cached text at full price."""
    old_realtime = (313 * 4 + 0 * 32 + 640 * 0.4 + 9 * 16 + 23 * 64) / 1e6
    old_mini = (313 * 0.6 + 0 * 10 + 640 * 0.3 + 9 * 2.4 + 23 * 20) / 1e6
    new_realtime = estimate_cost_usd("gpt-realtime", flat(USAGE_BLOCK))
    new_mini = estimate_cost_usd("gpt-realtime-mini", flat(USAGE_BLOCK))
    assert 1 - old_realtime / new_realtime == pytest.approx(0.38, abs=0.01)
    assert 1 - old_mini / new_mini == pytest.approx(0.45, abs=0.01)


def test_cached_tokens_without_their_split_are_shared_by_the_input_mix() -> None:
    usage = {"input_text_tokens": 100, "input_audio_tokens": 300, "input_cached_tokens": 200}
    # 200 cached: 50 text, 150 audio
    by_hand = (50 * 4 + 50 * 0.4 + 150 * 32 + 150 * 0.4) / 1e6
    assert estimate_cost_usd("gpt-realtime", usage) == pytest.approx(by_hand, abs=1e-9)


def test_models_are_matched_exactly_a_date_suffix_allowed() -> None:
    assert prices_for("gpt-realtime-2025-08-28") is PRICES["gpt-realtime"]
    assert prices_for("gpt-realtime-mini-2025-12-15") is PRICES["gpt-realtime-mini"]
    assert prices_for("gpt-realtime-mini") is PRICES["gpt-realtime-mini"]  # not gpt-realtime's
    assert prices_for("gpt-realtime-3") is None
    assert prices_for("gpt-realtime-preview-custom") is None
    assert prices_for("my-azure-deployment") is None


def test_an_unknown_model_costs_unknown() -> None:
    assert estimate_cost_usd("gpt-realtime-9", flat(USAGE_BLOCK)) is None
    assert estimate_cost_usd("local-cs", flat(USAGE_BLOCK)) == 0.0


def test_input_transcription_is_included() -> None:
    usage = flat(USAGE_BLOCK)
    by_duration = dict(usage)
    for seconds in (30.0, 60.0):  # two transcriptions billed by duration
        add_transcription_usage(by_duration, {"type": "duration", "seconds": seconds})
    assert by_duration["transcription_seconds"] == 90.0
    base = estimate_cost_usd("gpt-realtime", usage)
    # gpt-transcribe: $0.0045 a minute -> 1.5 min
    assert estimate_cost_usd("gpt-realtime", by_duration, "gpt-transcribe") == pytest.approx(
        base + 1.5 * 0.0045, abs=1e-9
    )
    by_tokens = dict(usage)
    add_transcription_usage(
        by_tokens,
        {
            "type": "tokens",
            "input_tokens": 130,
            "output_tokens": 30,
            "total_tokens": 160,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 120},
        },
    )
    # gpt-4o-transcribe: audio in $6, text in $2.50, text out $10 per 1M
    assert estimate_cost_usd("gpt-realtime", by_tokens, "gpt-4o-transcribe") == pytest.approx(
        base + (120 * 6 + 10 * 2.5 + 30 * 10) / 1e6, abs=1e-9
    )
    assert estimate_cost_usd("gpt-realtime", by_tokens, "some-new-transcriber") is None


def test_prices_can_be_overridden_and_extended(monkeypatch) -> None:
    monkeypatch.setenv(
        "DUALAGENT_PRICES_JSON",
        json.dumps(
            {
                "my-azure-deployment": PRICES["gpt-realtime"],
                # the older names still work
                "gpt-realtime-mini": {"input_audio_tokens": 1.0, "input_cached_tokens": 0.0},
            }
        ),
    )
    assert estimate_cost_usd("my-azure-deployment", flat(USAGE_BLOCK)) == estimate_cost_usd(
        "gpt-realtime", flat(USAGE_BLOCK)
    )
    assert estimate_cost_usd("gpt-realtime-mini", flat(USAGE_BLOCK)) == pytest.approx(
        92 * 1.0 / 1e6, abs=1e-9
    )
