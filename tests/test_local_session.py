"""The embedded server's session state machine, driven directly (no sockets, no engines)."""

import json
from typing import Any

import pytest

from dualagent.realtime import protocol as p
from dualagent.realtime.local.session import LocalSession, Respond, StopResponse, Transcribe
from dualagent.realtime.server_events import ServerEventBase

MS = 2 * p.SAMPLE_RATE_HZ // 1000  # PCM16 bytes per millisecond


def pcm(ms: int) -> bytes:
    return b"\x01\x00" * (MS // 2) * ms


def wire(actions: list) -> list:
    """Server events as the JSON objects the server sends; work orders as they are."""
    return [
        json.loads(json.dumps(a.dump())) if isinstance(a, ServerEventBase) else a for a in actions
    ]


class WireSession:
    """A :class:`LocalSession` whose methods return their events as they go on the wire."""

    def __init__(self, session: LocalSession) -> None:
        self.session = session

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.session, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if isinstance(result, tuple):  # begin_message: (item id, events)
                return result[0], wire(result[1])
            return wire(result) if isinstance(result, list) else result

        return call


@pytest.fixture
def session() -> Any:
    s = WireSession(LocalSession("sess_test", model="local-cs"))
    s.start()
    return s


def send(session: WireSession, event: dict[str, Any]) -> list:
    return session.handle_raw(json.dumps(event))


def kinds(actions: list) -> list[str]:
    return [a["type"] if isinstance(a, dict) else type(a).__name__ for a in actions]


def only_error(actions: list) -> dict[str, Any]:
    assert kinds(actions) == ["error"], actions
    return actions[0]["error"]


# ------------------------------------------------------------------------------ session


def test_start_sends_session_and_conversation_created() -> None:
    events = WireSession(LocalSession("sess_a", model="local-caller")).start()
    assert kinds(events) == ["session.created", "conversation.created"]
    created = events[0]["session"]
    assert created["id"] == "sess_a"
    assert created["type"] == "realtime"
    assert created["model"] == "local-caller"
    assert created["output_modalities"] == ["audio"]
    assert created["audio"]["output"]["voice"] == "alloy"
    assert created["audio"]["input"]["format"] == {"type": "audio/pcm", "rate": 24_000}
    # Server VAD is on from the start, with the hosted defaults.
    assert created["audio"]["input"]["turn_detection"] == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "create_response": True,
        "interrupt_response": True,
    }
    assert events[1]["conversation"]["id"] == "conv_sess_a"
    assert len({e["event_id"] for e in events}) == 2


def test_session_update_merges_with_previous_settings(session: WireSession) -> None:
    send(
        session,
        {"type": "session.update", "session": {"type": "realtime", "instructions": "Be brief."}},
    )
    events = send(
        session,
        {
            "type": "session.update",
            "session": {"audio": {"output": {"voice": "coral", "speed": 1.2}}},
        },
    )
    assert kinds(events) == ["session.updated"]
    updated = events[0]["session"]
    assert updated["instructions"] == "Be brief."  # kept from the first update
    assert updated["audio"]["output"]["voice"] == "coral"
    assert updated["audio"]["output"]["speed"] == 1.2
    assert updated["audio"]["output"]["format"]["type"] == "audio/pcm"  # kept from the default
    assert session.voice == "coral" and session.speed == 1.2
    # A beta flat session is accepted too.
    send(session, {"type": "session.update", "session": {"voice": "ash", "modalities": ["text"]}})
    assert session.voice == "ash"
    assert session.config.output_modalities == ["text"]
    assert session.config.instructions == "Be brief."


def test_invalid_session_update_is_an_error_and_keeps_config(session: WireSession) -> None:
    error = only_error(
        send(session, {"type": "session.update", "session": {"audio": {"output": {"speed": 9}}}})
    )
    assert error["code"] == "invalid_value"
    assert session.speed == 1.0


# ------------------------------------------------------------------------------ input audio


def test_an_unknown_model_is_an_error_naming_the_valid_ones_and_gets_no_response() -> None:
    session = WireSession(LocalSession("sess_x", model="gpt-realtime"))
    events = session.start()
    assert kinds(events) == ["session.created", "conversation.created", "error"]
    error = events[-1]["error"]
    assert (error["code"], error["param"]) == ("invalid_value", "model")
    assert "'gpt-realtime'" in error["message"]
    assert "'local-caller', 'local-cs'" in error["message"]
    refused = only_error(send(session, {"type": "response.create", "event_id": "evt_r"}))
    assert (refused["code"], refused["event_id"]) == ("invalid_value", "evt_r")
    assert session.response is None


def test_the_url_fixes_the_model_and_session_update_cannot_change_it(
    session: WireSession,
) -> None:
    # As hosted: the model (here the brain) is the URL's; a session.update naming another one
    # (LiveKit repeats its own "gpt-realtime" in every update) is applied without it.
    for model in ("local-caller", "gpt-realtime"):
        update = {"type": "session.update", "session": {"model": model, "instructions": "Hi."}}
        [updated] = send(session, update)
        assert updated["type"] == "session.updated"
        assert updated["session"]["model"] == "local-cs"
        assert updated["session"]["instructions"] == "Hi."
    assert session.config.model == "local-cs"


def test_barge_in_metadata_reaches_the_work_order(session: WireSession) -> None:
    flag = {"metadata": {p.BARGE_IN_METADATA_KEY: "1"}}
    [_, respond] = send(session, {"type": "response.create", "response": flag})
    assert isinstance(respond, Respond) and respond.params.barge_in
    session.response_finished()
    [_, ordinary] = send(session, {"type": "response.create"})
    assert not ordinary.params.barge_in


def test_append_and_commit_create_a_user_item_to_transcribe(session: WireSession) -> None:
    audio = pcm(300)
    assert (
        send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(audio[:4000])})
        == []
    )
    send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(audio[4000:])})
    actions = send(session, {"type": "input_audio_buffer.commit"})
    assert kinds(actions) == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "Transcribe",
    ]
    committed, added, done, order = actions
    item_id = committed["item_id"]
    assert added["item"]["id"] == done["item"]["id"] == item_id
    assert added["item"]["role"] == "user"
    assert added["item"]["content"][0]["type"] == "input_audio"
    assert isinstance(order, Transcribe)
    assert order.item_id == item_id and order.pcm16 == audio
    assert session.input_buffer == bytearray()
    assert session.conversation()[-1].pending

    [completed] = session.transcription_done(item_id, "hello there", 0.3)
    assert completed["type"] == "conversation.item.input_audio_transcription.completed"
    assert completed["item_id"] == item_id and completed["transcript"] == "hello there"
    entry = session.conversation()[-1]
    assert (entry.role, entry.text, entry.pending) == ("user", "hello there", False)

    # A second commit links to the first item.
    send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(pcm(200))})
    second = send(session, {"type": "input_audio_buffer.commit"})
    assert second[0]["previous_item_id"] == item_id


def test_commit_under_100ms_is_refused_and_session_stays_usable(session: WireSession) -> None:
    send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(pcm(50))})
    error = only_error(send(session, {"type": "input_audio_buffer.commit", "event_id": "evt_c"}))
    assert error["code"] == "input_audio_buffer_commit_empty"
    assert error["event_id"] == "evt_c"
    assert "100ms" in error["message"]
    assert session.conversation() == []
    send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(pcm(100))})
    actions = send(session, {"type": "input_audio_buffer.commit"})
    assert kinds(actions)[0] == "input_audio_buffer.committed"
    assert len(actions[-1].pcm16) == 150 * MS  # the short audio was kept, not lost


def test_clear_empties_the_buffer(session: WireSession) -> None:
    send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(pcm(500))})
    assert kinds(send(session, {"type": "input_audio_buffer.clear"})) == [
        "input_audio_buffer.cleared"
    ]
    assert only_error(send(session, {"type": "input_audio_buffer.commit"}))["code"] == (
        "input_audio_buffer_commit_empty"
    )


def test_bad_audio_payloads_are_errors(session: WireSession) -> None:
    error = only_error(send(session, {"type": "input_audio_buffer.append", "audio": "%%%"}))
    assert (error["code"], error["param"]) == ("invalid_value", "audio")
    odd = only_error(
        send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(b"abc")})
    )
    assert "PCM16" in odd["message"]


def test_handle_raw_turns_bad_json_into_an_error_event(session: WireSession) -> None:
    assert only_error(session.handle_raw("{nope"))["code"] == "invalid_json"


# ------------------------------------------------------------------------------ responses


def test_second_response_create_while_active_is_refused(session: WireSession) -> None:
    first = send(session, {"type": "response.create"})
    assert kinds(first) == ["response.created", "Respond"]
    response_id = first[0]["response"]["id"]
    assert isinstance(first[1], Respond) and first[1].response_id == response_id
    error = only_error(send(session, {"type": "response.create", "event_id": "evt_r2"}))
    assert error["code"] == "conversation_already_has_active_response"
    assert response_id in error["message"]
    assert error["event_id"] == "evt_r2"


def test_cancel_without_active_response_is_an_error(session: WireSession) -> None:
    error = only_error(send(session, {"type": "response.cancel", "event_id": "evt_x"}))
    assert error["code"] == "response_cancel_not_active"
    assert error["event_id"] == "evt_x"


def test_full_audio_response_lifecycle_in_ga_order(session: WireSession) -> None:
    created, order = send(session, {"type": "response.create"})
    response_id = created["response"]["id"]
    assert created["response"]["status"] == "in_progress"
    assert created["response"]["output_modalities"] == ["audio"]
    assert order.params.output_modalities is None

    item_id, events = session.begin_message()
    events += session.message_text(item_id, "Hello there.")
    events += session.message_audio(item_id, pcm(200))
    events += session.message_text(item_id, "How can I help?")
    events += session.message_audio(item_id, pcm(300))
    events += session.end_message(item_id)
    events += session.function_call("verify_customer", {"full_name": "Nancy Wilson"})
    events += session.response_finished()
    assert kinds(events) == [
        "response.output_item.added",
        "conversation.item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
        "rate_limits.updated",
    ]
    by_kind: dict[str, list[dict]] = {}
    for event in events:
        by_kind.setdefault(event["type"], []).append(event)
    deltas = "".join(e["delta"] for e in by_kind["response.output_audio_transcript.delta"])
    transcript = by_kind["response.output_audio_transcript.done"][0]["transcript"]
    assert deltas == transcript == "Hello there. How can I help?"
    audio = b"".join(p.decode_audio(e["delta"]) for e in by_kind["response.output_audio.delta"])
    assert audio == pcm(500)
    for event in events[:-1]:
        if "response_id" in event:
            assert event["response_id"] == response_id
    call_done = by_kind["response.function_call_arguments.done"][0]
    assert call_done["name"] == "verify_customer"
    assert json.loads(call_done["arguments"]) == {"full_name": "Nancy Wilson"}
    assert by_kind["response.output_item.done"][1]["output_index"] == 1

    done = by_kind["response.done"][0]["response"]
    assert done["id"] == response_id and done["status"] == "completed"
    assert [i["type"] for i in done["output"]] == ["message", "function_call"]
    assert done["output"][0]["content"][0] == {"type": "output_audio", "transcript": transcript}
    assert done["output"][0]["status"] == "completed"
    assert done["usage"]["output_tokens"] > 0
    assert session.response is None
    entries = session.conversation()
    assert entries[-2].text == transcript and entries[-2].audio_ms == 500
    assert entries[-1].name == "verify_customer" and entries[-1].call_id == call_done["call_id"]
    # A new response may start now.
    assert kinds(send(session, {"type": "response.create"}))[0] == "response.created"


def test_text_response_has_text_events_and_no_audio(session: WireSession) -> None:
    send(session, {"type": "response.create", "response": {"output_modalities": ["text"]}})
    item_id, events = session.begin_message()
    events += session.message_text(item_id, "Hi.")
    events += session.end_message(item_id)
    events += session.response_finished()
    names = kinds(events)
    assert "response.output_text.delta" in names and "response.output_text.done" in names
    assert not any("audio" in name for name in names)
    done = events[names.index("response.done")]["response"]
    assert done["output_modalities"] == ["text"]
    assert done["output"][0]["content"][0] == {"type": "output_text", "text": "Hi."}


def test_cancel_ends_the_response_as_cancelled(session: WireSession) -> None:
    created, _ = send(session, {"type": "response.create"})
    item_id, _ = session.begin_message()
    session.message_text(item_id, "I was saying something")
    actions = send(session, {"type": "response.cancel"})
    assert kinds(actions) == ["StopResponse", "response.done", "rate_limits.updated"]
    assert isinstance(actions[0], StopResponse)
    assert actions[0].response_id == created["response"]["id"]
    response = actions[1]["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"]["type"] == "cancelled"
    assert response["output"][0]["status"] == "incomplete"
    assert session.response is None
    assert kinds(send(session, {"type": "response.create"}))[0] == "response.created"


def test_cancel_of_another_response_id_is_refused(session: WireSession) -> None:
    send(session, {"type": "response.create"})
    error = only_error(send(session, {"type": "response.cancel", "response_id": "resp_other"}))
    assert error["code"] == "response_cancel_not_active"
    assert session.response is not None


def test_failed_response_reports_the_error(session: WireSession) -> None:
    send(session, {"type": "response.create"})
    [done] = session.response_failed("engine exploded")
    assert done["response"]["status"] == "failed"
    assert done["response"]["status_details"]["error"]["message"] == "engine exploded"
    assert session.response is None


# ------------------------------------------------------------------------------ items


def _spoken_message(session: WireSession, text: str, ms: int) -> str:
    send(session, {"type": "response.create"})
    item_id, _ = session.begin_message()
    session.message_text(item_id, text)
    session.message_audio(item_id, pcm(ms))
    session.end_message(item_id)
    session.response_finished()
    return item_id


def test_truncate_keeps_only_the_words_heard(session: WireSession) -> None:
    item_id = _spoken_message(session, "one two three four five six seven eight", 2000)
    actions = send(
        session,
        {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": 1000,
        },
    )
    assert kinds(actions) == ["conversation.item.truncated"]
    assert actions[0]["item_id"] == item_id and actions[0]["audio_end_ms"] == 1000
    entry = session.entries[item_id]
    assert entry.text == "one two three four"
    assert entry.audio_ms == 1000
    beyond = only_error(
        send(
            session,
            {"type": "conversation.item.truncate", "item_id": item_id, "audio_end_ms": 5000},
        )
    )
    assert (beyond["code"], beyond["param"]) == ("invalid_value", "audio_end_ms")
    missing = only_error(
        send(
            session,
            {"type": "conversation.item.truncate", "item_id": "item_nope", "audio_end_ms": 0},
        )
    )
    assert (missing["code"], missing["param"]) == ("item_truncate_invalid_item_id", "item_id")
    assert missing["message"] == (
        "Error truncating item: the item with id 'item_nope' does not exist."
    )


def test_delete_item_removes_it_from_the_conversation(session: WireSession) -> None:
    item_id = _spoken_message(session, "Hello.", 200)
    actions = send(session, {"type": "conversation.item.delete", "item_id": item_id})
    assert kinds(actions) == ["conversation.item.deleted"]
    assert actions[0]["item_id"] == item_id
    assert item_id not in [e.item_id for e in session.conversation()]
    again = only_error(send(session, {"type": "conversation.item.delete", "item_id": item_id}))
    assert again["code"] == "item_delete_invalid_item_id"


def test_created_items_reach_the_conversation(session: WireSession) -> None:
    actions = send(
        session,
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "I lost my card"}],
            },
        },
    )
    assert kinds(actions) == ["conversation.item.added", "conversation.item.done"]
    actions = send(
        session,
        {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": "call_42", "output": '{"ok":true}'},
        },
    )
    added = actions[0]
    assert added["item"]["type"] == "function_call_output"
    assert added["item"]["status"] == "completed"
    user, tool = session.conversation()
    assert (user.role, user.text) == ("user", "I lost my card")
    assert (tool.role, tool.call_id, tool.output) == ("tool", "call_42", '{"ok":true}')
    assert added["previous_item_id"] == user.item_id
    duplicate = only_error(
        send(
            session,
            {
                "type": "conversation.item.create",
                "item": {"id": user.item_id, "type": "message", "role": "user", "content": []},
            },
        )
    )
    # Code and message as hosted: clients replaying items after a reconnect look for them.
    assert duplicate["code"] == "item_create_duplicate_item_id"
    assert duplicate["message"] == (
        f"Error adding item: an item with id '{user.item_id}' already exists."
    )
    assert duplicate["param"] is None


def create_text(session: WireSession, text: str, **fields: Any) -> list:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return send(session, {"type": "conversation.item.create", "item": item, **fields})


def test_previous_item_id_places_a_created_item(session: WireSession) -> None:
    first = create_text(session, "one")[0]
    assert "previous_item_id" not in first  # the first item has none
    third = create_text(session, "three")[0]
    assert third["previous_item_id"] == first["item"]["id"]
    second = create_text(session, "two", previous_item_id=first["item"]["id"])[0]
    assert second["previous_item_id"] == first["item"]["id"]
    zero = create_text(session, "zero", previous_item_id="root")[0]
    assert "previous_item_id" not in zero
    assert [e.text for e in session.conversation()] == ["zero", "one", "two", "three"]
    error = only_error(create_text(session, "lost", previous_item_id="item_nope", event_id="e1"))
    assert (error["code"], error["event_id"]) == ("item_create_invalid_previous_item_id", "e1")
    assert len(session.conversation()) == 4


def test_response_items_name_the_item_before_them(session: WireSession) -> None:
    user = create_text(session, "hello")[0]["item"]["id"]
    send(session, {"type": "response.create"})
    item_id, events = session.begin_message()
    [added] = [e for e in events if e["type"] == "conversation.item.added"]
    assert added["previous_item_id"] == user
    session.message_text(item_id, "Hi.")
    done = [e for e in session.end_message(item_id) if e["type"] == "conversation.item.done"]
    assert done[0]["previous_item_id"] == user
    call_events = session.function_call("verify_customer", {"name": "Ada"})
    for event in call_events:
        if event["type"].startswith("conversation.item."):
            assert event["previous_item_id"] == item_id


def test_response_metadata_is_echoed_on_created_and_done(session: WireSession) -> None:
    metadata = {"client_event_id": "response_create_abc"}
    created, _ = send(session, {"type": "response.create", "response": {"metadata": metadata}})
    assert created["response"]["metadata"] == metadata
    done = session.response_finished()[0]
    assert done["response"]["metadata"] == metadata
    created, _ = send(session, {"type": "response.create"})
    assert "metadata" not in created["response"]


def test_transcription_of_a_deleted_item_is_dropped(session: WireSession) -> None:
    send(session, {"type": "input_audio_buffer.append", "audio": p.encode_audio(pcm(200))})
    item_id = send(session, {"type": "input_audio_buffer.commit"})[0]["item_id"]
    send(session, {"type": "conversation.item.delete", "item_id": item_id})
    assert session.transcription_done(item_id, "late words", 0.2) == []


# ------------------------------------------------------------------------------ server VAD


def tone(ms: int, amplitude: int = 6000) -> bytes:
    """A loud 220 Hz tone: speech, as far as an energy detector can tell."""
    import numpy as np

    t = np.arange(MS // 2 * ms) / p.SAMPLE_RATE_HZ
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype("<i2").tobytes()


def silence(ms: int) -> bytes:
    return b"\x00\x00" * (MS // 2) * ms


def vad_on(session: WireSession, **turn_detection: Any) -> list:
    config = {"type": "server_vad", **turn_detection}
    update = {"type": "realtime", "audio": {"input": {"turn_detection": config}}}
    return send(session, {"type": "session.update", "session": update})


def append(session: WireSession, audio: bytes, chunk_ms: int = 100) -> list:
    """Stream audio as a microphone would, in ``chunk_ms`` pieces."""
    actions = []
    step = MS * chunk_ms
    for start in range(0, len(audio), step):
        chunk = p.encode_audio(audio[start : start + step])
        actions += send(session, {"type": "input_audio_buffer.append", "audio": chunk})
    return actions


def test_server_vad_finds_speech_commits_it_and_answers(session: WireSession) -> None:
    assert kinds(vad_on(session, silence_duration_ms=400)) == ["session.updated"]
    actions = append(session, silence(1000) + tone(1200) + silence(600))
    assert kinds(actions) == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "Transcribe",
        "response.created",
        "Respond",
    ]
    started, stopped, committed = actions[:3]
    assert started["audio_start_ms"] == 1000 and stopped["audio_end_ms"] == 2200
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    # The item holds the speech with 300 ms of what came before it, and the pause after it.
    transcribe = actions[5]
    assert p.pcm16_duration_s(transcribe.pcm16) == pytest.approx(0.3 + 1.2 + 0.4, abs=0.02)
    assert len(session.input_buffer) == MS * 200  # the rest of the pause: not committed


def test_server_vad_ignores_quiet_noise_and_clicks(session: WireSession) -> None:
    vad_on(session)
    assert append(session, tone(2000, amplitude=200) + tone(30) + silence(1000)) == []


def test_server_vad_speech_cancels_the_agent_unless_told_not_to(session: WireSession) -> None:
    vad_on(session, create_response=False)
    send(session, {"type": "response.create"})
    actions = append(session, tone(300))
    assert kinds(actions)[:3] == [
        "input_audio_buffer.speech_started",
        "StopResponse",
        "response.done",
    ]
    assert actions[2]["response"]["status"] == "cancelled" and session.response is None
    assert actions[2]["response"]["status_details"]["reason"] == "turn_detected"
    # Speech ends: committed, but no answer (create_response is false).
    assert "response.created" not in kinds(append(session, silence(800)))

    vad_on(session, interrupt_response=False)
    send(session, {"type": "response.create"})
    assert kinds(append(session, tone(300))) == ["input_audio_buffer.speech_started"]
    assert session.response is not None


def test_a_client_that_never_sets_turn_detection_gets_its_speech_answered() -> None:
    session = WireSession(LocalSession("sess_mic", model="local-cs"))
    session.start()
    actions = append(session, silence(500) + tone(1000) + silence(700))
    assert kinds(actions)[:3] == [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert kinds(actions)[-2:] == ["response.created", "Respond"]


def test_turn_detection_is_reported_whole_with_its_defaults(session: WireSession) -> None:
    [updated] = vad_on(session, silence_duration_ms=800)
    assert updated["session"]["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 800
    assert updated["session"]["audio"]["input"]["turn_detection"]["prefix_padding_ms"] == 300
    semantic = {"type": "semantic_vad", "eagerness": "high"}
    update = {"audio": {"input": {"turn_detection": semantic}}}
    [updated] = send(session, {"type": "session.update", "session": update})
    assert updated["session"]["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert session.vad is not None and session.vad.settings.silence_duration_ms == 300
    off = {"audio": {"input": {"turn_detection": None}}}
    send(session, {"type": "session.update", "session": off})
    [updated] = send(session, {"type": "session.update", "session": {"instructions": "x"}})
    assert updated["session"]["audio"]["input"]["turn_detection"] is None  # stays off, as null


def test_turn_detection_off_and_bad_settings(session: WireSession) -> None:
    vad_on(session)
    off = {"type": "realtime", "audio": {"input": {"turn_detection": None}}}
    send(session, {"type": "session.update", "session": off})
    assert append(session, silence(500) + tone(1000) + silence(1000)) == []
    error = only_error(vad_on(session, threshold=3.0))
    assert error["param"] == "session" and "threshold" in error["message"]
    bad = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "push_to_talk"}}}}
    error = only_error(send(session, {"type": "session.update", "session": bad}))
    assert "push_to_talk" in error["message"] and "server_vad" in error["message"]
    assert session.vad is None  # a refused update changes nothing
