"""The call as a state machine, without I/O: turns, routing, tools, timeline and end conditions.

:class:`CallCore` is fed ``(agent, server_event, now_s)`` and returns *effects*: client events to
send to an agent, audio and transcript entries for the recorder, tool calls to log, and the end
of the call. :class:`dualagent.call.bridge.DualAgentBridge` only pumps two websockets through it, so
every turn-taking rule here is unit-tested without sockets.

Timeline: each utterance is placed at a *virtual* start time, the end of what was said before
plus the measured response latency (the wall time from our ``response.create`` to the first
audio), so the stereo recording sounds like the call would have sounded live.

An agent under test with its own turn detection (server or semantic VAD) answers the caller's
speech by itself: the core then never commits its input nor asks it to respond (except to go on
after its tools), and keeps a continuous line into it (:mod:`dualagent.call.agent_line`); the
caller speaks first, and when it cuts in, the agent's VAD decides where the agent stops.

The effects are defined in :mod:`dualagent.call.effects` (imported here too), the core's state
records in :mod:`dualagent.call.state`; what servers answer that must be checked or counted
(session echoes, usage, incomplete responses) in :mod:`dualagent.call.answers`.
"""

from __future__ import annotations

import json
import random
from typing import Any, Literal

from dualagent.call.agent_line import AgentLine, on_frame
from dualagent.call.answers import (
    add_response_usage,
    add_transcription_usage,
    response_issue,
    session_mismatches,
    session_report,
)
from dualagent.call.caller_mood import CallerMood
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
from dualagent.call.line import LineChannel
from dualagent.call.state import CallSettings, Side, Utterance
from dualagent.call.turn_taking import (
    BARGE_IN_NOTE,
    MIN_COMMIT_BYTES,
    other,
)
from dualagent.mood import MoodEvent, MoodState, state_line
from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev

WORDS_PER_SECOND = 2.6  # text route: estimated speaking time at speed 1.0


class CallCore(CallerMood):
    """Turn-taking, routing and end conditions for one call between a caller and a CS agent."""

    def __init__(self, settings: CallSettings) -> None:
        self.settings = settings
        self.sides: dict[Agent, Side] = {a: Side(a) for a in AGENTS}
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
        # The line into the agent under test when it takes its own turns (decided at start).
        self.line: AgentLine | None = None
        self.first_speaker: Agent = settings.first_speaker
        self.heard_parts: dict[int, dict[str, str]] = {}  # turn -> heard item -> transcript
        # The caller's mood (settings.mood): now, the events since the last utterance, and
        # the events that moved it last.
        self.mood: MoodState | None = settings.mood.start() if settings.mood else None
        self.mood_pending: list[MoodEvent] = []
        self.mood_events: list[str] = []

    # ------------------------------------------------------------------ start

    def start(self, sessions: dict[Agent, p.SessionConfig], now_s: float) -> list[Effect]:
        """Configure both sessions; the first speaker is asked to begin once both servers have
        confirmed their session (``session.updated``, checked against what was asked).

        The model is not sent: the URL names it, and a GA session cannot change it. A kept
        agent session (``agent_session="keep"``) gets no ``session.update``: it is ready when
        its server reports it (``session.created``).
        """
        self.instructions = {agent: sessions[agent].instructions or "" for agent in AGENTS}
        self.models = {agent: sessions[agent].model for agent in AGENTS}
        effects: list[Effect] = []
        for agent in AGENTS:
            if agent == "cs" and self.settings.agent_session == "keep":
                self.sides[agent].keeps_session = True
                self.instructions[agent] = ""  # its own, unknown until reported
                continue
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
            return self._on_item_done(side, event.item, event.response_id, now_s)
        if isinstance(event, ev.ResponseCreated):
            side.response_id = event.response.id
            side.response_active = True
            if self.ending is not None and self._has_own_vad(agent):  # answering a hang-up
                side.ignored_response_id = event.response.id
            return []
        if isinstance(event, ev.ResponseDone):
            return self._on_response_done(side, event.response, now_s)
        if isinstance(event, ev.InputAudioBufferCommitted):
            if side.commits_waiting:
                self._expect_heard(side, event.item_id or "", side.commits_waiting.popleft())
            elif self._has_own_vad(agent):
                self._vad_committed(side, event.item_id or "")
            return []
        if isinstance(event, ev.InputAudioBufferSpeechStarted) and self._has_own_vad(agent):
            return self._vad_heard_speech(side, event, now_s)
        if isinstance(event, ev.InputAudioTranscriptionCompleted):
            add_transcription_usage(side.usage, event.usage)
            return self._on_heard(side, event)
        if isinstance(event, ev.InputAudioTranscriptionFailed):
            return self._on_heard(side, event)
        if isinstance(event, ev.SessionCreated | ev.SessionUpdated):
            side.reported_session, side.reported_by = dict(event.session), event.type
            if isinstance(event, ev.SessionCreated):
                return self._ready(side, now_s) if side.keeps_session else []
            return self._on_session_updated(side, event.session, now_s)
        if isinstance(event, ev.ErrorEvent):
            return self._on_error(side, event.error)
        if isinstance(event, ev.RateLimitsUpdated):
            self.rate_limits[agent] = [r.model_dump(exclude_none=True) for r in event.rate_limits]
        return []

    def _on_session_updated(
        self, side: Side, session: dict[str, Any], now_s: float
    ) -> list[Effect]:
        if side.keeps_session:
            return self._ready(side, now_s)  # its own update (the first report may be this)
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
        return self._ready(side, now_s)

    def _ready(self, side: Side, now_s: float) -> list[Effect]:
        """``side``'s session is as it will be: once both are, the call starts. An agent that
        takes its own turns answers speech, so then the caller speaks first."""
        side.session_ready = True
        if self.started_at_s is not None or not all(s.session_ready for s in self.sides.values()):
            return []
        self.started_at_s = now_s
        if self.settings.route == "audio" and self.agent_turn_detection() is not None:
            self.line = AgentLine("cs", fast=self.settings.pace == "fast")
            self.first_speaker = "caller"
        return self._request_response(self.first_speaker, now_s)

    def session_report(self, agent: Agent) -> dict[str, Any] | None:
        """``agent``'s session as its server last reported it, with the source of each setting
        (``ours`` or ``server``): see :func:`~dualagent.call.answers.session_report`."""
        side = self.sides[agent]
        asked = None if side.keeps_session else side.asked_session
        return session_report(asked, side.reported_session, side.reported_by)

    def on_disconnect(self, agent: Agent, reason: str, kind: str = "disconnected") -> list[Effect]:
        """The agent's websocket closed (``kind="bad_event"``: it sent what we cannot read;
        ``kind="hung_up"``: its transport says it ended the call, as a phone bot hangs up)."""
        if self.ended:
            return []
        if kind == "hung_up":
            return self._end(
                "completed", "caller_hung_up" if agent == "caller" else "cs_ended_call", now=True
            )
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

    def _current_utterance(self, side: Side, event: ev.OutputPart, now_s: float) -> Utterance:
        utterance = side.utterance
        if utterance is None or utterance.item_id != event.item_id:
            requested = side.requested_at_s
            latency = max(0.0, now_s - requested) if requested is not None else 0.0
            side.requested_at_s = None
            barge_in = side.barge_in_from_s is not None
            if side.barge_in_from_s is not None:  # this utterance interrupts the other side
                # The seeded barge-in point is where the caller's voice starts (its thinking
                # time is part of that draw), so where the agent stops, and which words it
                # got out, do not depend on how busy the machine was.
                start = side.barge_in_from_s
                side.barge_in_from_s = None
            else:
                start = self.timeline_s + latency
                if self.line is not None and self.line.agent == side.agent:
                    if requested is None:  # it answered while the caller was still talking
                        start = max(start, self.line.position(now_s))
                    self.line.answered()
            if self.line is not None:  # its VAD's frames fall on the same audio every run
                start = on_frame(start)
                latency = latency if barge_in else start - self.timeline_s  # the gap heard
            index = len(self.turns)
            if not self.turns or self.turns[-1]["speaker"] != side.agent:
                self.speaker_turns += 1
            utterance = Utterance(index, event.item_id or "", event.response_id or "", start)
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
        self, side: Side, event: ev.ResponseOutputAudioDelta, now_s: float
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
            self._check_cut(utterance)
            return []  # the speaker stopped talking here (barge-in)
        pcm = p.decode_audio(delta)
        if not self.settings.line.is_clean:  # what the line does, the listener hears and we record
            pcm = self.lines[side.agent].process(pcm)
            delta = p.encode_audio(pcm)
        if utterance.held is not None:  # where it stops is not known yet
            utterance.held.append(pcm)
            return []
        return self._place(side, utterance, pcm, delta, now_s)

    def _place(
        self, side: Side, utterance: Utterance, pcm: bytes, delta: str | None, now_s: float
    ) -> list[Effect]:
        """Put a chunk of ``side``'s speech on the timeline and, while the other side listens,
        forward it; the part after the utterance's cut (if any) is dropped."""
        offset_s = p.pcm16_duration_s(utterance.audio_bytes)
        if utterance.cut_at_s is not None:
            keep = 2 * round((utterance.cut_at_s - offset_s) * p.SAMPLE_RATE_HZ)
            if keep < len(pcm):
                pcm, delta = pcm[: max(0, keep)], None
                self._check_cut(utterance)
        if not pcm:
            return []
        at_s = utterance.start_s + offset_s
        utterance.audio_bytes += len(pcm)
        effects: list[Effect] = [PlaceAudio(side.agent, pcm, at_s)]
        if self.settings.route != "audio" or utterance.listened_until_s is not None:
            return effects
        delta = delta if delta is not None else p.encode_audio(pcm)
        listener = self.sides[other(side.agent)]
        if self._has_own_vad(listener.agent):
            assert self.line is not None
            effects += self.line.voice(pcm, delta, at_s, offset_s)
        else:
            listener.appended_bytes += len(pcm)
            append = {"type": "input_audio_buffer.append", "audio": delta}
            effects.append(Send(listener.agent, append, utterance_offset_s=offset_s))
        end_offset = p.pcm16_duration_s(utterance.audio_bytes)  # the next offset_s, exactly
        if utterance.interrupt_at_s is not None and end_offset >= utterance.interrupt_at_s:
            effects += self._barge_in(side, utterance, end_offset, now_s)
        return effects

    def _on_text_delta(
        self,
        side: Side,
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
        self, side: Side, event: ev.OutputPart, text: str | None, now_s: float
    ) -> list[Effect]:
        """The final transcript (audio) or text of a message."""
        if self._cancelled_output(side, event):
            return []
        utterance = side.utterance
        if utterance is None:
            # A message without audio (a text-only reply): it still is a turn.
            side.pending_text.pop(event.item_id or "", None)
            utterance = self._current_utterance(side, event, now_s)
        utterance.final_text = (text or utterance.alignment.text).strip()
        self.turns[utterance.turn_index]["text"] = utterance.text
        return []

    def _on_item_done(
        self, side: Side, item: ev.Item, response_id: str | None, now_s: float
    ) -> list[Effect]:
        if response_id is not None and response_id == side.ignored_response_id:
            return []
        utterance = side.utterance
        if item.type == "function_call":
            if utterance is not None and utterance.held is not None:
                side.held_calls.append(item)  # made after the caller cut in, or not?
                return []
            return self._function_call(side, item)
        if item.type == "message" and utterance and item.id == utterance.item_id:
            if utterance.held is not None:
                utterance.close_deferred = True
                return []
            return self._close_utterance(side, now_s)
        return []

    def _function_call(self, side: Side, item: ev.Item) -> list[Effect]:
        cut = side.cut_utterance
        if side.cancelled_response_id is not None and (cut is None or cut.interrupted):
            # Called after the caller cut in: whether it got out before our cancel landed
            # is a race, so it never happened, on our side and in the agent's memory.
            return [
                Log("info", f"dropped {item.name}() of the interrupted response"),
                self._delete(side, item),
            ]
        side.pending_tool_calls.append(item)
        return []

    @staticmethod
    def _delete(side: Side, item: ev.Item) -> Send:
        return Send(side.agent, p.ConversationItemDelete(item_id=item.id or "").dump())

    def _close_utterance(self, side: Side, now_s: float) -> list[Effect]:
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
        text_cut = self._text_barge_in(side, utterance, turn, duration)
        cut_known = utterance.interrupted and utterance.cut_at_s is not None and not text_cut
        if cut_known:  # keep the words actually spoken before the agent stopped
            self._apply_cut(utterance, turn)
        self.timeline_s = max(self.timeline_s, turn["end_s"])
        self._move_mood(side, turn)
        effects: list[Effect] = [AddTurn(dict(turn)), Log("turn", turn["text"], side.agent)]
        if cut_known:
            effects.append(self._truncate_item(side.agent, utterance))
        if text_cut:
            effects += self._truncate_text_item(side.agent, utterance, turn["text"])
        if self.settings.route == "audio":  # the text route has no audio to lay out
            effects.append(Flush(self._safe_flush_point()))
        listener = self.sides[other(side.agent)]
        if self.settings.route == "text":
            turn["heard"] = turn["text"] if text_cut else utterance.text
            effects.append(UpdateTurn(utterance.turn_index, {"heard": turn["heard"]}))
            item = p.text_message(turn["heard"], role="user")
            effects.append(Send(listener.agent, p.ConversationItemCreate(item=item).dump()))
            if text_cut:  # the caller cuts in: it answers now, not after the agent's response
                effects += self._request_response(listener.agent, now_s, barge_in=True)
        elif self._has_own_vad(listener.agent):
            if not self.ended and utterance.audio_bytes:
                effects += self._caller_stopped(listener, turn, now_s)
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

    # ------------------------------------------------------------------ turns and tools

    def _on_response_done(self, side: Side, response: ev.Response, now_s: float) -> list[Effect]:
        utterance = side.utterance
        if utterance is not None and utterance.held is not None:
            side.held_done = response  # finished before its VAD heard the caller cut in
            return []
        cut = side.cut_utterance if response.id == side.cancelled_response_id else None
        if cut is not None and response.status == "cancelled":
            self._mark_interrupted(cut)  # its server stopped it: it had more to say
            reason = response.status_details.reason if response.status_details else None
            if reason == "turn_detected":  # its own VAD did
                fields = {"response_status": "cancelled", "response_reason": reason}
                self.turns[cut.turn_index].update(fields)
        effects: list[Effect] = []
        if utterance is not None:  # a message cut short without output_item.done
            effects += self._close_utterance(side, now_s)
        if response.usage is not None:
            add_response_usage(side.usage, response.usage)
        side.response_id = None
        side.response_active = False
        calls = side.pending_tool_calls
        if response.id is not None and response.id == side.ignored_response_id:
            side.ignored_response_id, side.pending_tool_calls = None, []  # after the end began
            side.spoke_in_response = False
            return effects + (self._finish() if not self._transcriptions_pending() else [])
        if side.cancelled_response_id is not None and response.id == side.cancelled_response_id:
            # Interrupted: the other side already has the turn. Tools called before still run.
            side.cancelled_response_id = side.cut_utterance = None
            calls, side.pending_tool_calls = side.pending_tool_calls, []
            side.spoke_in_response = False
            if calls:
                return effects + self._run_tools(side, calls, after_cancel=True)
            if self.ending is not None and not self._transcriptions_pending():
                effects += self._finish()
            return effects + self._deferred_request(side)
        if (
            self._has_own_vad(side.agent)
            and response.status == "cancelled"
            and not side.spoke_in_response
        ):
            # Its VAD took a pause for the end of the caller's turn, began to answer and
            # stopped when the caller went on: nothing was said, nothing happened.
            side.pending_tool_calls = []
            effects += [Log("info", "the agent began to answer in a pause", side.agent)]
            effects += [self._delete(side, call) for call in calls]
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
            if self._has_own_vad(other(side.agent)):  # it answers speech, and there was none
                reason = f"{side.agent} said nothing, and the agent answers only speech"
                return effects + self._end("completed", "stalled", reason)
        else:
            self.empty_responses = 0
        if self.speaker_turns >= self.settings.max_turns:
            return effects + self._end("completed", "max_turns")
        if self.timeline_s >= self.settings.max_duration_s:
            return effects + self._end("completed", "duration_limit")
        return effects + self._request_response(other(side.agent), now_s)

    def _run_tools(self, side: Side, calls: list[ev.Item], *, after_cancel: bool) -> list[Effect]:
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
        return effects + self._request_response(side.agent, now_s, after_tools=True)

    def _tool_done(self, side: Side, call: ev.Item, result: ToolOutput) -> list[Effect]:
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
        if side.agent == "cs" and ok:  # the agent got something done (or hands the caller on)
            transfer = reason is not None and "transfer" in reason
            self.mood_pending.append(MoodEvent("transfer" if transfer else "progress"))
        if reason and ok and self.ending is None:
            if name == "end_call":
                reason = "caller_hung_up" if side.agent == "caller" else "cs_ended_call"
            effects += self._end("completed", reason)
        return effects

    def _request_response(
        self, agent: Agent, now_s: float, barge_in: bool = False, *, after_tools: bool = False
    ) -> list[Effect]:
        if self._has_own_vad(agent) and not after_tools:
            return []  # its own VAD answers the caller's speech (the line is already quiet)
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
        if agent == "caller" and self.mood is not None and not side.keeps_session:
            # The caller's state: structured, and as a line every model reads.
            params = params or p.ResponseParams()
            params.metadata = {**(params.metadata or {}), **self._mood_metadata()}
            line = state_line(self.mood, self.mood_events)
            params.instructions = (params.instructions or self.instructions.get(agent, "")) + line
        return [Send(agent, p.ResponseCreate(response=params).dump())]

    def _deferred_request(self, side: Side) -> list[Effect]:
        if side.deferred_request_at_s is None:
            return []
        at, side.deferred_request_at_s = side.deferred_request_at_s, None
        # Only a request after tools is ever deferred for an agent with its own VAD.
        return self._request_response(side.agent, at, after_tools=True)

    def _on_error(self, side: Side, error: ev.ErrorDetails) -> list[Effect]:
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
        return any(
            s.commits_waiting or s.heard_items or s.vad_expected for s in self.sides.values()
        )

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
            if side.utterance is not None and side.utterance.held is not None:
                effects += self._release(side, side.utterance, 0.0, ending=True)
            if side.utterance is not None:
                effects += self._close_utterance(side, 0.0)
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
