"""The line into an agent that takes its own turns (server or semantic VAD), without I/O.

When the agent under test runs its own voice activity detection, the bridge is a phone line on
that side: the caller's voice and the silence between its utterances reach the agent as one
continuous stream, never committed, and the agent's VAD decides when the caller has finished
and when it is being talked over. :class:`AgentLine` keeps that stream on the call's timeline:
a second of stream is a second of timeline, so the positions the agent's VAD reports
(``audio_start_ms``) are timeline positions.

- The caller's audio is sent at its place on the timeline, after the silence up to it, in the
  chunks it came in.
- When the caller stops, the silence the agent's VAD needs to hear the end is sent at once in
  ``fast`` pace (the timeline holds that pause: nobody is waiting for anything during it);
  after that, silence flows at wall-clock rate until the agent answers, because the time the
  agent then takes is measured, as it is after a ``response.create``. In ``realtime`` pace
  silence flows at wall-clock rate whenever the caller is quiet, as on a real line.
- Utterances start on the VAD's 10 ms frame grid (:func:`on_frame`): its frames then fall on
  the same audio in every run, so where it hears speech start and stop, and so where the agent
  stops when the caller cuts in, does not move with the measured latencies.
- Silence is digital silence, never passed through the line condition: a noisy line's hiss in
  the pauses would be what a real line carries, but the recording has none there either, and
  what the agent hears must be what the recording holds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dualagent.call.effects import Agent, Send
from dualagent.realtime import protocol as p
from dualagent.realtime.local.vad import EAGERNESS_SILENCE_MS, FRAME_MS

LINE_CHUNK_S = 0.2
"""Silence goes in chunks of this length: the size of the embedded server's audio deltas."""
VAD_SLACK_S = 0.02
"""Trailing silence beyond what the VAD asks for: two of the embedded detector's 10 ms frames,
because the end of speech need not fall on a frame boundary."""
DEFAULT_SILENCE_MS = 500  # server_vad's silence_duration_ms when a session does not say
_CHUNK_SAMPLES = round(LINE_CHUNK_S * p.SAMPLE_RATE_HZ)


def on_frame(t_s: float) -> float:
    """``t_s`` moved forward to the next start of a VAD frame (at most 10 ms)."""
    return math.ceil(round(t_s * 1000 / FRAME_MS, 6)) * FRAME_MS / 1000


def turn_detection_of(session: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The turn detection of a session as sent or reported: ``audio.input.turn_detection``
    (GA), or the flat ``turn_detection`` of the beta shape; None when it is off or not said."""
    if not session:
        return None
    audio = session.get("audio")
    audio_in = audio.get("input") if isinstance(audio, Mapping) else None
    if isinstance(audio_in, Mapping) and "turn_detection" in audio_in:
        value = audio_in["turn_detection"]
    else:
        value = session.get("turn_detection")
    return dict(value) if isinstance(value, Mapping) and value.get("type") != "none" else None


def vad_silence_s(turn_detection: Mapping[str, Any]) -> float:
    """How long a pause the agent's VAD waits for before it answers: ``silence_duration_ms``
    for server VAD; for semantic VAD, the pause the embedded server maps its eagerness to (a
    hosted model decides by itself; silence keeps flowing until it answers anyway)."""
    if turn_detection.get("type") == "semantic_vad":
        eagerness = turn_detection.get("eagerness") or "auto"
        return EAGERNESS_SILENCE_MS.get(eagerness, EAGERNESS_SILENCE_MS["auto"]) / 1000
    silence = turn_detection.get("silence_duration_ms")
    return (silence if isinstance(silence, int | float) else DEFAULT_SILENCE_MS) / 1000


@dataclass
class AgentLine:
    """The continuous input stream of ``agent``, kept on the call's timeline."""

    agent: Agent
    fast: bool = True
    fed_samples: int = 0  # samples sent so far: the stream's position on the timeline
    # (stream position, wall time) from which silence flows at wall-clock rate; None while
    # the caller talks (and, in fast pace, while the agent answers).
    idle_from: tuple[float, float] | None = None

    @property
    def fed_s(self) -> float:
        return self.fed_samples / p.SAMPLE_RATE_HZ

    def position(self, now_s: float) -> float:
        """Where the line is on the timeline at wall time ``now_s``."""
        if self.idle_from is None:
            return self.fed_s
        at_s, wall_s = self.idle_from
        return at_s + max(0.0, now_s - wall_s)

    def voice(self, pcm16: bytes, delta: str, at_s: float, offset_s: float) -> list[Send]:
        """The caller's audio ``pcm16`` (base64 ``delta``), placed at ``at_s`` on the timeline,
        ``offset_s`` into its utterance (for realtime pacing): the silence up to it, then it.

        Audio that would start before the stream's end (it cannot go back) follows it at once.
        """
        self.idle_from = None
        sends = self._silence_until(at_s)
        append = {"type": "input_audio_buffer.append", "audio": delta}
        sends.append(Send(self.agent, append, utterance_offset_s=offset_s))
        self.fed_samples += len(pcm16) // 2
        return sends

    def quiet(self, end_s: float, vad_silence: float, now_s: float) -> tuple[list[Send], float]:
        """The caller stopped talking at ``end_s``. Returns the silence to send now and the
        wall time the agent's answer is timed from (as if a ``response.create`` had gone then):
        in fast pace the pause its VAD waits for is sent at once and counted in its latency."""
        burst = vad_silence + VAD_SLACK_S if self.fast else 0.0
        sends = self._silence_until(end_s + burst)
        self.idle_from = (max(self.fed_s, end_s + burst), now_s)
        return sends, now_s - burst

    def tick(self, now_s: float) -> list[Send]:
        """Silence for the time that passed, in whole chunks, each sent when it begins (as
        paced audio is)."""
        if self.idle_from is None:
            return []
        sends: list[Send] = []
        until = self.position(now_s)
        while self.fed_s < until - 1e-6:
            sends.append(self._zeros(_CHUNK_SAMPLES))
        return sends

    def answered(self) -> None:
        """The agent started to answer: in fast pace silence stops flowing (its talk takes no
        wall time; the silence under it is sent before the caller's next words)."""
        if self.fast:
            self.idle_from = None

    def _silence_until(self, at_s: float) -> list[Send]:
        missing = round(at_s * p.SAMPLE_RATE_HZ) - self.fed_samples
        sends = []
        for _ in range(max(0, math.ceil(missing / _CHUNK_SAMPLES))):
            sends.append(self._zeros(min(_CHUNK_SAMPLES, missing)))
            missing -= _CHUNK_SAMPLES
        return sends

    def _zeros(self, samples: int) -> Send:
        self.fed_samples += samples
        audio = _SILENCE if samples == _CHUNK_SAMPLES else p.encode_audio(bytes(2 * samples))
        return Send(self.agent, {"type": "input_audio_buffer.append", "audio": audio})


_SILENCE = p.encode_audio(bytes(2 * _CHUNK_SAMPLES))
