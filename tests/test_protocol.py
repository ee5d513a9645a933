"""The wire format: audio payload helpers, beta -> GA normalisation, client-event validation
and typed server events."""

import base64
import json

import numpy as np
import pytest

from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev

# ------------------------------------------------------------------------------ audio helpers


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 959, 960, 4800])
def test_base64_roundtrip_and_decoded_size(size: int) -> None:
    pcm = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    b64 = p.encode_audio(pcm)
    assert b64 == base64.b64encode(pcm).decode("ascii")
    assert p.decode_audio(b64) == pcm
    assert p.b64_decoded_size(b64) == size


def test_decode_audio_rejects_malformed_base64() -> None:
    with pytest.raises(ValueError, match="base64"):
        p.decode_audio("not base64!!")


def test_pcm16_duration_and_float_roundtrip() -> None:
    one_second = b"\x00\x00" * p.SAMPLE_RATE_HZ
    assert p.pcm16_duration_s(one_second) == pytest.approx(1.0)
    assert p.pcm16_duration_s(4800) == pytest.approx(0.1)
    samples = np.array([0.0, 0.5, -0.5, 1.5, -1.5], dtype=np.float32)
    back = p.pcm16_to_float(p.float_to_pcm16(samples))
    # Out-of-range samples clip instead of wrapping around.
    assert back == pytest.approx([0.0, 0.5, -0.5, 32767 / 32768, -1.0], abs=1e-4)


def test_ids_are_deterministic_and_prefixed() -> None:
    a, b = p.IdFactory("x"), p.IdFactory("x")
    assert [a("event"), a("item")] == [b("event"), b("item")] == ["event_x000001", "item_x000002"]


# ------------------------------------------------------------------------------ beta -> GA


@pytest.mark.parametrize(
    ("beta", "ga"),
    [
        ("response.audio.delta", "response.output_audio.delta"),
        ("response.audio.done", "response.output_audio.done"),
        ("response.audio_transcript.delta", "response.output_audio_transcript.delta"),
        ("response.audio_transcript.done", "response.output_audio_transcript.done"),
        ("response.text.delta", "response.output_text.delta"),
        ("response.text.done", "response.output_text.done"),
    ],
)
def test_beta_server_event_names_become_ga(beta: str, ga: str) -> None:
    event = {"type": beta, "event_id": "e1", "delta": "abc"}
    assert p.normalize_server_event(event) == {"type": ga, "event_id": "e1", "delta": "abc"}
    assert event["type"] == beta  # the caller's dict is not mutated


def test_ga_server_events_pass_unchanged() -> None:
    for kind in ("response.output_audio.delta", "response.done", "conversation.item.created"):
        event = {"type": kind}
        assert p.normalize_server_event(event) == {"type": kind}


def test_flat_beta_session_becomes_ga_shape() -> None:
    beta = {
        "modalities": ["text", "audio"],
        "voice": "verse",
        "turn_detection": None,
        "input_audio_format": "pcm16",
        "output_audio_format": "pcm16",
        "input_audio_transcription": {"model": "whisper-1"},
        "max_response_output_tokens": 500,
        "instructions": "Be kind.",
    }
    assert p.normalize_session(beta) == {
        "type": "realtime",
        "instructions": "Be kind.",
        "output_modalities": ["audio"],
        "max_output_tokens": 500,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24_000},
                "turn_detection": None,
                "transcription": {"model": "whisper-1"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24_000}, "voice": "verse"},
        },
    }
    assert p.normalize_session({"modalities": ["text"]})["output_modalities"] == ["text"]
    ga = {"type": "realtime", "output_modalities": ["audio"]}
    assert p.normalize_session(ga) == ga


def test_beta_session_update_parses_and_keeps_null_turn_detection() -> None:
    event = p.parse_client_event(
        json.dumps(
            {
                "type": "session.update",
                "session": {
                    "voice": "ash",
                    "turn_detection": None,
                    "modalities": ["audio", "text"],
                },
            }
        )
    )
    assert isinstance(event, p.SessionUpdate)
    wire = event.dump()
    assert wire["session"]["audio"]["output"]["voice"] == "ash"
    assert wire["session"]["output_modalities"] == ["audio"]
    assert "turn_detection" in wire["session"]["audio"]["input"]
    assert wire["session"]["audio"]["input"]["turn_detection"] is None


def test_beta_response_modalities_and_assistant_content_become_ga() -> None:
    create = p.parse_client_event({"type": "response.create", "response": {"modalities": ["text"]}})
    assert create.response.output_modalities == ["text"]
    item = p.parse_client_event(
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "text", "text": "hi"}],
            },
        }
    )
    assert item.item.content[0].type == "output_text"


def test_session_config_dump_sends_explicit_null_turn_detection() -> None:
    config = p.session_config(
        instructions="Help.",
        voice="coral",
        speed=1.2,
        tools=[{"type": "function", "name": "end_call", "parameters": {"type": "object"}}],
    )
    wire = config.dump()
    raw = json.dumps(wire)
    assert '"turn_detection": null' in raw  # no server VAD: the bridge owns turns
    assert wire["type"] == "realtime"
    assert wire["output_modalities"] == ["audio"]
    assert wire["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24_000}
    assert wire["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    assert wire["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24_000},
        "voice": "coral",
        "speed": 1.2,
    }
    assert wire["tools"][0]["name"] == "end_call"
    assert wire["tool_choice"] == "auto"
    # Unset options are omitted rather than sent as null.
    assert "temperature" not in wire and "model" not in wire
    no_asr = p.session_config(transcribe_input=False, output_modalities=["text"]).dump()
    assert "transcription" not in no_asr["audio"]["input"]
    assert no_asr["output_modalities"] == ["text"]
    # And it survives a full SessionUpdate dump too.
    assert (
        p.SessionUpdate(session=config).dump()["session"]["audio"]["input"]["turn_detection"]
        is None
    )


def test_function_output_and_text_message_items() -> None:
    out = p.function_output("call_1", {"ok": True, "n": 2})
    assert out.dump() == {
        "type": "function_call_output",
        "call_id": "call_1",
        "output": '{"ok":true,"n":2}',
    }
    msg = p.text_message("hello").dump()
    assert msg == {
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "hello"}],
    }
    assert p.text_message("hi", role="assistant").dump()["content"][0]["type"] == "output_text"


# ------------------------------------------------------------------------------ client event errors


def _error(raw) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client_event(raw)
    return info.value


def test_invalid_json_is_reported() -> None:
    error = _error('{"type": "response.create"')
    assert error.code == "invalid_json"
    assert "JSON" in error.message
    assert _error("[1, 2]").code == "invalid_json"


def test_unknown_type_lists_supported_types() -> None:
    error = _error({"type": "response.explode", "event_id": "evt_9"})
    assert error.code == "invalid_value"
    assert error.param == "type"
    assert error.event_id == "evt_9"
    assert "response.explode" in error.message
    for kind in p.CLIENT_EVENT_TYPES:
        assert kind in error.message


def test_missing_type() -> None:
    error = _error({"event_id": "evt_1"})
    assert (error.code, error.param, error.event_id) == (
        "missing_required_parameter",
        "type",
        "evt_1",
    )


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"type": "input_audio_buffer.append"}, "audio"),
        ({"type": "conversation.item.truncate", "item_id": "item_1"}, "audio_end_ms"),
        ({"type": "conversation.item.delete"}, "item_id"),
        ({"type": "conversation.item.create"}, "item"),
        # Nested fields are named by their JSON path, without pydantic's union tags.
        (
            {
                "type": "conversation.item.create",
                "item": {"type": "function_call_output", "output": "x"},
            },
            "item.call_id",
        ),
        (
            {"type": "conversation.item.create", "item": {"type": "message", "role": "user"}},
            "item.content",
        ),
    ],
)
def test_missing_field_names_the_parameter(raw: dict, param: str) -> None:
    error = _error({**raw, "event_id": "evt_missing"})
    assert error.code == "missing_required_parameter"
    assert error.param == param
    assert f"'{param}'" in error.message
    assert error.event_id == "evt_missing"


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"type": "input_audio_buffer.append", "audio": 5}, "audio"),
        (
            {"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": -1},
            "audio_end_ms",
        ),
        (
            {"type": "session.update", "session": {"output_modalities": ["video"]}},
            "session.output_modalities.0",
        ),
    ],
)
def test_wrong_type_or_value_names_the_parameter(raw: dict, param: str) -> None:
    error = _error({**raw, "event_id": "evt_bad"})
    assert error.code in ("invalid_value", "invalid_type")
    assert error.param == param
    assert param in error.message
    assert error.event_id == "evt_bad"


def test_error_event_carries_the_fields() -> None:
    ids = p.IdFactory()
    event = ev.error_event(ids, _error({"type": "nope", "event_id": "evt_7"})).dump()
    assert event["type"] == "error"
    assert event["event_id"].startswith("event_")
    assert event["error"]["type"] == "invalid_request_error"
    assert event["error"]["code"] == "invalid_value"
    assert event["error"]["event_id"] == "evt_7"
    assert event["error"]["param"] == "type"


def test_error_event_keeps_null_param_as_the_hosted_service_sends_it() -> None:
    error = p.ProtocolError("Cancellation failed", code="response_cancel_not_active")
    wire = json.dumps(ev.error_event(p.IdFactory(), error).dump())
    assert wire == (
        '{"type": "error", "event_id": "event_000001", "error": {"type": "invalid_request_error", '
        '"code": "response_cancel_not_active", "message": "Cancellation failed", '
        '"param": null, "event_id": null}}'
    )


# ------------------------------------------------------------------------------ server events


def test_server_events_parse_to_typed_models() -> None:
    done = ev.parse_server_event(
        {
            "type": "response.done",
            "event_id": "e1",
            "response": {
                "id": "resp_1",
                "status": "failed",
                "status_details": {"type": "failed", "error": {"code": "server_error"}},
                "output": [{"id": "i1", "type": "function_call", "name": "end_call"}],
                "usage": {"total_tokens": 7, "output_token_details": {"audio_tokens": 5}},
            },
        }
    )
    assert isinstance(done, ev.ResponseDone)
    assert done.response.id == "resp_1" and done.response.status == "failed"
    assert done.response.status_details and done.response.status_details.error
    assert done.response.status_details.error.code == "server_error"
    assert done.response.output and done.response.output[0].name == "end_call"
    assert done.response.usage and done.response.usage.total_tokens == 7


def test_beta_server_event_names_parse_as_ga() -> None:
    delta = ev.parse_server_event({"type": "response.audio.delta", "delta": "AAAA", "item_id": "i"})
    assert isinstance(delta, ev.ResponseOutputAudioDelta)
    assert delta.type == "response.output_audio.delta" and delta.delta == "AAAA"


def test_unknown_event_types_and_fields_are_kept() -> None:
    raw = {"type": "output_audio_buffer.started", "event_id": "e2", "response_id": "r"}
    unknown = ev.parse_server_event(raw)
    assert isinstance(unknown, ev.UnknownServerEvent)
    assert unknown.dump() == raw
    created = ev.parse_server_event(
        {"type": "response.created", "response": {"id": "r", "new_field": {"x": 1}}, "extra": 2}
    )
    assert isinstance(created, ev.ResponseCreated)
    assert created.dump()["extra"] == 2
    assert created.dump()["response"]["new_field"] == {"x": 1}


def test_known_event_with_wrongly_typed_fields_is_refused_with_the_field() -> None:
    with pytest.raises(ev.ServerEventError, match=r"response\.output_audio\.delta.*output_index"):
        ev.parse_server_event({"type": "response.output_audio.delta", "output_index": "first"})


def test_every_modelled_type_is_in_the_union() -> None:
    assert "response.output_audio.delta" in ev.SERVER_EVENT_TYPES
    assert "conversation.item.input_audio_transcription.failed" in ev.SERVER_EVENT_TYPES
    assert len(ev.SERVER_EVENT_TYPES) == 30


def test_valid_events_parse_to_models() -> None:
    audio = p.encode_audio(b"\x00\x01" * 10)
    append = p.parse_client_event(
        json.dumps({"type": "input_audio_buffer.append", "audio": audio, "event_id": "e"})
    )
    assert isinstance(append, p.InputAudioBufferAppend) and append.audio == audio
    assert isinstance(p.parse_client_event(b'{"type": "response.cancel"}'), p.ResponseCancel)
    call = p.parse_client_event(
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "c", "output": "{}"},
        }
    )
    assert isinstance(call.item, p.FunctionCallOutputItem)
