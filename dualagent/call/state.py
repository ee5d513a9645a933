"""What the call core keeps: the call's settings, and per agent and per utterance state.

Plain records, no behaviour: :class:`~dualagent.call.core.CallCore` reads and updates them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from dualagent.call.effects import Agent
from dualagent.call.line import LineModel
from dualagent.mood import MoodProfile
from dualagent.realtime import protocol as p
from dualagent.realtime import server_events as ev
from dualagent.realtime.truncation import SpokenAlignment

Route = Literal["audio", "text"]


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
    # The caller's mood (dualagent.mood): where it starts and how events move it. None: no
    # mood is kept (no ``turn["mood"]``, no state sent to the caller).
    mood: MoodProfile | None = None
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
    # "ours": the agent under test is configured with our session.update; "keep": it gets
    # none, and its own configuration (instructions, tools, voice, turn detection) stands.
    agent_session: Literal["ours", "keep"] = "ours"
    # How audio is forwarded (the bridge sets it): the line into an agent with its own VAD
    # sends the pause it waits for at once in fast pace, in real time otherwise.
    pace: Literal["fast", "realtime"] = "fast"


@dataclass
class Utterance:
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
    listened_until_s: float | None = None  # the caller cut in here: nothing more forwarded
    # An agent with its own VAD decides where it stops when the caller cuts in: until its
    # server says it heard the caller, its audio after the barge-in point waits here (line
    # processed, in order), and so do the end of its message and of its response.
    held: list[bytes] | None = None
    close_deferred: bool = False

    @property
    def text(self) -> str:
        return self.final_text if self.final_text is not None else self.alignment.text


@dataclass
class Side:
    agent: Agent
    session_ready: bool = False
    response_id: str | None = None
    requested_at_s: float | None = None  # wall time of our response.create
    utterance: Utterance | None = None
    spoke_in_response: bool = False
    pending_tool_calls: list[ev.Item] = field(default_factory=list)
    appended_bytes: int = 0  # input audio not yet committed
    commits_waiting: deque[int] = field(default_factory=deque)  # turn index per commit sent
    heard_items: dict[str, int] = field(default_factory=dict)  # input item id -> turn index
    usage: dict[str, Any] = field(default_factory=dict)
    asked_session: p.SessionConfig | None = None  # what our session.update asked for
    keeps_session: bool = False  # we send it no session.update (agent_session="keep")
    reported_session: dict[str, Any] | None = None  # the session as its server last reported
    reported_by: str | None = None  # session.created or session.updated
    response_active: bool = False  # between response.created and response.done
    deferred_request_at_s: float | None = None  # response.create waiting for the active one
    cancelled_response_id: str | None = None  # a response cut short on barge-in
    cut_utterance: Utterance | None = None  # the utterance of that response that was cut
    ignored_response_id: str | None = None  # began after the call started to end
    barge_in_from_s: float | None = None  # next utterance starts from here, not timeline end
    pending_text: dict[str, str] = field(default_factory=dict)  # transcript before its audio
    # Function calls handed to the pump (RunTools) whose outputs have not come back yet, and
    # whether their response had been cancelled (then the turn is already the other side's).
    running_tools: list[ev.Item] = field(default_factory=list)
    running_after_cancel: bool = False
    # An agent with its own VAD: what waits for where it stops (see Utterance.held), the
    # turn each speech its VAD detected belongs to, and the caller turns it has not committed.
    held_calls: list[ev.Item] = field(default_factory=list)
    held_done: ev.Response | None = None
    vad_items: dict[str, int] = field(default_factory=dict)
    vad_expected: set[int] = field(default_factory=set)
