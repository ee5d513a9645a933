"""The caller's mood through a call: part of :class:`~dualagent.call.core.CallCore`.

:class:`CallerMood` is a mixin like :class:`~dualagent.call.turn_taking.TurnTaking`: it reads
and changes the core's state (``mood``, ``mood_pending``, ``mood_events``, ``turns``,
``settings``) and moves the mood (:mod:`dualagent.mood`, without I/O or randomness) after
every utterance with the events that happened since the last one. The mood raises or lowers
the caller's chance to cut in, and reaches the caller with each ``response.create``
(:meth:`CallerMood._mood_metadata` and a state line).
"""

from __future__ import annotations

from typing import Any

from dualagent.call.state import CallSettings, Side
from dualagent.call.turn_taking import BARGE_IN_OVERLAP_S, TurnTaking
from dualagent.mood import LONG_GAP_S, METADATA_KEYS, MoodEvent, MoodState, agent_events
from dualagent.mood import apply as apply_mood

# How much the caller's frustration (its rise since the call began, 0..1) raises its chance to
# cut in: chance = tendency * (1 + gain * rise).
MOOD_INTERRUPT_GAIN = 0.5


class CallerMood(TurnTaking):
    """The caller's mood, moved after every utterance (see the module's docstring)."""

    settings: CallSettings
    mood: MoodState | None
    mood_pending: list[MoodEvent]
    mood_events: list[str]
    turns: list[dict[str, Any]]

    def _move_mood(self, side: Side, turn: dict[str, Any]) -> None:
        """The caller's mood after this utterance, with the events that moved it, into the
        turn (``turn["mood"]``). The agent's words, its silence before them, its talking over
        the caller and its tools (since the last utterance) are the events."""
        if self.mood is None or self.settings.mood is None:
            return
        events, self.mood_pending = self.mood_pending, []
        if side.agent == "cs":
            kinds = agent_events(turn["text"])
            events += [MoodEvent(kind) for kind in kinds]
            # A gap counts at speaking pace only: in fast pace it is how busy this machine
            # is, not the agent's doing (and the same seed must give the same mood).
            latency_s = float(turn.get("response_latency_s") or 0.0)
            if self.settings.pace == "realtime" and latency_s > LONG_GAP_S:
                events.append(MoodEvent("long_gap", latency_s))
            callers = [t for t in self.turns[: turn["index"]] if t["speaker"] == "caller"]
            talked_over = (
                callers
                and turn["start_s"] < callers[-1]["end_s"] - BARGE_IN_OVERLAP_S - 1e-6
                and not callers[-1].get("interrupted")
            )
            if talked_over:  # it began while the caller was still talking
                events.append(MoodEvent("agent_cut_in"))
            if not any(e.kind in ("progress", "resolution") for e in events):
                events.append(MoodEvent("agent_turn"))  # one more thing to sit through
        self.mood, reasons = apply_mood(self.mood, events, self.settings.mood)
        self.mood_events = [e.kind for e in events]
        turn["mood"] = {**self.mood.as_dict(), "events": self.mood_events, "reasons": reasons}

    def _mood_metadata(self) -> dict[str, str]:
        assert self.mood is not None
        return {
            METADATA_KEYS["patience"]: f"{self.mood.patience:.3f}",
            METADATA_KEYS["frustration"]: f"{self.mood.frustration:.3f}",
            METADATA_KEYS["event"]: ",".join(self.mood_events),
        }

    def _interrupt_chance(self) -> float:
        """The chance the caller cuts into the next agent utterance: the persona's tendency,
        raised (or lowered) by how far its frustration has moved since the call began."""
        chance = super()._interrupt_chance()
        if self.mood is None or self.settings.mood is None or chance <= 0:
            return chance
        moved = self.mood.frustration - self.settings.mood.start_frustration
        return min(0.95, max(0.0, chance * (1.0 + MOOD_INTERRUPT_GAIN * moved)))
