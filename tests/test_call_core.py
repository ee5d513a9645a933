"""The call state machine, fed hand-written server events (no sockets, no engines)."""

import json
from typing import Any

import pytest

from dualagent.call.core import (
    BARGE_IN_NOTE,
    AddTurn,
    CallCore,
    CallSettings,
    EndCall,
    Flush,
    LogToolCall,
    PlaceAudio,
    RunTools,
    Send,
    ToolOutput,
    UpdateTurn,
)
from dualagent.realtime import protocol as p

SESSIONS = {
    "caller": p.session_config(instructions="You are a caller.", voice="ash"),
    "cs": p.session_config(instructions="You are a bank agent.", voice="coral"),
}


def pcm(ms: int) -> bytes:
    return b"\x10\x00" * (p.SAMPLE_RATE_HZ * ms // 1000)


class FakeBank:
    """A tool executor: answers by tool name and remembers what it was asked."""

    def __init__(self, **outputs: dict[str, Any]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def __call__(self, agent: str, name: str, arguments: str) -> dict[str, Any]:
        self.calls.append((agent, name, json.loads(arguments)))
        return self.outputs.get(name, {"ok": True})


class Call:
    """A CallCore plus helpers that play what a Realtime server would send."""

    def __init__(self, tools: FakeBank | None = None, **settings: Any) -> None:
        self.tools = tools or FakeBank()
        self.core = CallCore(CallSettings(**settings))
        self.counter = 0

    def new_id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.counter}"

    def start(self, now: float = 0.0, sessions: dict[str, p.SessionConfig] | None = None) -> list:
        """Both sessions configured, and confirmed as asked (the first response follows)."""
        sessions = sessions or SESSIONS
        effects = self.core.start(sessions, now)
        for agent in ("caller", "cs"):
            echo = {"type": "session.updated", "session": sessions[agent].dump()}
            effects += self.feed(agent, echo, now)
        return effects

    def feed(self, agent: str, event: dict[str, Any], now: float = 0.0) -> list:
        return self.run_tools(self.core.on_event(agent, event, now), now)

    def run_tools(self, effects: list, now: float) -> list:
        """Do what a pump does with RunTools: run them, hand the outputs back in place."""
        out = []
        for effect in effects:
            out.append(effect)
            if isinstance(effect, RunTools):
                outputs = [
                    ToolOutput(self.tools(effect.agent, c.name, c.arguments)) for c in effect.calls
                ]
                out += self.run_tools(self.core.on_tool_outputs(effect.agent, outputs, now), now)
        return out

    def created(self, agent: str, now: float = 0.0) -> str:
        response_id = self.new_id("resp")
        self.feed(agent, {"type": "response.created", "response": {"id": response_id}}, now)
        return response_id

    def speak(
        self, agent: str, text: str, ms: int, now: float = 0.0, *, chunks: int = 1
    ) -> tuple[str, list]:
        """One spoken message: audio deltas, transcript done, output item done."""
        item_id = self.new_id("item")
        common = {"response_id": "r", "item_id": item_id, "output_index": 0, "content_index": 0}
        effects = []
        for _ in range(chunks):
            delta = {
                "type": "response.output_audio.delta",
                "delta": p.encode_audio(pcm(ms // chunks)),
            }
            effects += self.feed(agent, {**delta, **common}, now)
        effects += self.feed(
            agent,
            {"type": "response.output_audio_transcript.done", "transcript": text, **common},
            now,
        )
        effects += self.feed(agent, self.message_done(item_id, text), now)
        return item_id, effects

    def write(self, agent: str, text: str, now: float = 0.0) -> list:
        """One text message (text route)."""
        item_id = self.new_id("item")
        common = {"response_id": "r", "item_id": item_id, "output_index": 0, "content_index": 0}
        effects = []
        for i, word in enumerate(text.split()):
            delta = word if i == 0 else " " + word
            effects += self.feed(
                agent, {"type": "response.output_text.delta", "delta": delta, **common}, now
            )
        effects += self.feed(
            agent, {"type": "response.output_text.done", "text": text, **common}, now
        )
        effects += self.feed(agent, self.message_done(item_id, text, kind="output_text"), now)
        return effects

    @staticmethod
    def message_done(item_id: str, text: str, kind: str = "output_audio") -> dict[str, Any]:
        field = "transcript" if kind == "output_audio" else "text"
        item = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "content": [{"type": kind, field: text}],
        }
        return {"type": "response.output_item.done", "output_index": 0, "item": item}

    def call_tool(self, agent: str, name: str, arguments: dict[str, Any], now: float = 0.0) -> str:
        call_id = self.new_id("call")
        item = {
            "id": self.new_id("item"),
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": json.dumps(arguments),
        }
        assert (
            self.feed(
                agent, {"type": "response.output_item.done", "output_index": 1, "item": item}, now
            )
            == []
        )
        return call_id

    def done(
        self, agent: str, now: float = 0.0, status: str = "completed", **response: Any
    ) -> list:
        event = {"type": "response.done", "response": {"id": "r", "status": status, **response}}
        return self.feed(agent, event, now)

    def hear(self, listener: str, transcript: str, now: float = 0.0) -> list:
        """The listener's server commits the buffer and transcribes it."""
        item_id = self.new_id("heard")
        effects = self.feed(
            listener, {"type": "input_audio_buffer.committed", "item_id": item_id}, now
        )
        effects += self.feed(
            listener,
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": transcript,
            },
            now,
        )
        return effects


def sends(effects: list, agent: str | None = None) -> list[dict[str, Any]]:
    return [e.event for e in effects if isinstance(e, Send) and agent in (None, e.agent)]


def send_types(effects: list, agent: str | None = None) -> list[str]:
    return [event["type"] for event in sends(effects, agent)]


def ending(effects: list) -> EndCall | None:
    ends = [e for e in effects if isinstance(e, EndCall)]
    assert len(ends) <= 1
    return ends[0] if ends else None


# ------------------------------------------------------------------------------ start and speech


def test_start_configures_both_sessions_and_asks_cs_to_speak() -> None:
    effects = Call().start(now=5.0)
    assert [(e.agent, e.event["type"]) for e in effects] == [
        ("caller", "session.update"),
        ("cs", "session.update"),
        ("cs", "response.create"),
    ]
    caller_update, cs_update = effects[0].event, effects[1].event
    assert caller_update["session"]["instructions"] == "You are a caller."
    assert cs_update["session"]["audio"]["output"]["voice"] == "coral"
    # The bridge owns the turns: server VAD must be explicitly off on the wire.
    assert cs_update["session"]["audio"]["input"]["turn_detection"] is None


def test_caller_can_speak_first() -> None:
    effects = Call(first_speaker="caller").start()
    assert sends(effects)[-1] == {"type": "response.create"}
    assert effects[-1].agent == "caller"


def test_cs_audio_is_forwarded_to_the_caller_and_placed_on_the_timeline() -> None:
    call = Call()
    call.start(now=0.0)
    call.created("cs")
    _, effects = call.speak("cs", "Thank you for calling.", 400, now=0.0, chunks=2)
    placed = [e for e in effects if isinstance(e, PlaceAudio)]
    assert [(e.speaker, len(e.pcm16), e.at_s) for e in placed] == [
        ("cs", len(pcm(200)), 0.0),
        ("cs", len(pcm(200)), pytest.approx(0.2)),
    ]
    appends = [
        e for e in effects if isinstance(e, Send) and e.event["type"] == "input_audio_buffer.append"
    ]
    assert [e.agent for e in appends] == ["caller", "caller"]
    assert b"".join(p.decode_audio(e.event["audio"]) for e in appends) == pcm(400)
    assert [e.utterance_offset_s for e in appends] == [0.0, pytest.approx(0.2)]
    assert not sends(effects, "cs")  # nothing echoes back to the speaker
    # The utterance is committed to the listener as soon as the message is done.
    assert send_types(effects, "caller")[-1] == "input_audio_buffer.commit"
    [turn] = [e.turn for e in effects if isinstance(e, AddTurn)]
    assert turn["speaker"] == "cs" and turn["text"] == "Thank you for calling."
    assert turn["end_s"] == pytest.approx(0.4)
    assert any(isinstance(e, Flush) and e.until_s == pytest.approx(0.4) for e in effects)


def test_cs_response_done_hands_the_turn_to_the_caller() -> None:
    call = Call()
    call.start()
    call.created("cs")
    _, spoken = call.speak("cs", "How can I help?", 1000)
    effects = spoken + call.done("cs", now=1.0)
    assert send_types(effects, "caller")[-2:] == ["input_audio_buffer.commit", "response.create"]

    # The caller's transcript of what it heard is attached to the CS turn.
    updates = [e for e in call.hear("caller", "how can i help") if isinstance(e, UpdateTurn)]
    assert updates == [UpdateTurn(0, {"heard": "how can i help"})]
    assert call.core.turns[0]["heard"] == "how can i help"


def test_message_cut_short_is_still_committed_on_response_done() -> None:
    call = Call()
    call.start()
    item = "item_x"
    delta = {
        "type": "response.output_audio.delta",
        "item_id": item,
        "delta": p.encode_audio(pcm(500)),
    }
    call.feed("cs", delta)
    effects = call.done("cs", status="cancelled")
    assert send_types(effects, "caller") == ["input_audio_buffer.commit", "response.create"]
    assert call.core.turns[0]["end_s"] == pytest.approx(0.5)


def test_short_audio_under_100ms_is_not_committed() -> None:
    call = Call()
    call.start()
    _, effects = call.speak("cs", "Hm.", 50)
    assert "input_audio_buffer.commit" not in send_types(effects)
    assert send_types(call.done("cs"), "caller") == ["response.create"]


# ------------------------------------------------------------------------------ tools


def test_function_call_output_goes_back_to_the_same_agent() -> None:
    bank = FakeBank(verify_customer={"ok": True, "verified": True, "customer_id": "c1"})
    call = Call(bank)
    call.start()
    call.created("cs")
    call.speak("cs", "One moment.", 600)
    call_id = call.call_tool("cs", "verify_customer", {"full_name": "Nancy Wilson"})
    effects = call.done("cs", now=2.0)
    assert bank.calls == [("cs", "verify_customer", {"full_name": "Nancy Wilson"})]
    cs_sends = sends(effects, "cs")
    assert [e["type"] for e in cs_sends] == ["conversation.item.create", "response.create"]
    item = cs_sends[0]["item"]
    assert item["type"] == "function_call_output" and item["call_id"] == call_id
    assert json.loads(item["output"]) == {"ok": True, "verified": True, "customer_id": "c1"}
    assert "response.create" not in send_types(effects, "caller")  # CS keeps the turn
    [logged] = [e.call for e in effects if isinstance(e, LogToolCall)]
    assert logged["name"] == "verify_customer" and logged["ok"] is True
    assert logged["arguments"] == {"full_name": "Nancy Wilson"}
    assert call.core.tool_calls == [logged]
    assert ending(effects) is None


def test_caller_end_call_hangs_up_after_its_last_words_are_heard() -> None:
    call = Call()
    call.start()
    call.created("caller")
    call.speak("caller", "Thanks, goodbye.", 800)
    call.call_tool("caller", "end_call", {"reason": "done"})
    effects = call.done("caller", now=3.0)
    assert send_types(effects, "caller") == ["conversation.item.create"]
    assert "response.create" not in send_types(effects)
    assert ending(effects) is None  # the CS has not transcribed "goodbye" yet
    effects = call.hear("cs", "thanks goodbye")
    end = ending(effects)
    assert end == EndCall("completed", "caller_hung_up", None)
    assert call.core.turns[-1]["heard"] == "thanks goodbye"
    assert call.core.ended
    assert call.feed("cs", {"type": "response.done", "response": {"status": "completed"}}) == []


def test_cs_end_call_reason() -> None:
    call = Call()
    call.start()
    call.call_tool("cs", "end_call", {})
    assert ending(call.done("cs")) == EndCall("completed", "cs_ended_call", None)


def test_transfer_to_human_ends_the_call() -> None:
    call = Call()
    call.start()
    call.speak("cs", "I'm transferring you now. Please hold.", 1500)
    call.call_tool("cs", "transfer_to_human", {"reason": "caller asked"})
    assert ending(call.done("cs")) is None
    end = ending(call.hear("caller", "transferring you now please hold"))
    assert end is not None
    assert (end.status, end.end_reason) == ("completed", "transferred_to_human")


def test_failed_ending_tool_does_not_end_the_call() -> None:
    call = Call(FakeBank(transfer_to_human={"ok": False, "error": "no agents available"}))
    call.start()
    call.call_tool("cs", "transfer_to_human", {})
    effects = call.done("cs")
    assert ending(effects) is None
    assert send_types(effects, "cs") == ["conversation.item.create", "response.create"]


# ------------------------------------------------------------------------------ limits and errors


def _exchange(call: Call, agent: str, text: str, ms: int) -> list:
    _, effects = call.speak(agent, text, ms)
    effects += call.done(agent)
    listener = "caller" if agent == "cs" else "cs"
    return effects + call.hear(listener, text.lower())


def test_max_turns_ends_the_call() -> None:
    call = Call(max_turns=3)
    call.start()
    assert ending(_exchange(call, "cs", "Hello.", 500)) is None
    assert ending(_exchange(call, "caller", "Hi.", 500)) is None
    _, effects = call.speak("cs", "Bye.", 500)
    effects += call.done("cs")
    assert "response.create" not in send_types(effects)
    end = ending(effects + call.hear("caller", "bye"))
    assert end == EndCall("completed", "max_turns", None)
    assert call.core.speaker_turns == 3


def test_two_utterances_in_a_row_are_one_speaker_turn() -> None:
    call = Call(max_turns=2)
    call.start()
    call.speak("cs", "One moment.", 500)
    call.call_tool("cs", "get_balance", {})
    call.done("cs")
    effects = _exchange(call, "cs", "Your balance is ten dollars.", 500)
    assert ending(effects) is None
    assert call.core.speaker_turns == 1
    assert len(call.core.turns) == 2


def test_duration_limit_ends_the_call() -> None:
    call = Call(max_duration_s=2.0)
    call.start()
    assert ending(_exchange(call, "cs", "Hello.", 1500)) is None
    end = ending(_exchange(call, "caller", "I have a long story to tell.", 1000))
    assert end == EndCall("completed", "duration_limit", None)


def test_disconnect_ends_the_call_with_an_error() -> None:
    call = Call()
    call.start()
    call.speak("cs", "Hello.", 500)
    effects = call.core.on_disconnect("caller", "connection reset")
    end = ending(effects)
    assert end is not None and end.status == "error"
    assert end.end_reason == "caller_disconnected"
    assert "connection reset" in (end.error or "")
    assert call.core.on_disconnect("cs", "later") == []


def test_failed_response_ends_the_call_with_its_message() -> None:
    call = Call()
    call.start()
    details = {"type": "failed", "error": {"type": "server_error", "message": "model overloaded"}}
    end = ending(call.done("cs", status="failed", status_details=details))
    assert end is not None and end.status == "error"
    assert "model overloaded" in (end.error or "")
    assert "cs" in (end.error or "")


def test_fatal_server_error_ends_the_call_but_a_client_error_does_not() -> None:
    call = Call()
    call.start()
    bad = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "invalid_value", "message": "x"},
    }
    assert ending(call.feed("cs", bad)) is None
    fatal = {
        "type": "error",
        "error": {"type": "invalid_request_error", "code": "invalid_api_key", "message": "no"},
    }
    end = ending(call.feed("caller", fatal))
    assert end is not None and end.status == "error"
    assert [e["code"] for e in call.core.errors] == ["invalid_value", "invalid_api_key"]


def test_two_silent_responses_stall_the_call() -> None:
    call = Call()
    call.start()
    assert send_types(call.done("cs"), "caller") == ["response.create"]
    end = ending(call.done("caller"))
    assert end is not None and end.end_reason == "stalled"


def test_usage_is_summed_per_agent() -> None:
    call = Call()
    call.start()
    usage = {
        "input_tokens": 3,
        "output_tokens": 5,
        "total_tokens": 8,
        "output_token_details": {"audio_tokens": 4},
    }
    call.done("cs", usage=usage)
    call.done("caller", usage=usage)
    assert call.core.usage()["cs"] == {
        "input_tokens": 3,
        "output_tokens": 5,
        "total_tokens": 8,
        "output_audio_tokens": 4,
    }


# ------------------------------------------------------------------------------ text route


def test_text_route_forwards_text_as_a_conversation_item() -> None:
    call = Call(route="text")
    call.start()
    call.created("cs")
    effects = call.write("cs", "Thank you for calling First Bank.")
    assert not [e for e in effects if isinstance(e, PlaceAudio)]
    caller_sends = sends(effects, "caller")
    assert caller_sends == [
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Thank you for calling First Bank."}],
            },
        }
    ]
    assert call.core.turns[0]["heard"] == "Thank you for calling First Bank."
    # Six words at 2.6 words/s.
    assert call.core.turns[0]["end_s"] == pytest.approx(6 / 2.6, abs=1e-3)
    done = call.done("cs")
    assert send_types(done, "caller") == ["response.create"]


def test_text_route_ending_does_not_wait_for_transcriptions() -> None:
    call = Call(route="text")
    call.start()
    call.write("caller", "Goodbye.")
    call.call_tool("caller", "end_call", {})
    assert ending(call.done("caller")) == EndCall("completed", "caller_hung_up", None)


# ------------------------------------------------------------------------------ timeline


def test_latency_is_measured_from_response_create_to_first_audio() -> None:
    call = Call()
    call.start(now=10.0)  # response.create to the CS at 10.0
    call.created("cs", now=10.1)
    _, effects = call.speak("cs", "Hello.", 1000, now=10.8)
    turn = call.core.turns[0]
    assert turn["response_latency_s"] == pytest.approx(0.8)
    assert turn["start_s"] == pytest.approx(0.8)
    assert turn["end_s"] == pytest.approx(1.8)
    assert [e.at_s for e in effects if isinstance(e, PlaceAudio)] == [pytest.approx(0.8)]
    assert call.core.latencies_s == [pytest.approx(0.8)]


def test_second_utterance_starts_after_the_first_plus_its_latency() -> None:
    call = Call()
    call.start(now=1.0)
    call.speak("cs", "Hello.", 1000, now=1.8)  # 0.8 .. 1.8 on the timeline
    call.done("cs", now=5.0)  # response.create to the caller at wall time 5.0
    call.hear("caller", "hello", now=5.1)
    _, effects = call.speak("caller", "Hi there.", 700, now=5.5)
    placed = [e for e in effects if isinstance(e, PlaceAudio)]
    assert [(e.speaker, e.at_s) for e in placed] == [("caller", pytest.approx(1.8 + 0.5))]
    second = call.core.turns[1]
    assert second["start_s"] == pytest.approx(2.3)
    assert second["end_s"] == pytest.approx(3.0)
    assert second["response_latency_s"] == pytest.approx(0.5)
    assert call.core.timeline_s == pytest.approx(3.0)


def test_latency_counts_until_first_audio_even_when_transcript_comes_first() -> None:
    call = Call()
    call.start(now=0.0)
    common = {"response_id": "r", "item_id": "item_1", "output_index": 0, "content_index": 0}
    call.feed(
        "cs", {"type": "response.output_audio_transcript.delta", "delta": "Hello.", **common}, 0.3
    )
    call.feed(
        "cs",
        {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(500)), **common},
        0.9,
    )
    assert call.core.turns[0]["response_latency_s"] == pytest.approx(0.9)


def test_latency_is_measured_when_the_call_starts_at_time_zero() -> None:
    call = Call()
    call.start(now=0.0)
    call.speak("cs", "Hello.", 1000, now=0.8)
    assert call.core.turns[0]["response_latency_s"] == pytest.approx(0.8)


# ------------------------------------------------------------------------------ barge-in


def _stream(call: Call, agent: str, item_id: str, sentences: list[tuple[str, int]]) -> list:
    """A server that sends each sentence's transcript delta just before its audio."""
    common = {"response_id": "r", "item_id": item_id, "output_index": 0, "content_index": 0}
    effects = []
    for i, (sentence, ms) in enumerate(sentences):
        delta = sentence if i == 0 else " " + sentence
        effects += call.feed(
            agent, {"type": "response.output_audio_transcript.delta", "delta": delta, **common}
        )
        for _ in range(ms // 200):
            effects += call.feed(
                agent,
                {
                    "type": "response.output_audio.delta",
                    "delta": p.encode_audio(pcm(200)),
                    **common,
                },
            )
    return effects


def test_barge_in_cuts_the_agent_and_keeps_only_the_words_said_before_the_cut() -> None:
    call = Call(interrupt_probability=1.0, seed=3)
    call.start()
    call.speak("cs", "Hello, First Bank.", 1000)  # nobody interrupts the greeting
    call.done("cs")
    call.speak("caller", "I lost my card.", 1000)
    call.done("caller")
    # The agent's next message: 6 s of a first sentence, then 6 s of a slow second one that
    # the server had already sent when our cancel reached it.
    first = "aa bb cc dd ee ff gg hh ii jj kk ll"
    effects = _stream(call, "cs", "item_cs", [(first, 6000), ("more", 6000)])
    assert send_types(effects, "cs") == ["response.cancel"]
    assert send_types(effects, "caller")[-2:] == ["input_audio_buffer.commit", "response.create"]
    turn = call.core.turns[2]
    assert turn["interrupted"]
    # The agent stops where the caller stopped hearing it: everything forwarded to the caller.
    heard_bytes = sum(
        p.b64_decoded_size(e["audio"])
        for e in sends(effects, "caller")
        if e["type"] == "input_audio_buffer.append"
    )
    cut_s = p.pcm16_duration_s(heard_bytes)
    assert 1.5 <= cut_s <= 4.2
    cs_audio = sum(len(e.pcm16) for e in effects if isinstance(e, PlaceAudio) and e.speaker == "cs")
    assert p.pcm16_duration_s(cs_audio) == pytest.approx(cut_s)  # nothing after it recorded

    effects = call.feed("cs", Call.message_done("item_cs", first + " more"))
    [truncate] = [e for e in sends(effects, "cs") if e["type"] == "conversation.item.truncate"]
    assert truncate["audio_end_ms"] == int(cut_s * 1000)
    # Only words of the first sentence, in proportion to its 6 s of audio.
    said = first.split()[: round(len(first.split()) * cut_s / 6.0)]
    assert turn["text"].split()[:-1] == said[:-1]
    assert abs(len(turn["text"].split()) - len(said)) <= 1
    assert "more" not in turn["text"]
    assert turn["planned_text"] == first + " more"
    assert turn["end_s"] == pytest.approx(turn["start_s"] + cut_s, abs=0.001)

    # The caller's voice starts 0.4 s before the agent stops, whatever its engine's measured
    # latency (0.7 s of wall time here).
    common = {"response_id": "rc", "item_id": "item_caller", "output_index": 0, "content_index": 0}
    call.feed(
        "caller",
        {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(200)), **common},
        now=0.7,
    )
    caller_turn = call.core.turns[3]
    assert caller_turn["start_s"] == pytest.approx(turn["end_s"] - 0.4, abs=0.001)
    assert caller_turn["response_latency_s"] == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("caller_model", "barge_in_note", "note_sent"),
    [
        ("local-caller", None, False),  # the embedded server's brain reads the flag
        ("gpt-realtime", None, True),  # a hosted model reads prose
        (None, None, True),
        ("local-caller", True, True),
        ("gpt-realtime", False, False),
    ],
)
def test_a_barge_in_is_flagged_in_metadata_and_told_in_prose_only_to_hosted_models(
    caller_model: str | None, barge_in_note: bool | None, note_sent: bool
) -> None:
    call = Call(interrupt_probability=1.0, seed=3, barge_in_note=barge_in_note)
    sessions = {
        "caller": p.session_config(model=caller_model, instructions="You are a caller."),
        "cs": SESSIONS["cs"],
    }
    [first_request] = [e for e in call.start(0.0, sessions) if e.event["type"] == "response.create"]
    assert "response" not in first_request.event  # an ordinary turn carries no flag
    call.speak("cs", "Hello, First Bank.", 1000)
    call.done("cs")
    call.speak("caller", "I lost my card.", 1000)
    call.done("caller")
    effects = _stream(call, "cs", "item_cs", [("aa bb cc dd ee ff gg hh", 6000)])
    [create] = [e for e in sends(effects, "caller") if e["type"] == "response.create"]
    assert create["response"]["metadata"] == {p.BARGE_IN_METADATA_KEY: "1"}
    if note_sent:
        assert create["response"]["instructions"] == "You are a caller." + BARGE_IN_NOTE
    else:
        assert "instructions" not in create["response"]


def _interrupted_reply(rest_got_out: bool) -> tuple[Call, list]:
    """The agent says two sentences and calls a tool; the caller cuts into the first.
    ``rest_got_out``: the server had sent the rest of the response before our cancel landed."""
    call = Call(interrupt_probability=1.0, seed=3)
    call.core._plan_interruption = lambda side, index: None if index == 0 else 2.3
    call.start()
    call.speak("cs", "Hello, First Bank.", 1000)
    call.done("cs")
    call.speak("caller", "I lost my card.", 1000)
    call.done("caller")
    response_id = call.created("cs")
    common = {"response_id": response_id, "item_id": "item_cs"}
    sentences = [("aa bb cc dd ee ff gg hh ii jj kk ll", 2400), ("mm nn oo pp", 2000)]
    effects = []
    for i, (sentence, ms) in enumerate(sentences if rest_got_out else sentences[:1]):
        delta = {"type": "response.output_audio_transcript.delta", "delta": " " * i + sentence}
        effects += call.feed("cs", {**delta, **common, "output_index": 0, "content_index": 0})
        for _ in range(ms // 200):
            audio = {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(200))}
            effects += call.feed("cs", {**audio, **common, "output_index": 0, "content_index": 0})
    if rest_got_out:
        item = {
            "id": "item_fc",
            "type": "function_call",
            "call_id": "call_1",
            "name": "order_replacement_card",
            "arguments": "{}",
        }
        done = {"type": "response.output_item.done", "response_id": response_id, "item": item}
        effects += call.feed("cs", {**done, "output_index": 1})
    status = "completed" if rest_got_out else "cancelled"
    effects += call.feed(
        "cs", {"type": "response.done", "response": {"id": response_id, "status": status}}
    )
    return call, effects


def test_where_an_interrupted_agent_stops_does_not_depend_on_when_the_cancel_landed() -> None:
    cancelled_first, _ = _interrupted_reply(rest_got_out=False)
    rest_first, effects = _interrupted_reply(rest_got_out=True)
    a, b = cancelled_first.core.turns[2], rest_first.core.turns[2]
    assert a["interrupted"] and b["interrupted"]
    assert a["text"] == b["text"] and a["end_s"] == b["end_s"]
    assert "mm" not in b["text"] and b["text"].startswith("aa bb")
    truncates = [e for e in sends(effects, "cs") if e["type"] == "conversation.item.truncate"]
    assert [t["audio_end_ms"] for t in truncates] == [round((a["end_s"] - a["start_s"]) * 1000)]


def test_a_tool_called_after_the_caller_cut_in_is_dropped_and_deleted_from_the_agent() -> None:
    cancelled_first, _ = _interrupted_reply(rest_got_out=False)
    rest_first, effects = _interrupted_reply(rest_got_out=True)
    assert cancelled_first.tools.calls == rest_first.tools.calls == []
    assert rest_first.core.tool_calls == []
    deletes = [e for e in sends(effects, "cs") if e["type"] == "conversation.item.delete"]
    assert [d["item_id"] for d in deletes] == ["item_fc"]


def test_a_model_the_server_does_not_serve_ends_the_call_with_the_servers_message() -> None:
    call = Call()
    call.start()
    message = "Invalid value: 'gpt-realtime'. supported values are: 'local-caller', 'local-cs'."
    error = {"type": "invalid_request_error", "code": "invalid_value", "param": "model"}
    effects = call.feed("caller", {"type": "error", "error": {**error, "message": message}})
    [end] = [e for e in effects if isinstance(e, EndCall)]
    assert (end.status, end.end_reason) == ("error", "service_error")
    assert "'gpt-realtime'" in (end.error or "") and "'local-caller'" in (end.error or "")


# ------------------------------------------------------------------------------ server answers


def test_the_first_response_waits_until_both_sessions_are_confirmed() -> None:
    call = Call()
    effects = call.core.start(SESSIONS, 0.0)
    assert send_types(effects) == ["session.update", "session.update"]
    assert all("model" not in e["session"] for e in sends(effects))  # the URL names it
    cs_echo = {"type": "session.updated", "session": SESSIONS["cs"].dump()}
    assert call.feed("cs", cs_echo, 0.1) == []
    caller_echo = {"type": "session.updated", "session": SESSIONS["caller"].dump()}
    assert send_types(call.feed("caller", caller_echo, 0.2), "cs") == ["response.create"]


def test_an_error_answering_session_update_ends_the_call_before_any_response() -> None:
    call = Call()
    [caller_update, _] = sends(call.core.start(SESSIONS, 0.0))
    error = {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_value",
            "message": "Invalid value: 'robot'.",
            "param": "session.audio.output.voice",
            "event_id": caller_update["event_id"],
        },
    }
    effects = call.feed("caller", error)
    end = ending(effects)
    assert end is not None and (end.status, end.end_reason) == ("error", "session_rejected")
    assert "invalid_value" in (end.error or "")
    assert "response.create" not in send_types(effects)
    assert call.feed("cs", {"type": "session.updated", "session": SESSIONS["cs"].dump()}) == []


def test_a_session_that_does_not_hold_what_was_asked_ends_the_call() -> None:
    call = Call()
    call.core.start(SESSIONS, 0.0)
    echo = SESSIONS["cs"].dump()
    echo["audio"]["input"]["turn_detection"] = {"type": "server_vad"}  # the service's default
    echo["tools"] = []
    end = ending(call.feed("cs", {"type": "session.updated", "session": echo}))
    assert end is not None and end.end_reason == "session_rejected"
    assert "turn_detection" in (end.error or "")


def test_a_failed_transcription_marks_the_turn_and_lets_the_call_end() -> None:
    call = Call()
    call.start()
    call.speak("cs", "Hello, First Bank.", 1000)
    call.done("cs")
    call.feed("caller", {"type": "input_audio_buffer.committed", "item_id": "heard_1"})
    call.core._end("completed", "max_turns")  # the call is ending: it waits for what was heard
    failed = {
        "type": "conversation.item.input_audio_transcription.failed",
        "item_id": "heard_1",
        "content_index": 0,
        "error": {"type": "transcription_error", "code": "audio_unintelligible", "message": "?"},
    }
    effects = call.feed("caller", failed)
    [update] = [e for e in effects if isinstance(e, UpdateTurn)]
    assert update.fields == {"heard": None, "heard_error": "audio_unintelligible: ?"}
    assert ending(effects) is not None  # nothing waits for a transcription that failed
    assert call.core.transcription_failures[0]["turn_index"] == 0


def test_an_incomplete_response_is_recorded_with_its_reason_and_the_call_goes_on() -> None:
    call = Call()
    call.start()
    call.speak("cs", "Hello, First", 1000)
    details = {"type": "incomplete", "reason": "max_output_tokens"}
    effects = call.done("cs", status="incomplete", status_details=details)
    assert call.core.response_issues == [
        {"agent": "cs", "response_id": "r", "status": "incomplete", "reason": "max_output_tokens"}
    ]
    assert call.core.turns[0]["response_reason"] == "max_output_tokens"
    assert send_types(effects, "caller")[-1] == "response.create"  # the caller's turn


def test_usage_counts_cached_text_audio_and_transcription_apart() -> None:
    call = Call()
    call.start()
    usage = {
        "input_tokens": 10,
        "input_token_details": {
            "text_tokens": 4,
            "audio_tokens": 6,
            "cached_tokens": 5,
            "cached_tokens_details": {"text_tokens": 2, "audio_tokens": 3},
        },
    }
    call.done("cs", usage=usage)
    heard = {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": "x",
        "transcript": "hi",
        "usage": {"type": "duration", "seconds": 2.5},
    }
    call.feed("cs", heard)
    assert call.core.usage()["cs"] == {
        "input_tokens": 10,
        "input_text_tokens": 4,
        "input_audio_tokens": 6,
        "input_cached_tokens": 5,
        "input_cached_text_tokens": 2,
        "input_cached_audio_tokens": 3,
        "transcription_seconds": 2.5,
    }


# ------------------------------------------------------------------------------ the agent's own VAD

VAD = {"type": "server_vad", "silence_duration_ms": 500}
VAD_SESSIONS = {
    "caller": SESSIONS["caller"],
    "cs": p.session_config(instructions="You are a bank agent.", voice="coral", turn_detection=VAD),
}


def appended_s(effects: list, agent: str = "cs") -> float:
    """Seconds of audio appended to ``agent``'s input."""
    return sum(
        p.pcm16_duration_s(p.decode_audio(e["audio"]))
        for e in sends(effects, agent)
        if e["type"] == "input_audio_buffer.append"
    )


def vad_call(**settings: Any) -> Call:
    call = Call(**settings)
    call.start(sessions=VAD_SESSIONS)
    return call


def say(call: Call, agent: str, text: str, ms: int, now: float, *, done: bool = True) -> list:
    """A whole response of ``agent`` (created, 200 ms audio chunks, message done, done)."""
    response_id = call.created(agent, now)
    item_id = call.new_id("item")
    common = {"response_id": response_id, "item_id": item_id, "output_index": 0}
    effects = []
    for _ in range(ms // 200):
        audio = {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(200))}
        effects += call.feed(agent, {**audio, **common, "content_index": 0}, now)
    message_done = {**Call.message_done(item_id, text), "response_id": response_id}
    effects += call.feed(agent, message_done, now)
    if done:
        event = {"type": "response.done", "response": {"id": response_id, "status": "completed"}}
        effects += call.feed(agent, event, now)
    return effects


def agent_hears(call: Call, start_ms: int, end_ms: int, transcript: str, now: float = 0.0) -> list:
    """The agent's VAD finds speech, commits it at the pause, and it is transcribed."""
    item_id = call.new_id("vad")
    effects = call.feed(
        "cs",
        {
            "type": "input_audio_buffer.speech_started",
            "audio_start_ms": start_ms,
            "item_id": item_id,
        },
        now,
    )
    for kind, extra in (
        ("input_audio_buffer.speech_stopped", {"audio_end_ms": end_ms}),
        ("input_audio_buffer.committed", {}),
    ):
        effects += call.feed("cs", {"type": kind, "item_id": item_id, **extra}, now)
    heard = {
        "type": "conversation.item.input_audio_transcription.completed",
        "item_id": item_id,
        "content_index": 0,
        "transcript": transcript,
    }
    return effects + call.feed("cs", heard, now)


def test_an_agent_with_its_own_vad_hears_a_continuous_line_and_answers_by_itself() -> None:
    call = Call()
    effects = call.start(sessions=VAD_SESSIONS)
    # The caller speaks first: the agent answers speech; it is never asked.
    assert [(e.agent, e.event["type"]) for e in effects if isinstance(e, Send)] == [
        ("caller", "session.update"),
        ("cs", "session.update"),
        ("caller", "response.create"),
    ]
    assert sends(effects, "cs")[0]["session"]["audio"]["input"]["turn_detection"] == VAD
    effects = say(call, "caller", "I lost my card.", 1000, now=0.3)
    # Silence up to where its words start (0.3 s), its words, then the pause its VAD waits for
    # (500 ms and two frames): nothing committed, no response asked of the agent.
    assert set(send_types(effects, "cs")) == {"input_audio_buffer.append"}
    assert appended_s(effects) == pytest.approx(0.3 + 1.0 + 0.52)
    caller_turn = call.core.turns[0]
    assert (caller_turn["start_s"], caller_turn["end_s"]) == (0.3, 1.3)
    # What the agent heard comes from its own transcription of what its VAD committed.
    effects = agent_hears(call, 300, 1300, "i lost my card", now=0.4)
    assert [e.fields for e in effects if isinstance(e, UpdateTurn)] == [{"heard": "i lost my card"}]
    # Its answer, which it decided to give: timed from the end of the caller's words (the pause
    # its VAD waited for, then 1.2 s of wall time it took).
    effects = say(call, "cs", "I can help.", 1000, now=1.5)
    answer = call.core.turns[1]
    assert answer["start_s"] == pytest.approx(1.3 + 0.52 + 1.2)
    assert answer["response_latency_s"] == pytest.approx(0.52 + 1.2)
    assert send_types(effects, "cs") == []
    # The caller hears it as always (its input is committed), and is asked to answer.
    assert send_types(effects, "caller")[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert call.core.turn_taking() == {"agent": "server_vad", "first_speaker": "caller"}


@pytest.mark.parametrize("pace", ["fast", "realtime"])
def test_silence_flows_at_wall_clock_rate_until_the_agent_answers(pace: str) -> None:
    call = vad_call(pace=pace)
    burst = appended_s(say(call, "caller", "I lost my card.", 1000, now=0.0))
    assert burst == pytest.approx(1.0 + (0.52 if pace == "fast" else 0.0))
    # 0.5 s later the line has carried 0.5 s more of silence, in 0.2 s chunks, each sent as
    # it begins (as paced audio is).
    flowed = call.core.on_tick(0.5)
    assert appended_s(flowed) == pytest.approx(0.6)
    assert call.core.on_tick(0.5) == []
    say(call, "cs", "Sure.", 400, now=0.9)
    if pace == "fast":  # its talk takes no wall time: silence under it comes with the next words
        assert call.core.on_tick(5.0) == []
    else:  # a real line carries silence while it talks
        assert appended_s(call.core.on_tick(1.3)) > 0


def _cut_in_reply(*, finished_first: bool, interrupt_response: bool = True) -> tuple[Call, list]:
    """The agent says 3 s and 2 s of speech and calls a tool; the caller cuts in 2.0 s into it.
    ``finished_first``: its server had sent everything before the caller's voice reached it."""
    vad = {**VAD, "interrupt_response": interrupt_response}
    sessions = {**VAD_SESSIONS, "cs": p.session_config(instructions="A.", turn_detection=vad)}
    call = Call(interrupt_probability=1.0, seed=3)
    call.start(sessions=sessions)
    call.core._plan_interruption = lambda side, index: None if index == 0 else 2.0
    say(call, "caller", "I lost my card.", 1000, now=0.0)
    agent_hears(call, 0, 1000, "i lost my card")
    response_id = call.created("cs", 1.0)
    common = {"response_id": response_id, "item_id": "item_cs", "output_index": 0}
    effects = []
    for i, (sentence, ms) in enumerate([("aa bb cc dd ee ff", 3000), ("gg hh", 2000)]):
        delta = {"type": "response.output_audio_transcript.delta", "delta": " " * i + sentence}
        effects += call.feed("cs", {**delta, **common, "content_index": 0}, 1.0)
        for _ in range(ms // 200):
            audio = {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(200))}
            effects += call.feed("cs", {**audio, **common, "content_index": 0}, 1.0)
    item = {
        "id": "item_fc",
        "type": "function_call",
        "call_id": "call_1",
        "name": "order_card",
        "arguments": "{}",
    }
    tail = [
        {**Call.message_done("item_cs", "aa bb cc dd ee ff gg hh"), "response_id": response_id},
        {"type": "response.output_item.done", "response_id": response_id, "item": item},
    ]
    if finished_first:
        for event in tail:
            effects += call.feed("cs", event, 1.0)
        done = {"id": response_id, "status": "completed"}
        effects += call.feed("cs", {"type": "response.done", "response": done}, 1.0)
    agent = call.core.turns[1]
    # The caller's voice starts where it stopped listening; its first sound is 60 ms in.
    caller_start = agent["start_s"] + 2.0
    effects += say(call, "caller", "Yes, yes.", 1000, now=1.5, done=False)
    started_ms = round((caller_start + 0.06) * 1000)
    heard = {"type": "input_audio_buffer.speech_started", "audio_start_ms": started_ms}
    effects += call.feed("cs", {**heard, "item_id": "vad_x"}, 1.6)
    if not finished_first:  # its server stops it (turn_detected) at once
        for event in tail:
            effects += call.feed("cs", event, 1.6)
        details = {"type": "cancelled", "reason": "turn_detected"}
        done = {"id": response_id, "status": "cancelled", "status_details": details}
        effects += call.feed("cs", {"type": "response.done", "response": done}, 1.6)
    return call, effects


@pytest.mark.parametrize("finished_first", [True, False])
def test_when_the_caller_cuts_in_the_agents_own_vad_decides_where_it_stops(
    finished_first: bool,
) -> None:
    call, effects = _cut_in_reply(finished_first=finished_first)
    agent, caller = call.core.turns[1], call.core.turns[2]
    assert caller["start_s"] == pytest.approx(agent["start_s"] + 2.0)
    # Never cancelled by us: it stops 0.4 s after its VAD placed the caller's first sound.
    assert "response.cancel" not in send_types(effects, "cs")
    assert agent["interrupted"] and call.core.interruptions == 1
    assert agent["end_s"] == pytest.approx(caller["start_s"] + 0.06 + 0.4, abs=0.001)
    cs_audio = sum(len(e.pcm16) for e in effects if isinstance(e, PlaceAudio) and e.speaker == "cs")
    assert p.pcm16_duration_s(cs_audio) == pytest.approx(2.46, abs=0.001)
    # The caller stopped listening when it cut in: it heard 2.0 s.
    assert appended_s(effects, "caller") == pytest.approx(2.0)
    # The words of its first sentence in proportion to the 2.46 s of its 3 s it got out.
    assert agent["text"] == "aa bb cc dd ee" and agent["planned_text"] == "aa bb cc dd ee ff gg hh"
    [truncate] = [e for e in sends(effects, "cs") if e["type"] == "conversation.item.truncate"]
    assert truncate["audio_end_ms"] == 2460
    # Its tool call came after the cut: it never happened, in the agent's memory either.
    deletes = [
        e["item_id"] for e in sends(effects, "cs") if e["type"] == "conversation.item.delete"
    ]
    assert deletes == ["item_fc"] and call.tools.calls == []
    assert "response.create" not in send_types(effects, "cs")  # the caller has the turn
    if not finished_first:
        assert agent["response_reason"] == "turn_detected"


def test_the_same_cut_whether_its_server_finished_first_or_stopped_it() -> None:
    a, _ = _cut_in_reply(finished_first=True)
    b, _ = _cut_in_reply(finished_first=False)
    keys = ("text", "start_s", "end_s", "interrupted")
    assert [a.core.turns[1][k] for k in keys] == [b.core.turns[1][k] for k in keys]


def test_an_agent_whose_vad_does_not_interrupt_it_talks_on_over_the_caller() -> None:
    call, effects = _cut_in_reply(finished_first=True, interrupt_response=False)
    agent = call.core.turns[1]
    assert not agent["interrupted"] and call.core.interruptions == 0
    assert agent["end_s"] == pytest.approx(agent["start_s"] + 5.0)
    assert [name for _, name, _ in call.tools.calls] == ["order_card"]
    # The caller already has the turn: it is not asked again, nor is the agent to go on.
    assert call.core.sides["caller"].deferred_request_at_s is None
    assert send_types(effects, "cs").count("response.create") == 0


def test_an_answer_begun_in_a_pause_and_dropped_is_no_turn() -> None:
    call = vad_call()
    say(call, "caller", "I lost my card.", 1000, now=0.0)
    response_id = call.created("cs", 0.1)  # its VAD took a pause for the end...
    details = {"type": "cancelled", "reason": "turn_detected"}
    done = {"id": response_id, "status": "cancelled", "status_details": details}
    effects = call.feed("cs", {"type": "response.done", "response": done}, 0.2)  # ...not so
    assert sends(effects) == [] and ending(effects) is None
    assert call.core.empty_responses == 0 and call.core.response_issues == []


def test_one_utterance_its_vad_split_at_a_long_pause_is_heard_whole() -> None:
    call = vad_call()
    say(call, "caller", "Look, I lost my card.", 2000, now=0.0)
    agent_hears(call, 0, 600, "look")
    agent_hears(call, 1200, 2000, "i lost my card")
    assert call.core.turns[0]["heard"] == "look i lost my card"


def test_the_end_waits_for_the_agent_to_hear_the_callers_last_words() -> None:
    call = vad_call()
    say(call, "caller", "I lost my card.", 1000, now=0.0)
    agent_hears(call, 0, 1000, "i lost my card")
    say(call, "cs", "Done. Goodbye.", 1000, now=1.0)
    call.hear("caller", "done goodbye")
    response_id = call.created("caller", 2.0)
    common = {"response_id": response_id, "item_id": "item_bye", "output_index": 0}
    audio = {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(600))}
    call.feed("caller", {**audio, **common, "content_index": 0}, 2.0)
    call.feed("caller", {**Call.message_done("item_bye", "Bye."), "response_id": response_id})
    call.call_tool("caller", "end_call", {})
    event = {"type": "response.done", "response": {"id": response_id, "status": "completed"}}
    assert ending(call.feed("caller", event, 2.0)) is None  # its VAD has not committed it yet
    # It answers the goodbye: that is after the caller hung up, and not recorded.
    late = call.created("cs", 2.1)
    audio = {"type": "response.output_audio.delta", "delta": p.encode_audio(pcm(200))}
    assert call.feed("cs", {**audio, "response_id": late, "item_id": "late"}, 2.2) == []
    end = ending(agent_hears(call, 3000, 3600, "bye", now=2.3))
    assert end is not None and end.end_reason == "caller_hung_up"
    assert call.core.turns[-1]["heard"] == "bye" and len(call.core.turns) == 3


def test_the_agent_goes_on_after_its_tools_when_asked_as_vad_clients_do() -> None:
    call = vad_call()
    say(call, "caller", "I lost my card.", 1000, now=0.0)
    response_id = call.created("cs", 1.0)
    call.call_tool("cs", "verify_customer", {"full_name": "Ann"})
    event = {"type": "response.done", "response": {"id": response_id, "status": "completed"}}
    effects = call.feed("cs", event, 1.0)
    assert send_types(effects, "cs") == ["conversation.item.create", "response.create"]


def test_a_kept_agent_session_gets_no_update_and_is_reported_as_the_servers() -> None:
    call = Call(agent_session="keep")
    effects = call.core.start(SESSIONS, 0.0)
    assert [(e.agent, e.event["type"]) for e in effects] == [("caller", "session.update")]
    own = {
        "instructions": "I am the deployed agent.",
        "tool_choice": "auto",
        **VAD_SESSIONS["cs"].dump(),
    }
    own["instructions"] = "I am the deployed agent."
    effects = call.feed("cs", {"type": "session.created", "session": {"id": "s1", **own}}, 0.1)
    assert effects == []  # ready; the caller's session is not confirmed yet
    echo = {"type": "session.updated", "session": SESSIONS["caller"].dump()}
    effects = call.feed("caller", echo, 0.2)
    assert [(e.agent, e.event["type"]) for e in sends_of(effects)] == [
        ("caller", "response.create")
    ]
    report = call.core.session_report("cs")
    assert report is not None and report["reported_by"] == "session.created"
    assert report["session"]["instructions"] == "I am the deployed agent."
    assert set(report["source"].values()) == {"server"} and "id" not in report["source"]
    assert call.core.turn_taking() == {"agent": "server_vad", "first_speaker": "caller"}


def sends_of(effects: list) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def test_our_settings_are_reported_as_ours_and_the_servers_defaults_as_its() -> None:
    call = vad_call()
    report = call.core.session_report("cs")
    assert report is not None and report["reported_by"] == "session.updated"
    assert report["source"]["instructions"] == "ours"
    assert report["source"]["audio.input.turn_detection.type"] == "ours"
    assert call.core.session_report("caller")["source"]["audio.input.turn_detection"] == "ours"
    echo = VAD_SESSIONS["cs"].dump()
    echo["audio"]["input"]["turn_detection"] = {**VAD, "threshold": 0.5}
    call = Call()
    call.core.start(VAD_SESSIONS, 0.0)
    call.feed("cs", {"type": "session.updated", "session": {**echo, "max_output_tokens": "inf"}})
    source = call.core.session_report("cs")["source"]
    assert source["audio.input.turn_detection.threshold"] == "server"
    assert source["max_output_tokens"] == "server"


def test_a_server_that_drops_the_agents_vad_is_refused() -> None:
    call = Call()
    call.core.start(VAD_SESSIONS, 0.0)
    echo = VAD_SESSIONS["cs"].dump()
    echo["audio"]["input"]["turn_detection"] = None
    end = ending(call.feed("cs", {"type": "session.updated", "session": echo}))
    assert end is not None and end.end_reason == "session_rejected"
    assert "server_vad is not on" in (end.error or "")
