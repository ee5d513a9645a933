"""A call that happened, read for drafting a scenario or for replaying its caller.

Two kinds of call are read (:func:`load_real_call`):

- **a recording of ours** (a folder written by :class:`~dualagent.call.recording.CallRecorder`,
  read with the one reader, :func:`~dualagent.call.record.load_call`): its transcript, the
  caller's audio channel, and its metadata (the scenario it played, its evaluation);
- **a transcript JSON of a real call**: ``{"turns": [...], "audio": "caller.wav", "agent":
  "clinic"}`` or a bare list of turns, each ``{"speaker": "caller"|"agent", "text": "...",
  "start_s": 1.2, "end_s": 3.4}`` (times optional, seconds from the call's start; ``cs`` is
  read as ``agent``; ``"hangs_up": true`` on a caller turn). ``audio`` (optional, relative to
  the JSON file) is the caller's channel: a mono file, or a stereo one with the caller on the
  left; any rate (resampled to 24 kHz).

:func:`caller_responses` cuts the caller's responses out of its channel by the turns' times:
the samples the recording holds, for :mod:`dualagent.realtime.replay`. Drafting a scenario is
:mod:`dualagent.scenario_from_call`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dualagent.errors import InputError

__all__ = [
    "CallerResponse",
    "RealCall",
    "RealTurn",
    "caller_responses",
    "load_real_call",
    "read_caller_channel",
    "turn_samples",
]

SAMPLE_RATE_HZ = 24_000
SPEAKERS = {"caller": "caller", "agent": "agent", "cs": "agent"}
# Around a turn's times (rounded to the millisecond in our transcripts) the caller channel is
# read this much wider, then its exact silence (zeros) is trimmed: a turn's own samples.
TURN_PAD_S = 0.002


@dataclass
class RealTurn:
    """One utterance of a real call."""

    speaker: Literal["caller", "agent"]
    text: str
    start_s: float | None = None
    end_s: float | None = None
    interrupted: bool = False  # the other side cut in on it
    response_id: str | None = None  # utterances of one response are replayed together
    hangs_up: bool = False  # the caller ended the call after this utterance (end_call)


@dataclass
class RealCall:
    """A call to draft a scenario from, or to replay: its turns, and what else is known."""

    source: Path
    turns: list[RealTurn]
    caller_audio: Path | None = None
    agent: str | None = None  # the agent under test, if the source says
    metadata: dict[str, Any] = field(default_factory=dict)  # a recording's call_metadata

    @property
    def caller_turns(self) -> list[RealTurn]:
        return [t for t in self.turns if t.speaker == "caller"]

    @property
    def recorded(self) -> bool:
        """Whether this is a recording of ours (it knows its scenario and evaluation)."""
        return bool(self.metadata)


# ------------------------------------------------------------------------------ reading


def load_real_call(path: str | Path) -> RealCall:
    """Read a recording folder or a transcript JSON (see the module docstring).

    Raises :class:`~dualagent.errors.InputError` (one line naming the bad value) for a path
    that is neither, a transcript without caller turns, or a turn that is not as described.
    """
    source = Path(path)
    if source.is_dir():
        return _from_recording(source)
    if not source.is_file():
        raise InputError(
            f"call {str(source)!r}: no such folder or file; give a recording folder or a "
            "transcript .json"
        )
    return _from_transcript_json(source)


def _from_recording(folder: Path) -> RealCall:
    from dualagent.call.record import is_call_folder, load_call

    if not is_call_folder(folder):
        raise InputError(
            f"call {str(folder)!r}: not a recording (no call_metadata.json); give a recording "
            "folder or a transcript .json"
        )
    record = load_call(folder)
    if not record.turns:
        raise InputError(f"call {str(folder)!r}: its transcript has no turns ({record.load_error})")
    hang_ups = {
        c.get("turn_index")
        for c in record.function_calls
        if c.get("agent") == "caller" and c.get("name") == "end_call" and c.get("ok", True)
    }
    turns = []
    for turn in record.turns:
        speaker = SPEAKERS.get(str(turn.get("speaker")))
        if speaker is None:
            continue
        turns.append(
            RealTurn(
                speaker=speaker,  # type: ignore[arg-type]
                text=str(turn.get("text") or ""),
                start_s=_float(turn.get("start_s")),
                end_s=_float(turn.get("end_s")),
                interrupted=bool(turn.get("interrupted")),
                response_id=turn.get("response_id"),
                hangs_up=speaker == "caller" and turn.get("index") in hang_ups,
            )
        )
    audio_format = (record.metadata.get("audio_format") or "wav").lower()
    audio = folder / f"caller_audio.{audio_format}"
    agent = (record.metadata.get("agent") or {}).get("name")
    return RealCall(
        source=folder,
        turns=turns,
        caller_audio=audio if audio.is_file() else None,
        agent=agent,
        metadata=record.metadata,
    )


def _from_transcript_json(path: Path) -> RealCall:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"call {str(path)!r}: unreadable: {exc}") from None
    except ValueError as exc:
        raise InputError(f"call {str(path)!r}: not JSON ({exc})") from None
    if isinstance(data, list):
        data = {"turns": data}
    if not isinstance(data, dict) or not isinstance(data.get("turns"), list):
        raise InputError(
            f'call {str(path)!r}: expected a list of turns or {{"turns": [...]}}, got '
            f"{type(data).__name__}"
        )
    turns = [_turn(raw, i, path) for i, raw in enumerate(data["turns"])]
    if not any(t.speaker == "caller" for t in turns):
        raise InputError(f"call {str(path)!r}: no caller turns (speaker: caller)")
    audio = data.get("audio")
    audio_path = None
    if audio is not None:
        if not isinstance(audio, str) or not audio:
            raise InputError(f"call {str(path)!r}: audio: expected a file path, got {audio!r}")
        audio_path = (path.parent / audio).resolve()
        if not audio_path.is_file():
            raise InputError(f"call {str(path)!r}: audio: no such file {str(audio_path)!r}")
    agent = data.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise InputError(f"call {str(path)!r}: agent: expected a name or path, got {agent!r}")
    return RealCall(source=path, turns=turns, caller_audio=audio_path, agent=agent)


def _turn(raw: Any, index: int, path: Path) -> RealTurn:
    where = f"call {str(path)!r}: turns.{index}"
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected a mapping, got {type(raw).__name__}")
    speaker = SPEAKERS.get(str(raw.get("speaker")))
    if speaker is None:
        raise InputError(
            f"{where}.speaker: {raw.get('speaker')!r} is not a speaker; valid choices: caller, "
            "agent"
        )
    text = raw.get("text")
    if not isinstance(text, str):
        raise InputError(f"{where}.text: expected text, got {text!r}")
    times = {}
    for key in ("start_s", "end_s"):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise InputError(f"{where}.{key}: expected seconds, got {value!r}")
        if value is not None and value < 0:
            raise InputError(f"{where}.{key}: {value!r} is negative; valid: 0 or more seconds")
        times[key] = None if value is None else float(value)
    if None not in times.values() and times["end_s"] < times["start_s"]:  # type: ignore[operator]
        raise InputError(f"{where}.end_s: {times['end_s']} is before start_s {times['start_s']}")
    return RealTurn(
        speaker=speaker,  # type: ignore[arg-type]
        text=text.strip(),
        start_s=times["start_s"],
        end_s=times["end_s"],
        interrupted=bool(raw.get("interrupted", False)),
        hangs_up=bool(raw.get("hangs_up", False)),
    )


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ------------------------------------------------------------------------------ caller audio


@dataclass
class CallerResponse:
    """What the caller said in one response: its utterances' text and audio (PCM16 mono at
    24 kHz, the recording's own samples), and whether it hung up after them."""

    texts: list[str]
    pcm16: list[bytes]
    hangs_up: bool = False


def read_caller_channel(path: Path) -> np.ndarray:
    """The caller's channel as int16 samples at 24 kHz (left of a stereo file)."""
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    except (OSError, RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(f"audio {str(path)!r}: unreadable: {exc}") from None
    samples = data[:, 0]
    if rate != SAMPLE_RATE_HZ:
        import soxr

        floats = soxr.resample(samples.astype(np.float32) / 32768.0, rate, SAMPLE_RATE_HZ)
        samples = np.clip(np.round(floats * 32768.0), -32768, 32767).astype(np.int16)
    return samples


def turn_samples(channel: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """The samples of one turn: its times widened by :data:`TURN_PAD_S`, exact silence at both
    ends trimmed (the recorder writes zeros where a speaker is quiet)."""
    pad = round(TURN_PAD_S * SAMPLE_RATE_HZ)
    first = max(0, round(start_s * SAMPLE_RATE_HZ) - pad)
    last = min(len(channel), round(end_s * SAMPLE_RATE_HZ) + pad)
    segment = channel[first:last]
    voiced = np.flatnonzero(segment)
    if voiced.size == 0:
        return segment[:0]
    return segment[voiced[0] : voiced[-1] + 1]


def caller_responses(call: RealCall) -> list[CallerResponse]:
    """The caller's responses in order, with their audio cut from the caller's channel by the
    turns' times (utterances of one response together). Raises
    :class:`~dualagent.errors.InputError` when the call has no caller audio or a caller turn
    has no times."""
    if call.caller_audio is None:
        raise InputError(
            f"call {str(call.source)!r}: no caller audio to replay (a recording's caller_audio "
            'file, or "audio" in a transcript JSON)'
        )
    channel = read_caller_channel(call.caller_audio)
    responses: list[CallerResponse] = []
    last_key: object = None
    for index, turn in enumerate(call.turns):
        if turn.speaker != "caller":
            last_key = None
            continue
        if turn.start_s is None or turn.end_s is None:
            raise InputError(
                f"call {str(call.source)!r}: turns.{index}: a caller turn needs start_s and "
                "end_s to cut its audio"
            )
        pcm = turn_samples(channel, turn.start_s, turn.end_s).tobytes()
        key = turn.response_id or object()
        if responses and key == last_key:
            responses[-1].texts.append(turn.text)
            responses[-1].pcm16.append(pcm)
            responses[-1].hangs_up |= turn.hangs_up
        else:
            responses.append(CallerResponse([turn.text], [pcm], turn.hangs_up))
        last_key = key
    return responses
