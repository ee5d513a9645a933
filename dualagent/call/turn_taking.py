"""Who talks when on the line: the caller's seeded barge-in, an agent under test that takes
its own turns, and what each side heard. Part of :class:`~dualagent.call.core.CallCore`.

:class:`TurnTaking` is a mixin without state of its own: it reads and changes the core's (the
attributes declared below) and calls back into it (``_place``, ``_close_utterance``,
``_on_response_done``, ``_function_call``, ``_request_response``, ``_finish``,
``_transcriptions_pending``).

- **Barge-in.** For each agent utterance the caller may cut in (seeded, see
  :meth:`TurnTaking._plan_interruption`). An agent whose turns the bridge takes is cancelled
  and stops where the caller stopped hearing it, the caller's voice starting
  ``BARGE_IN_OVERLAP_S`` earlier. An agent with its own VAD is never cancelled by us: the
  caller's voice starts where it stopped listening and reaches the agent on its line; the
  agent stops ``BARGE_IN_OVERLAP_S`` after the point its VAD says the caller's speech began
  (``input_audio_buffer.speech_started``), or talks on if its VAD does not interrupt it.
- **The agent's own VAD** answers the caller's speech by itself: the caller speaks first, the
  agent's input is a continuous line (:class:`~dualagent.call.agent_line.AgentLine`), and what
  its VAD commits is matched to the caller's turns for ``heard``.
"""

from __future__ import annotations

import random
from typing import Any

from dualagent.call.agent_line import AgentLine, turn_detection_of, vad_silence_s
from dualagent.call.effects import Agent, Effect, EndCall, Log, Send, UpdateTurn
from dualagent.call.state import CallSettings, Side, Utterance
from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.local.brains.registry import is_registered as is_local_brain
from dualagent.realtime.truncation import spoken_fraction

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


def other(agent: Agent) -> Agent:
    return "cs" if agent == "caller" else "caller"


class TurnTaking:
    """Barge-in, the agent's own VAD and hearing, for :class:`~dualagent.call.core.CallCore`."""

    # The core's state this part uses.
    settings: CallSettings
    sides: dict[Agent, Side]
    turns: list[dict[str, Any]]
    rng: random.Random
    models: dict[Agent, str | None]
    interruptions: int
    line: AgentLine | None
    first_speaker: Agent
    heard_parts: dict[int, dict[str, str]]
    transcription_failures: list[dict[str, Any]]
    ending: EndCall | None
    ended: bool
    speaker_turns: int

    # ------------------------------------------------------------------ the agent's own VAD

    def agent_turn_detection(self) -> dict[str, Any] | None:
        """The turn detection of the agent under test: what we asked, or what its server
        reported for a kept session (None: the bridge takes the turns)."""
        side = self.sides["cs"]
        if side.keeps_session or side.asked_session is None:
            return turn_detection_of(side.reported_session)
        return turn_detection_of(side.asked_session.dump())

    def _has_own_vad(self, agent: Agent) -> bool:
        return self.line is not None and self.line.agent == agent

    def on_tick(self, now_s: float) -> list[Effect]:
        """Time passed (the pump calls this often): the silence that flows on the line into an
        agent with its own VAD while the caller is quiet."""
        if self.ended or self.line is None:
            return []
        return list(self.line.tick(now_s))

    def turn_taking(self) -> dict[str, Any]:
        """Who took the agent's turns: its own VAD (and which) or the bridge; who spoke first."""
        detection = self.agent_turn_detection() if self.line is not None else None
        return {
            "agent": detection["type"] if detection else "bridge",
            "first_speaker": self.first_speaker,
        }

    def _caller_stopped(self, agent: Side, turn: dict[str, Any], now_s: float) -> list[Effect]:
        """The caller stopped talking to an agent with its own VAD: no commit, no request;
        silence on the line, and its VAD answers (timed from the end of the caller's words)."""
        assert self.line is not None
        detection = self.agent_turn_detection() or {}
        sends, agent.requested_at_s = self.line.quiet(
            turn["end_s"], vad_silence_s(detection), now_s
        )
        agent.vad_expected.add(turn["index"])  # the call's end waits for what it heard
        return list(sends)

    def _vad_committed(self, side: Side, item_id: str) -> None:
        """The agent's VAD committed speech: the caller turn it belongs to will be heard."""
        index = side.vad_items.pop(item_id, None)
        if index is None:
            caller_turns = [t["index"] for t in self.turns if t["speaker"] != side.agent]
            index = caller_turns[-1] if caller_turns else None
        if index is not None:
            self._expect_heard(side, item_id, index)
            side.vad_expected = {i for i in side.vad_expected if i > index}

    def _vad_heard_speech(
        self, side: Side, event: ev.InputAudioBufferSpeechStarted, now_s: float
    ) -> list[Effect]:
        """The agent's own VAD heard the caller start. The speech belongs to the caller's
        latest turn; if the agent is talking, it stops ``BARGE_IN_OVERLAP_S`` after the point
        its VAD places the caller's first sound (``audio_start_ms``: stream time is timeline
        time), and never before what the caller already heard of it. That point depends on
        the audio only, not on how fast anything ran. With ``interrupt_response: false`` it
        talks on over the caller."""
        caller_turns = [t["index"] for t in self.turns if t["speaker"] != side.agent]
        if caller_turns and event.item_id:
            side.vad_items[event.item_id] = caller_turns[-1]
        utterance = side.utterance
        if utterance is None or side.cut_utterance is utterance:
            return []  # not talking, or already heard the caller
        # Either way the caller has the turn now: the end of this response does not hand it.
        side.cancelled_response_id, side.cut_utterance = utterance.response_id, utterance
        detection = self.agent_turn_detection() or {}
        if detection.get("interrupt_response") is False:
            return self._release(side, utterance, now_s)
        placed_s = p.pcm16_duration_s(utterance.audio_bytes)
        if event.audio_start_ms is not None:
            heard_at = event.audio_start_ms / 1000 - utterance.start_s
        else:
            heard_at = placed_s
        utterance.cut_at_s = max(placed_s, heard_at + BARGE_IN_OVERLAP_S)
        stop_s = utterance.start_s + utterance.cut_at_s
        log = Log("info", f"the agent hears the caller and stops by {stop_s:.1f}s", side.agent)
        return [log, *self._release(side, utterance, now_s)]

    def _release(
        self, side: Side, utterance: Utterance, now_s: float, *, ending: bool = False
    ) -> list[Effect]:
        """Where the agent stops is known (or it talks on): place what waited, up to the cut,
        and go on with the end of its message and response if they came meanwhile."""
        held, utterance.held = utterance.held or [], None
        effects: list[Effect] = []
        for pcm in held:
            effects += self._place(side, utterance, pcm, None, now_s)
        calls, side.held_calls = side.held_calls, []
        for call in calls:
            effects += self._function_call(side, call)
        if utterance.close_deferred:
            effects += self._close_utterance(side, now_s)
        done, side.held_done = side.held_done, None
        if done is not None and not ending:
            effects += self._on_response_done(side, done, now_s)
        return effects

    # ------------------------------------------------------------------ barge-in

    def _plan_interruption(self, side: Side, index: int) -> float | None:
        """Decide, once per CS utterance, whether and when the caller will cut in (the same
        draws in the audio and the text route: in text, the agent's words are timed by an
        estimate of how long they take to say)."""
        chance = self._interrupt_chance()
        if side.agent != "cs" or chance <= 0:
            return None
        draw, when = self.rng.random(), self.rng.uniform(*BARGE_IN_WINDOW_S)
        if index == 0 or draw >= chance:  # nobody interrupts the greeting
            return None
        if self._cut_last_time(side):  # it told the agent to go on: it lets it
            return None
        return when

    def _cut_last_time(self, side: Side) -> bool:
        """Whether the caller cut into ``side``'s previous utterance (then it lets this one
        finish: two cut-ins in a row leave the agent no word to get out)."""
        previous = next((t for t in reversed(self.turns) if t["speaker"] == side.agent), None)
        return bool(previous and previous.get("interrupted"))

    def _interrupt_chance(self) -> float:
        """The chance that the caller cuts into the next agent utterance."""
        return self.settings.interrupt_probability * BARGE_IN_SCALE

    def _barge_in(
        self, side: Side, utterance: Utterance, heard_until_s: float, now_s: float
    ) -> list[Effect]:
        """The caller talks over the CS agent: cancel, and let the caller speak.

        The agent stops where the caller stopped hearing it: the end of the audio received and
        forwarded so far. Whatever the server streams after that (its next sentence may be
        synthesised before our cancel reaches it, or not) is dropped, so where the agent stops
        and which words it got out do not depend on timing. The caller's voice starts
        ``BARGE_IN_OVERLAP_S`` earlier: both talk at once for that long, as on a phone line.

        An agent with its own VAD is not cancelled: the caller's voice starts right here and
        reaches it on the line, and where its VAD hears it decides where it stops
        (:meth:`_vad_heard_speech`); its audio after this point waits until then.
        """
        utterance.listened_until_s = heard_until_s
        caller = self.sides[other(side.agent)]
        if self._has_own_vad(side.agent):
            caller.barge_in_from_s = utterance.start_s + heard_until_s
            utterance.held = []
            effects: list[Effect] = [
                Log("info", f"caller cuts in on the agent at {caller.barge_in_from_s:.1f}s")
            ]
        else:
            utterance.cut_at_s = heard_until_s
            self._mark_interrupted(utterance)
            caller.barge_in_from_s = utterance.start_s + max(
                0.0, heard_until_s - BARGE_IN_OVERLAP_S
            )
            side.cancelled_response_id, side.cut_utterance = utterance.response_id, utterance
            cancel = p.ResponseCancel(response_id=utterance.response_id or None)
            effects = [
                Log("info", f"caller interrupts the agent at {caller.barge_in_from_s:.1f}s"),
                Send(side.agent, cancel.dump()),
            ]
        if caller.appended_bytes >= MIN_COMMIT_BYTES:  # what the caller heard before cutting in
            caller.appended_bytes = 0
            caller.commits_waiting.append(utterance.turn_index)
            effects.append(Send(caller.agent, p.InputAudioBufferCommit().dump()))
        return effects + self._request_response(caller.agent, now_s, barge_in=True)

    def _mark_interrupted(self, utterance: Utterance) -> None:
        if not utterance.interrupted:
            utterance.interrupted = True
            self.turns[utterance.turn_index]["interrupted"] = True
            self.interruptions += 1

    def _check_cut(self, utterance: Utterance) -> None:
        """The agent had more to say past its cut: it was interrupted."""
        cut = utterance.cut_at_s
        if cut is not None and p.pcm16_duration_s(utterance.received_bytes) > cut + 1e-6:
            self._mark_interrupted(utterance)

    def _wants_barge_in_note(self, agent: Agent) -> bool:
        """Whether ``agent``'s model needs the barge-in flag as prose in its instructions."""
        if self.settings.barge_in_note is not None:
            return self.settings.barge_in_note
        return not is_local_brain(self.models.get(agent))

    def _cancelled_output(self, side: Side, event: ev.OutputPart) -> bool:
        """Output of a response we cancelled, other than the utterance already cut (or of a
        response that began after the call started to end, or a further message of one whose
        agent the caller cut into: it comes after the cut)."""
        if side.ignored_response_id is not None and event.response_id == side.ignored_response_id:
            return True
        held = side.utterance if side.utterance and side.utterance.held is not None else None
        if held is not None and event.item_id != held.item_id:
            return True
        if side.cancelled_response_id is None or event.response_id != side.cancelled_response_id:
            return False
        return side.utterance is None or event.item_id != side.utterance.item_id

    def _apply_cut(self, utterance: Utterance, turn: dict[str, Any]) -> None:
        """Shorten an interrupted turn to what was spoken before the cut."""
        received_s = p.pcm16_duration_s(utterance.received_bytes)
        cut_s = self._spoken_s(utterance)
        turn.setdefault("planned_text", turn["text"])
        planned = turn["planned_text"]
        if utterance.alignment.text.split() == planned.split():
            turn["text"] = utterance.alignment.spoken_before(cut_s, received_s)
        else:  # the final transcript differs from its deltas: spread it over the audio
            turn["text"] = spoken_fraction(planned, cut_s, received_s)
        turn["end_s"] = round(utterance.start_s + cut_s, 3)

    @staticmethod
    def _spoken_s(utterance: Utterance) -> float:
        """How far into an interrupted utterance the agent got: its cut, or the end of what
        it had sent if its server stopped it before that."""
        assert utterance.cut_at_s is not None
        return min(utterance.cut_at_s, p.pcm16_duration_s(utterance.received_bytes))

    def _truncate_item(self, agent: Agent, utterance: Utterance) -> Send:
        """Tell the agent's server what the caller actually heard, as a phone line would."""
        heard_ms = int(self._spoken_s(utterance) * 1000)
        event = p.ConversationItemTruncate(
            item_id=utterance.item_id, content_index=0, audio_end_ms=heard_ms
        )
        return Send(agent, event.dump())

    # ------------------------------------------------------------------ what was heard

    def _expect_heard(self, side: Side, item_id: str, index: int) -> None:
        side.heard_items[item_id] = index
        # A VAD may split one utterance at a long pause: its parts are heard in this order.
        self.heard_parts.setdefault(index, {})[item_id] = ""

    def _on_heard(
        self,
        side: Side,
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
                effects += self._update_turn(index, {"heard": None, "heard_error": failure})
        elif index is not None:
            parts = self.heard_parts.setdefault(index, {})
            parts[event.item_id or ""] = (event.transcript or "").strip()
            heard = " ".join(text for text in parts.values() if text)
            self.turns[index]["heard"] = heard
            effects += self._update_turn(index, {"heard": heard})
        if self.ending is not None and not self._transcriptions_pending():
            effects += self._finish()
        return effects

    def _update_turn(self, index: int, fields: dict[str, Any]) -> list[Effect]:
        """Change a turn already recorded; a turn still being spoken (an agent's cut-in
        utterance waiting for where it stops) is recorded with it when it closes."""
        if any(
            s.utterance is not None and s.utterance.turn_index == index for s in self.sides.values()
        ):
            return []
        return [UpdateTurn(index, fields)]

    # ------------------------------------------------------------------ text-route barge-in

    def _text_barge_in(
        self, side: Side, utterance: Utterance, turn: dict[str, Any], duration_s: float
    ) -> bool:
        """Text route: the caller cuts in where the seeded draw (the same as in audio) says,
        if the agent's text, at its estimated speaking time, reaches that point. The turn
        keeps the words said before the cut; the caller's voice starts
        ``BARGE_IN_OVERLAP_S`` earlier."""
        cut_s = utterance.interrupt_at_s
        if self.settings.route != "text" or cut_s is None or duration_s <= cut_s:
            return False
        if self.ending is not None or self.ended or self.speaker_turns >= self.settings.max_turns:
            return False  # the call ends with this utterance: the caller has no turn left
        turn["planned_text"] = turn["text"]
        turn["text"] = spoken_fraction(turn["text"], cut_s, duration_s)
        turn["end_s"] = round(utterance.start_s + cut_s, 3)
        utterance.cut_at_s = utterance.listened_until_s = cut_s
        self._mark_interrupted(utterance)
        turn["interrupted"] = True
        side.cancelled_response_id, side.cut_utterance = utterance.response_id, utterance
        caller = self.sides[other(side.agent)]
        caller.barge_in_from_s = utterance.start_s + max(0.0, cut_s - BARGE_IN_OVERLAP_S)
        return True

    def _truncate_text_item(self, agent: Agent, utterance: Utterance, heard: str) -> list[Effect]:
        """Tell a text agent what the caller heard: its message is replaced by the words said
        before the cut (the text equivalent of ``conversation.item.truncate``)."""
        item = p.text_message(heard, role="assistant")
        return [
            Log("info", f"caller cuts in on the agent after {utterance.cut_at_s:.1f}s (text)"),
            Send(agent, p.ConversationItemDelete(item_id=utterance.item_id).dump()),
            Send(agent, p.ConversationItemCreate(item=item).dump()),
        ]
