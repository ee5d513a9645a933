"""The caller's mood through a call: patience and frustration, moved by what happens.

A sans-I/O model. :class:`MoodState` is where the caller stands (both in 0..1); a
:class:`MoodProfile` (from the persona YAML's ``personality.mood``) says where it starts and how
strongly events move it; :func:`update` applies one :class:`MoodEvent` and returns the new
state. No randomness and no clock: the same events give the same trajectory.

The call core (:mod:`dualagent.call.core`) detects the events from the turns it routes, keeps
the state after every utterance in the transcript (``turn["mood"]``), and hands it to the
caller with each ``response.create``: as ``response.metadata`` (:data:`METADATA_KEYS`) and as a
short state line in the response's instructions (:func:`state_line`), which language-model
callers read and the scripted callers parse (:func:`parse_state_line`).

Events (:data:`EVENT_EFFECTS`), each a change of (patience, frustration) before the persona's
scaling: ``asked_to_repeat``, ``not_understood``, ``hold``, ``long_gap`` (per second past the
threshold), ``transfer``, ``agent_cut_in``, ``agent_turn`` (waiting through one more agent
utterance), ``progress`` (a tool of the agent worked), ``resolution`` (the agent says the
matter is done). Losses are scaled by the profile's ``sensitivity``, gains by its
``recovery``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

EVENT_EFFECTS: dict[str, tuple[float, float]] = {
    # event: (change of patience, change of frustration), at sensitivity / recovery 1.0
    "asked_to_repeat": (-0.12, 0.12),
    "not_understood": (-0.15, 0.15),
    "hold": (-0.05, 0.04),
    "long_gap": (-0.03, 0.02),  # per second past LONG_GAP_S
    "transfer": (-0.15, 0.10),
    "agent_cut_in": (-0.10, 0.10),
    "agent_turn": (-0.02, 0.01),
    "progress": (0.05, -0.05),
    "resolution": (0.15, -0.20),
}
"""What each event does to (patience, frustration) before the persona's scaling."""

EVENTS = tuple(EVENT_EFFECTS)
LONG_GAP_S = 5.0  # a silence longer than this before the agent answers is a long gap
METADATA_KEYS = {
    "patience": "dualagent_patience",
    "frustration": "dualagent_frustration",
    "event": "dualagent_mood_event",
}
"""``response.metadata`` keys of the caller's mood (string values, as the protocol wants)."""

_STATE_LINE = re.compile(
    r"\[caller state\] patience (?P<patience>\d+(?:\.\d+)?), frustration (?P<frustration>\d+(?:\.\d+)?)"
    r"(?: \(after: (?P<event>[a-z_, ]+)\))?"
)


@dataclass(frozen=True)
class MoodProfile:
    """Where a caller's mood starts and how strongly events move it (the persona sets it)."""

    start_patience: float = 0.7  # 0..1
    start_frustration: float = 0.0  # 0..1
    sensitivity: float = 1.0  # multiplies losses of patience (and rises of frustration)
    recovery: float = 1.0  # multiplies gains of patience (and falls of frustration)

    def __post_init__(self) -> None:
        for name in ("start_patience", "start_frustration"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value!r}")
        for name in ("sensitivity", "recovery"):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value!r}")

    def start(self) -> MoodState:
        return MoodState(self.start_patience, self.start_frustration)


@dataclass(frozen=True)
class MoodEvent:
    """Something that happened to the caller; ``seconds`` for ``long_gap``."""

    kind: str
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in EVENT_EFFECTS:
            raise ValueError(f"unknown mood event {self.kind!r}; valid: {', '.join(EVENTS)}")


@dataclass(frozen=True)
class MoodState:
    """Where the caller stands: patience 1 = all the time in the world, 0 = none left."""

    patience: float
    frustration: float
    ran_out: bool = field(default=False)  # patience has reached 0 (it stays so)

    def as_dict(self) -> dict[str, Any]:
        return {
            "patience": round(self.patience, 4),
            "frustration": round(self.frustration, 4),
            "patience_ran_out": self.ran_out,
        }


def update(state: MoodState, event: MoodEvent, profile: MoodProfile) -> tuple[MoodState, str]:
    """Apply one event: the new state and a reason (``"asked_to_repeat: patience -0.19"``)."""
    d_patience, d_frustration = EVENT_EFFECTS[event.kind]
    if event.kind == "long_gap":
        over_s = max(0.0, event.seconds - LONG_GAP_S)
        d_patience, d_frustration = d_patience * over_s, d_frustration * over_s
    d_patience *= profile.sensitivity if d_patience < 0 else profile.recovery
    d_frustration *= profile.sensitivity if d_frustration > 0 else profile.recovery
    patience = _clip(state.patience + d_patience)
    frustration = _clip(state.frustration + d_frustration)
    new = MoodState(patience, frustration, ran_out=state.ran_out or patience <= 0.0)
    return new, f"{event.kind}: patience {patience - state.patience:+.2f}"


def apply(
    state: MoodState, events: list[MoodEvent], profile: MoodProfile
) -> tuple[MoodState, list[str]]:
    """Apply ``events`` in order: the final state and one reason per event."""
    reasons = []
    for event in events:
        state, reason = update(state, event, profile)
        reasons.append(reason)
    return state, reasons


def state_line(state: MoodState, events: list[str]) -> str:
    """The caller's state as one line for a response's instructions (read by language models;
    :func:`parse_state_line` reads it back)."""
    after = f" (after: {', '.join(events)})" if events else ""
    hint = (
        "Your patience has run out: say so and end the call."
        if state.ran_out
        else "Let it show in how you speak: the lower your patience, the shorter and sharper."
    )
    return (
        f"\n\n[caller state] patience {state.patience:.2f}, frustration "
        f"{state.frustration:.2f}{after}. Both are on a scale of 0 to 1. {hint}"
    )


def parse_state_line(text: str | None) -> dict[str, Any] | None:
    """The state a :func:`state_line` in ``text`` carries, or None when there is none."""
    match = _STATE_LINE.search(text or "")
    if match is None:
        return None
    event = match.group("event")
    patience = float(match.group("patience"))
    return {
        "patience": patience,
        "frustration": float(match.group("frustration")),
        "events": [e.strip() for e in event.split(",")] if event else [],
        "patience_ran_out": patience <= 0.0,
    }


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def profile_with(profile: MoodProfile, **changes: Any) -> MoodProfile:
    """A copy of ``profile`` with ``changes`` (checked again)."""
    return replace(profile, **changes)


# What an agent's words say happened to the caller (lower case, matched inside the text).
AGENT_CUES: dict[str, tuple[str, ...]] = {
    "asked_to_repeat": ("say that again", "could you repeat", "can you repeat", "didn't catch",
                        "did not catch", "repeat that", "one more time"),
    "not_understood": ("didn't understand", "did not understand", "couldn't understand",
                       "trouble understanding", "not sure what you mean", "not sure i follow",
                       "didn't quite get", "rephrase"),
    "hold": ("please hold", "hold on", "one moment", "bear with me", "just a moment",
             "give me a moment"),
    "transfer": ("transferring you", "transfer you", "one of my colleagues", "a colleague will"),
    "resolution": ("has been ordered", "is on its way", "will arrive", "has been updated",
                   "has been blocked", "dispute is open", "is booked", "has been booked",
                   "is confirmed", "has been cancelled", "all set"),
}  # fmt: skip


def agent_events(text: str) -> list[str]:
    """The mood events an agent's utterance carries, in :data:`AGENT_CUES` order."""
    lowered = " ".join(text.lower().replace("\u2019", "'").split())
    return [kind for kind, cues in AGENT_CUES.items() if any(cue in lowered for cue in cues)]


IMPATIENT_LEADS = ("Come on. ", "Look, ", "Please, just ", "Honestly. ")
FRUSTRATION_SHOWS = 0.75  # from this frustration on, a scripted caller's words show it


def impatient(text: str, mood: dict[str, Any] | None, count: int) -> str:
    """``text`` as a caller at the end of its tether says it (a lead-in, the ``count``-th of
    :data:`IMPATIENT_LEADS`), or unchanged while its frustration is below
    :data:`FRUSTRATION_SHOWS`."""
    if not text or mood is None or mood["frustration"] < FRUSTRATION_SHOWS:
        return text
    lead = IMPATIENT_LEADS[count % len(IMPATIENT_LEADS)]
    if lead.endswith("just "):
        return lead + text[0].lower() + text[1:]
    return lead + text
