"""The call as a state machine, without I/O: turns, routing, tools, timeline and end conditions.

:class:`CallCore` is fed ``(agent, server_event, now_s)`` and returns *effects*: client events to
send to an agent, audio and transcript entries for the recorder, tool calls to log, and the end
of the call. :class:`dualagent.call.bridge.DualAgentBridge` only pumps two websockets through it, so
every turn-taking rule here is unit-tested without sockets.

Timeline: each utterance is placed at a *virtual* start time, the end of what was said before
plus the measured response latency (the wall time from our ``response.create`` to the first
audio), so the stereo recording sounds like the call would have sounded live.

The effects are defined in :mod:`dualagent.call.effects` (imported here too); what servers
answer that must be checked or counted (session echoes, usage, incomplete responses) in
:mod:`dualagent.call.answers`.
"""

from __future__ import annotations

import json
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from dualagent.call.answers import (
    add_response_usage,
    add_transcription_usage,
    response_issue,
    session_mismatches,
)
from dualagent.call.effects import (
    AGENTS,
    AddTurn,
    Agent,
    Effect,
    EndCall,
    Flush,
    Log,
    LogToolCall,
    PlaceAudio,
    RunTools,
    Send,
    ToolCallRequest,
    ToolOutput,
    UpdateTurn,
)
from dualagent.call.line import LineChannel, LineModel
from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.local.brains.registry import is_registered as is_local_brain
from dualagent.realtime.truncation import SpokenAlignment, spoken_fraction

Route = Literal["audio", "text"]

MIN_COMMIT_BYTES = 2 * p.SAMPLE_RATE_HZ // 10  # the protocol refuses commits under 100 ms
BARGE_IN_WINDOW_S = (1.5, 4.0)  # how far into an agent utterance an interrupting caller starts
# Chance per agent utterance = the persona's tendency_to_interrupt times this.
BARGE_IN_SCALE = 1.0
BARGE_IN_OVERLAP_S = 0.4  # the agent keeps talking this long over the caller before it stops
BARGE_IN_NOTE = (
    "\n\nRight now you are cutting in while the agent is still talking: say something short "
    "that moves the call along."
)
"""Added to the caller's instructions when it cuts in, for models that read only prose. The
flag itself travels as ``response.metadata`` (:data:`dualagent.realtime.protocol.
BARGE_IN_METADATA_KEY`), which the embedded server's brains read."""
WORDS_PER_SECOND = 2.6  # text route: estimated speaking time at speed 1.0


def other(agent: Agent) -> Agent:
    return "cs" if agent == "caller" else "caller"


# ------------------------------------------------------------------------------ configuration


@dataclass
class CallSettings:
    route: Route = "audio"
    max_turns: int = 15
    max_duration_s: float = 300.0
    first_speaker: Agent = "cs"
    speaking_rate: dict[str, float] = field(default_factory=lambda: {"caller": 1.0, "cs": 1.0})
    line: LineModel = field(default_factory=LineModel)
    # The caller's tendency to interrupt: chance that it barges into a CS utterance.
    interrupt_probability: float = 0.0
    seed: int = 0
    # Add BARGE_IN_NOTE to the instructions of a barge-in response: None decides by the caller's
    # model (yes for a hosted model, no for a brain of the embedded server, which reads the
    # structured flag); True/False force it.
    barge_in_note: bool | None = None
    # Tools whose successful execution ends the call, with the end_reason they give.
    ending_tools: dict[str, str] = field(
        default_factory=lambda: {
            "transfer_to_human": "transferred_to_human",
            "end_call": "hang_up",
        }
    )


@dataclass
class _Utterance:
    turn_index: int
    item_id: str
    response_id: str
    start_s: float
    audio_bytes: int = 0
    final_text: str | None = None  # from transcript.done / text.done, when it came
    interrupt_at_s: float | None = None  # offset where the caller will barge in
    cut_at_s: float | None = None  # offset after which this utterance's audio is dropped
    interrupted: bool = False
    received_bytes: int = 0  # all audio the agent sent for it, including what was cut off
    # The transcript deltas, and where each arrived in the audio (to place a cut's words).
    alignment: SpokenAlignment = field(default_factory=SpokenAlignment)

    @property
    def text(self) -> str:
        return self.final_text if self.final_text is not None else self.alignment.text


@dataclass
class _Side:
    agent: Agent
    session_ready: bool = False
    response_id: str | None = None
    requested_at_s: float | None = None  # wall time of our response.create
    utterance: _Utterance | None = None
    spoke_in_response: bool = False
    pending_tool_calls: list[ev.Item] = field(default_factory=list)
    appended_bytes: int = 0  # input audio not yet committed
    commits_waiting: deque[int] = field(default_factory=deque)  # turn index per commit sent
    heard_items: dict[str, int] = field(default_factory=dict)  # input item id -> turn index
    usage: dict[str, Any] = field(default_factory=dict)
    asked_session: p.SessionConfig | None = None  # what our session.update asked for
    response_active: bool = False  # between response.created and response.done
    deferred_request_at_s: float | None = None  # response.create waiting for the active one
    cancelled_response_id: str | None = None  # a response we cancelled on barge-in
    barge_in_from_s: float | None = None  # next utterance starts from here, not timeline end
    pending_text: dict[str, str] = field(default_factory=dict)  # transcript before its audio
    # Function calls handed to the pump (RunTools) whose outputs have not come back yet, and
    # whether their response had been cancelled (then the turn is already the other side's).
    running_tools: list[ev.Item] = field(default_factory=list)
    running_after_cancel: bool = False


class CallCore:
    """Turn-taking, routing and end conditions for one call between a caller and a CS agent."""

    def __init__(self, settings: CallSettings) -> None:
        self.settings = settings
        self.sides: dict[Agent, _Side] = {a: _Side(a) for a in AGENTS}
        self.timeline_s = 0.0  # end of the last utterance on the virtual timeline
        self.turns: list[dict[str, Any]] = []  # one per utterance (message item)
        self.speaker_turns = 0  # conversation turns: runs of utterances by one speaker
        self.tool_calls: list[dict[str, Any]] = []
        self.latencies_s: list[float] = []
        self.ending: EndCall | None = None
        self.ended = False
        self.empty_responses = 0
        self.errors: list[dict[str, Any]] = []
        self.rng = random.Random(f"{settings.seed}:barge-in")
        self.lines: dict[Agent, LineChannel] = {
            agent: settings.line.channel(seed=settings.seed * 2 + i)
            for i, agent in enumerate(AGENTS)
        }
        self.interruptions = 0
        self.instructions: dict[Agent, str] = {}
        self.models: dict[Agent, str | None] = {}
        self.started_at_s: float | None = None  # when the first response was asked for
        self.response_issues: list[dict[str, Any]] = []  # incomplete / server-cancelled
        self.transcription_failures: list[dict[str, Any]] = []
        self.rate_limits: dict[Agent, list[dict[str, Any]]] = {}  # the latest, per agent

    # ------------------------------------------------------------------ start

    def start(self, sessions: dict[Agent, p.SessionConfig], now_s: float) -> list[Effect]:
        """Configure both sessions; the first speaker is asked to begin once both servers have
        confirmed their session (``session.updated``, checked against what was asked).

        The model is not sent: the URL names it, and a GA session cannot change it.
        """
        self.instructions = {agent: sessions[agent].instructions or "" for agent in AGENTS}
        self.models = {agent: sessions[agent].model for agent in AGENTS}
        effects: list[Effect] = []
        for agent in AGENTS:
            self.sides[agent].asked_session = sessions[agent]
            session = sessions[agent].model_copy(update={"model": None})
            update = p.SessionUpdate(event_id=session_update_id(agent), session=session)
            effects.append(Send(agent, update.dump()))
        return effects

    # ------------------------------------------------------------------ events

    def on_event(
        self, agent: Agent, event: ev.ServerEvent | dict[str, Any], now_s: float
    ) -> list[Effect]:
        """Handle one server event from ``agent`` (a dict is parsed first; unknown types are
        ignored)."""
        if self.ended:
            return []
        if isinstance(event, dict):
            event = ev.parse_server_event(event)
        side = self.sides[agent]
        if isinstance(event, ev.ResponseOutputAudioDelta):
            return self._on_audio(side, event, now_s)
        if isinstance(event, ev.ResponseOutputAudioTranscriptDelta | ev.ResponseOutputTextDelta):
            return self._on_text_delta(side, event, now_s)
        if isinstance(event, ev.ResponseOutputAudioTranscriptDone):
            return self._on_text_done(side, event, event.transcript, now_s)
        if isinstance(event, ev.ResponseOutputTextDone):
            return self._on_text_done(side, event, event.text, now_s)
        if isinstance(event, ev.ResponseOutputItemDone):
            return self._on_item_done(side, event.item)
        if isinstance(event, ev.ResponseCreated):
            side.response_id = event.response.id
            side.response_active = True
            return []
        if isinstance(event, ev.ResponseDone):
            return self._on_response_done(side, event.response, now_s)
        if isinstance(event, ev.InputAudioBufferCommitted):
            if side.commits_waiting:
                side.heard_items[event.item_id or ""] = side.commits_waiting.popleft()
            return []
        if isinstance(event, ev.InputAudioTranscriptionCompleted):
            add_transcription_usage(side.usage, event.usage)
            return self._on_heard(side, event)
        if isinstance(event, ev.InputAudioTranscriptionFailed):
            return self._on_heard(side, event)
        if isinstance(event, ev.SessionUpdated):
            return self._on_session_updated(side, event.session, now_s)
        if isinstance(event, ev.ErrorEvent):
            return self._on_error(side, event.error)
        if isinstance(event, ev.RateLimitsUpdated):
            self.rate_limits[agent] = [r.model_dump(exclude_none=True) for r in event.rate_limits]
        return []

    def _on_session_updated(
        self, side: _Side, session: dict[str, Any], now_s: float
    ) -> list[Effect]:
        if side.session_ready or side.asked_session is None:
            return []  # only the answer to our one session.update matters
        problems = session_mismatches(side.asked_session, session)
        if problems:
            return self._end(
                "error",
                "session_rejected",
                f"{side.agent} session does not hold what was asked: {', '.join(problems)}",
                now=True,
            )
        side.session_ready = True
        if self.started_at_s is None and all(s.session_ready for s in self.sides.values()):
            self.started_at_s = now_s
            return self._request_response(self.settings.first_speaker, now_s)
        return []

    def on_disconnect(self, agent: Agent, reason: str, kind: str = "disconnected") -> list[Effect]:
        """The agent's websocket closed (``kind="bad_event"``: it sent what we cannot read)."""
        if self.ended:
            return []
        return self._end(
            "error", f"{agent}_{kind}", f"{agent} connection closed: {reason}", now=True
        )

    def on_timeout(self) -> list[Effect]:
        """Nothing happened for too long (the pump decides how long)."""
        if self.ending is not None:
            return self._finish()
        return self._end("error", "stalled", "no events from either agent", now=True)

    def stop(self, reason: str = "interrupted") -> list[Effect]:
        """The user stopped the call (Ctrl-C, a notebook's Stop button)."""
        return self._end("completed", reason, None, now=True)

    # ------------------------------------------------------------------ speech

    def _current_utterance(self, side: _Side, event: ev.OutputPart, now_s: float) -> _Utterance:
        utterance = side.utterance
        if utterance is None or utterance.item_id != event.item_id:
            requested = side.requested_at_s
            latency = max(0.0, now_s - requested) if requested is not None else 0.0
            side.requested_at_s = None
            if side.barge_in_from_s is not None:  # this utterance interrupts the other side
                # The seeded barge-in point is where the caller's voice starts (its thinking
                # time is part of that draw), so where the agent stops, and which words it
                # got out, do not depend on how busy the machine was.
                start = side.barge_in_from_s
                side.barge_in_from_s = None
            else:
                start = self.timeline_s + latency
            index = len(self.turns)
            if not self.turns or self.turns[-1]["speaker"] != side.agent:
                self.speaker_turns += 1
            utterance = _Utterance(index, event.item_id or "", event.response_id or "", start)
            utterance.interrupt_at_s = self._plan_interruption(side, index)
            side.utterance = utterance
            side.spoke_in_response = True
            self.latencies_s.append(latency)
            turn = {
                "index": index,
                "speaker": side.agent,
                "text": "",
                "heard": None,
                "start_s": round(start, 3),
                "end_s": round(start, 3),
                "interrupted": False,
                "response_latency_s": round(latency, 4),
                "item_id": utterance.item_id,
                "response_id": utterance.response_id,
            }
            self.turns.append(turn)
            return utterance
        return utterance

    def _on_audio(
        self, side: _Side, event: ev.ResponseOutputAudioDelta, now_s: float
    ) -> list[Effect]:
        if self._cancelled_output(side, event):
            return []
        utterance = self._current_utterance(side, event, now_s)
        if side.pending_text:  # the transcript that came before this first audio
            utterance.alignment.add_text(side.pending_text.pop(utterance.item_id, ""), 0.0)
        delta = event.delta
        utterance.received_bytes += p.b64_decoded_size(delta)
        offset_s = p.pcm16_duration_s(utterance.audio_bytes)
        if utterance.cut_at_s is not None and offset_s >= utterance.cut_at_s:
            return []  # the speaker stopped talking here (barge-in)
        pcm = p.decode_audio(delta)
        if not self.settings.line.is_clean:  # what the line does, the listener hears and we record
            pcm = self.lines[side.agent].process(pcm)
            delta = p.encode_audio(pcm)
        at_s = utterance.start_s + offset_s
        utterance.audio_bytes += len(pcm)
        effects: list[Effect] = [PlaceAudio(side.agent, pcm, at_s)]
        if self.settings.route == "audio" and not utterance.interrupted:
            listener = self.sides[other(side.agent)]
            listener.appended_bytes += len(pcm)
            append = {"type": "input_audio_buffer.append", "audio": delta}
            effects.append(Send(listener.agent, append, utterance_offset_s=offset_s))
            end_offset = p.pcm16_duration_s(utterance.audio_bytes)  # the next offset_s, exactly
            if utterance.interrupt_at_s is not None and end_offset >= utterance.interrupt_at_s:
                effects += self._barge_in(side, utterance, end_offset, now_s)
        return effects

    # ------------------------------------------------------------------ barge-in

    def _plan_interruption(self, side: _Side, index: int) -> float | None:
        """Decide, once per CS utterance, whether and when the caller will cut in."""
        chance = self.settings.interrupt_probability * BARGE_IN_SCALE
        if side.agent != "cs" or self.settings.route != "audio" or chance <= 0:
            return None
        draw, when = self.rng.random(), self.rng.uniform(*BARGE_IN_WINDOW_S)
        if index == 0 or draw >= chance:  # nobody interrupts the greeting
            return None
        return when

    def _barge_in(
        self, side: _Side, utterance: _Utterance, heard_until_s: float, now_s: float
    ) -> list[Effect]:
        """The caller talks over the CS agent: cancel, and let the caller speak.

        The agent stops where the caller stopped hearing it: the end of the audio received and
        forwarded so far. Whatever the server streams after that (its next sentence may be
        synthesised before our cancel reaches it, or not) is dropped, so where the agent stops
        and which words it got out do not depend on timing. The caller's voice starts
        ``BARGE_IN_OVERLAP_S`` earlier: both talk at once for that long, as on a phone line.
        """
        utterance.interrupted = True
        utterance.cut_at_s = heard_until_s
        self.turns[utterance.turn_index]["interrupted"] = True
        self.interruptions += 1
        caller = self.sides[other(side.agent)]
        caller.barge_in_from_s = utterance.start_s + max(0.0, heard_until_s - BARGE_IN_OVERLAP_S)
        side.cancelled_response_id = utterance.response_id
        effects: list[Effect] = [
            Log("info", f"caller interrupts the agent at {caller.barge_in_from_s:.1f}s"),
            Send(side.agent, p.ResponseCancel(response_id=utterance.response_id or None).dump()),
        ]
        if caller.appended_bytes >= MIN_COMMIT_BYTES:  # what the caller heard before cutting in
            caller.appended_bytes = 0
            caller.commits_waiting.append(utterance.turn_index)
            effects.append(Send(caller.agent, p.InputAudioBufferCommit().dump()))
        return effects + self._request_response(caller.agent, now_s, barge_in=True)

    def _wants_barge_in_note(self, agent: Agent) -> bool:
        """Whether ``agent``'s model needs the barge-in flag as prose in its instructions."""
        if self.settings.barge_in_note is not None:
            return self.settings.barge_in_note
        return not is_local_brain(self.models.get(agent))

    def _cancelled_output(self, side: _Side, event: ev.OutputPart) -> bool:
        """Output of a response we cancelled, other than the utterance already cut."""
        if side.cancelled_response_id is None or event.response_id != side.cancelled_response_id:
            return False
        return side.utterance is None or event.item_id != side.utterance.item_id

    def _apply_cut(self, utterance: _Utterance, turn: dict[str, Any]) -> None:
        """Shorten an interrupted turn to what was spoken before the cut."""
        assert utterance.cut_at_s is not None
        received_s = p.pcm16_duration_s(utterance.received_bytes)
        turn.setdefault("planned_text", turn["text"])
        planned = turn["planned_text"]
        if utterance.alignment.text.split() == planned.split():
            turn["text"] = utterance.alignment.spoken_before(utterance.cut_at_s, received_s)
        else:  # the final transcript differs from its deltas: spread it over the audio
            turn["text"] = spoken_fraction(planned, utterance.cut_at_s, received_s)
        turn["end_s"] = round(utterance.start_s + utterance.cut_at_s, 3)

    def _truncate_item(self, agent: Agent, utterance: _Utterance) -> Send:
        """Tell the agent's server what the caller actually heard, as a phone line would."""
        heard_ms = int((utterance.cut_at_s or 0.0) * 1000)
        event = p.ConversationItemTruncate(
            item_id=utterance.item_id, content_index=0, audio_end_ms=heard_ms
        )
        return Send(agent, event.dump())

    def _on_text_delta(
        self,
        side: _Side,
        event: ev.ResponseOutputAudioTranscriptDelta | ev.ResponseOutputTextDelta,
        now_s: float,
    ) -> list[Effect]:
        if self._cancelled_output(side, event):
            return []
        if self.settings.route == "audio" and side.utterance is None:
            # Latency runs to the first *audio*: a transcript may come before it is spoken.
            item_id = event.item_id or ""
            side.pending_text[item_id] = side.pending_text.get(item_id, "") + event.delta
            return []
        utterance = self._current_utterance(side, event, now_s)
        received_s = p.pcm16_duration_s(utterance.received_bytes)
        utterance.alignment.add_text(event.delta, received_s)
        return []

    def _on_text_done(
        self, side: _Side, event: ev.OutputPart, text: str | None, now_s: float
    ) -> list[Effect]:
        """The final transcript (audio) or text of a message."""
        utterance = side.utterance
        if utterance is None:
            if self._cancelled_output(side, event):
                return []
            # A message without audio (a text-only reply): it still is a turn.
            side.pending_text.pop(event.item_id or "", None)
            utterance = self._current_utterance(side, event, now_s)
        utterance.final_text = (text or utterance.alignment.text).strip()
        self.turns[utterance.turn_index]["text"] = utterance.text
        return []

    def _on_item_done(self, side: _Side, item: ev.Item) -> list[Effect]:
        if item.type == "function_call":
            if side.cancelled_response_id is not None:
                # Called after the caller cut in: whether it got out before our cancel landed
                # is a race, so it never happened, on our side and in the agent's memory.
                return [
                    Log("info", f"dropped {item.name}() of the interrupted response"),
                    Send(side.agent, p.ConversationItemDelete(item_id=item.id or "").dump()),
                ]
            side.pending_tool_calls.append(item)
            return []
        if item.type == "message" and side.utterance and item.id == side.utterance.item_id:
            return self._close_utterance(side)
        return []

    def _close_utterance(self, side: _Side) -> list[Effect]:
        utterance = side.utterance
        if utterance is None:
            return []
        side.utterance = None
        turn = self.turns[utterance.turn_index]
        if not turn["text"]:  # no transcript.done (the response was cancelled mid-way)
            turn["text"] = utterance.text.strip()
        if utterance.audio_bytes:
            duration = p.pcm16_duration_s(utterance.audio_bytes)
        else:  # text route: estimate how long it would take to say
            rate = self.settings.speaking_rate.get(side.agent, 1.0) or 1.0
            duration = len(utterance.text.split()) / (WORDS_PER_SECOND * rate)
        turn["end_s"] = round(utterance.start_s + duration, 3)
        cut_known = utterance.interrupted and utterance.cut_at_s is not None
        if cut_known:  # keep the words actually spoken before the agent stopped
            self._apply_cut(utterance, turn)
        self.timeline_s = max(self.timeline_s, turn["end_s"])
        effects: list[Effect] = [AddTurn(dict(turn)), Log("turn", turn["text"], side.agent)]
        if cut_known:
            effects.append(self._truncate_item(side.agent, utterance))
        if self.settings.route == "audio":  # the text route has no audio to lay out
            effects.append(Flush(self._safe_flush_point()))
        listener = self.sides[other(side.agent)]
        if self.settings.route == "text":
            turn["heard"] = utterance.text
            effects.append(UpdateTurn(utterance.turn_index, {"heard": utterance.text}))
            item = p.text_message(utterance.text, role="user")
            effects.append(Send(listener.agent, p.ConversationItemCreate(item=item).dump()))
        elif listener.appended_bytes >= MIN_COMMIT_BYTES:
            # Commit now so each utterance is recognised on its own, as its own user item.
            listener.appended_bytes = 0
            listener.commits_waiting.append(utterance.turn_index)
            effects.append(Send(listener.agent, p.InputAudioBufferCommit().dump()))
        return effects

    def _safe_flush_point(self) -> float:
        """Nothing will be placed before this time: the timeline end, or earlier while an
        interrupting utterance (which starts inside the previous one) is open or pending."""
        points = [self.timeline_s]
        for side in self.sides.values():
            if side.utterance is not None:
                points.append(side.utterance.start_s)
            if side.barge_in_from_s is not None:
                points.append(side.barge_in_from_s)
        return min(points)

    def _on_heard(
        self,
        side: _Side,
        event: ev.InputAudioTranscriptionCompleted | ev.InputAudioTranscriptionFailed,
    ) -> list[Effect]:
        """What the listener's server heard, or that its transcription failed (the turn says
        so, ``heard`` stays None, and the call goes on: nothing waits for it any more)."""
        index = side.heard_items.pop(event.item_id or "", None)
        effects: list[Effect] = []
        if isinstance(event, ev.InputAudioTranscriptionFailed):
            error = event.error
            failure = f"{error.code or error.type or 'transcription_failed'}: {error.message}"
            self.transcription_failures.append(
                {
                    "agent": side.agent,
                    "item_id": event.item_id,
                    "turn_index": index,
                    "error": failure,
                }
            )
            effects.append(
                Log("error", f"{side.agent} could not transcribe: {failure}", side.agent)
            )
            if index is not None:
                self.turns[index]["heard_error"] = failure
                effects.append(UpdateTurn(index, {"heard": None, "heard_error": failure}))
        elif index is not None:
            heard = (event.transcript or "").strip()
            self.turns[index]["heard"] = heard
            effects.append(UpdateTurn(index, {"heard": heard}))
        if self.ending is not None and not self._transcriptions_pending():
            effects += self._finish()
        return effects

    # ------------------------------------------------------------------ turns and tools

    def _on_response_done(self, side: _Side, response: ev.Response, now_s: float) -> list[Effect]:
        effects: list[Effect] = []
        if side.utterance is not None:  # a message cut short without output_item.done
            effects += self._close_utterance(side)
        if response.usage is not None:
            add_response_usage(side.usage, response.usage)
        side.response_id = None
        side.response_active = False
        if side.cancelled_response_id is not None and response.id == side.cancelled_response_id:
            # Interrupted: the other side already has the turn. Tools called before still run.
            side.cancelled_response_id = None
            calls, side.pending_tool_calls = side.pending_tool_calls, []
            side.spoke_in_response = False
            if calls:
                return effects + self._run_tools(side, calls, after_cancel=True)
            if self.ending is not None and not self._transcriptions_pending():
                effects += self._finish()
            return effects + self._deferred_request(side)
        issue = response_issue(side.agent, response)
        if issue is not None:  # incomplete (token limit, content filter), or cancelled by it
            self.response_issues.append(issue)
            effects.append(
                Log("error", f"{side.agent} response {issue['status']}: {issue['reason']}")
            )
            for turn in self.turns:
                if turn["response_id"] == response.id and turn["speaker"] == side.agent:
                    fields = {
                        "response_status": issue["status"],
                        "response_reason": issue["reason"],
                    }
                    turn.update(fields)
                    effects.append(UpdateTurn(turn["index"], fields))
        if response.status == "failed":
            details = response.status_details
            error = (details.error if details else None) or ev.ErrorDetails()
            self.errors.append({"agent": side.agent, **error.model_dump(exclude_unset=True)})
            message = error.message or "response failed"
            code = error.code or error.type or "response_failed"
            return effects + self._end(
                "error",
                "response_failed",
                f"{side.agent} response failed ({code}): {message}",
                now=True,
            )
        calls, side.pending_tool_calls = side.pending_tool_calls, []
        spoke, side.spoke_in_response = side.spoke_in_response, False
        if calls:
            return effects + self._run_tools(side, calls, after_cancel=False)
        if self.ending is not None:
            return effects + (self._finish() if not self._transcriptions_pending() else [])
        if not spoke:
            self.empty_responses += 1
            if self.empty_responses >= 2:
                return effects + self._end("completed", "stalled", "both agents stopped talking")
        else:
            self.empty_responses = 0
        if self.speaker_turns >= self.settings.max_turns:
            return effects + self._end("completed", "max_turns")
        if self.timeline_s >= self.settings.max_duration_s:
            return effects + self._end("completed", "duration_limit")
        return effects + self._request_response(other(side.agent), now_s)

    def _run_tools(self, side: _Side, calls: list[ev.Item], *, after_cancel: bool) -> list[Effect]:
        side.running_tools = list(calls)
        side.running_after_cancel = after_cancel
        requests = [
            ToolCallRequest(call.call_id or "", call.name or "", call.arguments or "")
            for call in calls
        ]
        return [RunTools(side.agent, requests)]

    def on_tool_outputs(
        self, agent: Agent, outputs: list[ToolOutput], now_s: float
    ) -> list[Effect]:
        """The outputs of the last :class:`RunTools` for ``agent``, in the order asked: each is
        recorded and sent to the agent, which then goes on with its turn (or the call ends, if a
        tool ended it)."""
        side = self.sides[agent]
        calls, side.running_tools = side.running_tools, []
        if len(outputs) != len(calls):
            raise ValueError(f"{len(calls)} tool calls were running, got {len(outputs)} outputs")
        if self.ended:
            return []
        effects: list[Effect] = []
        for call, output in zip(calls, outputs, strict=True):
            effects += self._tool_done(side, call, output)
        if side.running_after_cancel:  # the other side already has the turn
            if self.ending is not None and not self._transcriptions_pending():
                effects += self._finish()
            return effects + self._deferred_request(side)
        if self.ending is not None:
            return effects + (self._finish() if not self._transcriptions_pending() else [])
        # The agent continues its own turn with the tool outputs.
        return effects + self._request_response(side.agent, now_s)

    def _tool_done(self, side: _Side, call: ev.Item, result: ToolOutput) -> list[Effect]:
        name = call.name or ""
        arguments = call.arguments or ""
        output = result.output
        try:
            parsed_args: Any = json.loads(arguments) if arguments else {}
        except json.JSONDecodeError:
            parsed_args = arguments
        ok = bool(output.get("ok", True))
        record = {
            "call_id": call.call_id,
            "agent": side.agent,
            "name": name,
            "arguments": parsed_args,
            "output": output,
            "ok": ok,
            "duration_ms": round(result.duration_ms, 3),
            "t_s": round(self.timeline_s, 3),
            "turn_index": len(self.turns) - 1,
        }
        self.tool_calls.append(record)
        shown = (
            ", ".join(f"{k}={v!r}" for k, v in parsed_args.items())
            if isinstance(parsed_args, dict)
            else arguments
        )
        effects: list[Effect] = [
            LogToolCall(record),
            Log(
                "tool",
                f"{name}({shown}) -> {'ok' if ok else output.get('error', 'error')}",
                side.agent,
            ),
            Send(
                side.agent,
                p.ConversationItemCreate(item=p.function_output(call.call_id or "", output)).dump(),
            ),
        ]
        reason = self.settings.ending_tools.get(name)
        if reason and ok and self.ending is None:
            if name == "end_call":
                reason = "caller_hung_up" if side.agent == "caller" else "cs_ended_call"
            effects += self._end("completed", reason)
        return effects

    def _request_response(self, agent: Agent, now_s: float, barge_in: bool = False) -> list[Effect]:
        side = self.sides[agent]
        if side.response_active:  # e.g. its cancelled response has not finished yet
            side.deferred_request_at_s = now_s
            return []
        side.requested_at_s = now_s
        params = None
        if barge_in:
            params = p.ResponseParams(metadata={p.BARGE_IN_METADATA_KEY: "1"})
            if self._wants_barge_in_note(agent):  # the same instructions plus the note
                params.instructions = self.instructions.get(agent, "") + BARGE_IN_NOTE
        return [Send(agent, p.ResponseCreate(response=params).dump())]

    def _deferred_request(self, side: _Side) -> list[Effect]:
        if side.deferred_request_at_s is None:
            return []
        at, side.deferred_request_at_s = side.deferred_request_at_s, None
        return self._request_response(side.agent, at)

    def _on_error(self, side: _Side, error: ev.ErrorDetails) -> list[Effect]:
        if error.code == "response_cancel_not_active":
            return []  # our barge-in cancel arrived after the response had finished: harmless
        self.errors.append({"agent": side.agent, **error.model_dump(exclude_unset=True)})
        message = f"{side.agent} server error {error.code}: {error.message}"
        effects: list[Effect] = [Log("error", message, side.agent)]
        fatal_codes = {
            "invalid_api_key",
            "session_expired",
            "insufficient_quota",
            "server_error",
            "rate_limit_exceeded",
            "model_not_found",
        }
        # A model the server does not serve (the embedded server names its valid ones): no
        # response will ever come, so end now rather than stall.
        bad_model = error.param in ("model", "session.model")
        if (
            bad_model
            or error.code in fatal_codes
            or error.type in ("server_error", "authentication_error")
        ):
            return effects + self._end("error", "service_error", message, now=True)
        if error.event_id == session_update_id(side.agent) or not side.session_ready:
            # It refused (part of) the session: the call would run on the service's defaults.
            rejected = (
                f"{side.agent} rejected its session configuration ({error.code}): {error.message}"
            )
            return effects + self._end("error", "session_rejected", rejected, now=True)
        return effects

    # ------------------------------------------------------------------ ending

    def _transcriptions_pending(self) -> bool:
        return any(s.commits_waiting or s.heard_items for s in self.sides.values())

    def _end(
        self,
        status: Literal["completed", "error"],
        reason: str,
        error: str | None = None,
        *,
        now: bool = False,
    ) -> list[Effect]:
        if self.ending is None:
            self.ending = EndCall(status, reason, error)
        if now or not self._transcriptions_pending():
            return self._finish()
        return []  # wait for the last turn's transcription so the transcript is complete

    def _finish(self) -> list[Effect]:
        if self.ended or self.ending is None:
            return []
        self.ended = True
        effects: list[Effect] = []
        for side in self.sides.values():
            if side.utterance is not None:
                effects += self._close_utterance(side)
        if self.settings.route == "audio":
            effects.append(Flush(self.timeline_s))
        return [*effects, self.ending]

    # ------------------------------------------------------------------ results

    def usage(self) -> dict[str, dict[str, Any]]:
        return {agent: dict(side.usage) for agent, side in self.sides.items()}


def session_update_id(agent: Agent) -> str:
    """The ``event_id`` of our ``session.update`` to ``agent``: an error that names it answers
    it."""
    return f"event_dualagent_session_{agent}"
