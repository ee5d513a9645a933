"""What a finished call left behind, with notebook conveniences: :class:`CallResult`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualagent.call.record import CallRecord, load_call


@functools.cache
def _template():  # -> jinja2.Template; Jinja2 loads on first use (not at import)
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dualagent.call", "templates"), autoescape=True
    )
    return env.get_template("call_result.html.j2")


@dataclass
class CallResult:
    """A recorded call: ``path``, ``metadata``, the transcript as a DataFrame, an audio player."""

    path: Path

    @property
    def record(self) -> CallRecord:
        """The recording as read now (:func:`dualagent.call.record.load_call`)."""
        return load_call(self.path)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.record.metadata

    @property
    def conversation_id(self) -> str:
        return self.record.conversation_id

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def end_reason(self) -> str | None:
        return self.record.end_reason

    @property
    def outcome(self) -> str | None:
        """``success``, ``failure`` or ``incomplete``; None if the call was not judged."""
        return self.record.outcome

    @property
    def success(self) -> bool | None:
        """Did the call succeed (:func:`dualagent.call.record.call_success`)? None: unknown."""
        return self.record.success

    @property
    def turns(self) -> list[dict[str, Any]]:
        return self.record.turns

    @property
    def function_calls(self) -> list[dict[str, Any]]:
        return self.record.function_calls

    @property
    def transcript(self):  # -> pandas.DataFrame
        """One row per utterance: speaker, text, heard, start_s, end_s, interrupted, latency."""
        import pandas as pd

        return pd.DataFrame(self.turns)

    def audio_path(self, channel: str = "stereo_recording") -> Path:
        fmt = self.metadata.get("audio_format", "wav")
        return self.path / f"{channel}.{fmt}"

    def audio(self, channel: str = "stereo_recording"):  # -> IPython.display.Audio
        """An inline player for the recording (``caller_audio``, ``cs_audio`` or stereo)."""
        from IPython.display import Audio

        return Audio(filename=str(self.audio_path(channel)))

    def summary(self) -> dict[str, Any]:
        """What ``dualagent run --json`` prints."""
        record = self.record
        return {
            "conversation_id": record.conversation_id,
            "path": str(self.path),
            "status": record.status,
            "end_reason": record.end_reason,
            "caller_type": record.caller_type,
            "turns": record.turn_count,
            "duration_s": record.timeline_s,
            "wall_time_s": record.wall_time_s,
            "tool_calls": [c.get("name") for c in record.function_calls],
            "outcome": record.outcome,
            "success": record.success,
            "error": record.error,
        }

    def explain(self, tail: int = 6) -> str:
        """Why the call did or did not succeed, for a test failure or a CI report: the verdict,
        how the call ended, the unmet criteria and the failure conditions that held (each with
        its evidence), the recording and the last ``tail`` utterances."""
        return explain_record(self.record, tail)

    def _repr_html_(self) -> str:
        return _template().render(s=self.summary(), turns=self.turns)


def explain_record(record: CallRecord, tail: int = 6) -> str:
    """:meth:`CallResult.explain` for a record already read (batch reports read each once)."""
    verdict = {True: "success", False: "not a success", None: "not judged (unknown)"}
    outcome = record.outcome_details
    expected = outcome.get("expected_outcome")
    lines = [
        f"call {record.conversation_id}: {verdict[record.success]}"
        f" (outcome {record.outcome or 'none'}"
        + (f", scenario expects {expected}" if expected else "")
        + ")",
        f"status: {record.status}, end reason: {record.end_reason or 'none'}",
    ]
    if record.error:
        lines.append(f"error: {record.error}")
    if record.metadata.get("evaluation_error"):
        lines.append(f"evaluation error: {record.metadata['evaluation_error']}")
    unmet = [c for c in outcome.get("criteria") or [] if not c.get("passed")]
    held = [f for f in outcome.get("failures") or [] if f.get("passed")]
    for title, checks in (("unmet criteria", unmet), ("failure conditions met", held)):
        if checks:
            lines.append(f"{title}:")
            lines += [f"  - {c.get('name')}: {c.get('evidence')}" for c in checks]
    lines.append(f"recording: {record.path}")
    if tail > 0 and record.turns:
        shown = record.turns[-tail:]
        lines.append(f"last {len(shown)} of {len(record.turns)} utterances:")
        speaker = {"caller": "CALLER", "cs": "AGENT "}
        lines += [
            f"  {speaker.get(t.get('speaker'), t.get('speaker'))}: {t.get('text')}" for t in shown
        ]
    return "\n".join(lines)
