"""A self-contained HTML report for a folder of recorded calls.

    from dualagent.analysis.report import build_report
    build_report("results/batch", "results/batch/report.html")

The report holds a summary table per caller type, the caller-type comparison plot and one
stacked-timelines plot per caller type (PNG, base64-embedded), a table of all calls, and per
call: its facts, a timeline plot, an audio player and the transcript (said and heard).

The page is rendered by Jinja2 from ``templates/report.html.j2`` with autoescaping on, so
whatever a recording holds (a transcript, an error message) shows as text, never as markup.

Audio: every player links the call's stereo recording by a path relative to the report (so the
report works next to the recordings without copying them), and the recording is also embedded
(base64) when it is smaller than ``embed_audio_max_bytes`` (2 MB by default, e.g. short or ogg
calls), so such calls still play when the report is mailed around on its own.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dualagent import analysis
from dualagent.analysis import plots

EMBED_AUDIO_MAX_BYTES = 2_000_000
MAX_CALL_TIMELINES = 200  # per-call timeline plots for the first calls only (each takes ~0.1 s)
AUDIO_MIME = {"wav": "audio/wav", "flac": "audio/flac", "ogg": "audio/ogg"}
TEMPLATE = "report.html.j2"
SPEAKER_LABELS = {"caller": "CALLER", "cs": "AGENT"}


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _text(value: Any) -> str:
    """A cell as text: empty for a missing value (None, NaN, NA)."""
    return "" if _missing(value) else str(value)


def _json(value: Any) -> str:
    """Tool arguments and outputs as JSON text; empty for a missing value."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return _text(value)


def _num(value: Any, digits: int = 2) -> str:
    """A number with ``digits`` decimals; empty for a missing or non-numeric value."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(number) else f"{number:.{digits}f}"


@functools.cache
def _template():  # -> jinja2.Template; Jinja2 loads on first use (not at import)
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dualagent.analysis", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["text"] = _text
    env.filters["json"] = _json
    return env.get_template(TEMPLATE)


def png_data_uri(fig: Any, dpi: int = 90) -> str:
    """A figure as a ``data:image/png;base64,...`` URI, for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(plots.figure_png(fig, dpi=dpi)).decode()


# ------------------------------------------------------------------------------ what is shown


def figures(calls: pd.DataFrame, turns: pd.DataFrame) -> list[dict[str, Any]]:
    """The caller-type comparison and one stacked-timelines plot per caller type."""
    if calls["caller_type"].dropna().empty:
        return []
    shown = [
        {
            "heading": "Caller types compared",
            "level": "h2",
            "alt": "caller types compared",
            "src": png_data_uri(plots.compare_caller_types(calls)),
        }
    ]
    for caller_type in analysis.caller_type_order(calls["caller_type"]):
        mine = turns[turns["caller_type"] == caller_type]
        if not mine.empty:
            fig = plots.caller_type_timelines(
                mine, title=f"{caller_type}: {mine['conversation_id'].nunique()} calls"
            )
            shown.append(
                {
                    "heading": f"{caller_type} calls",
                    "level": "h3",
                    "alt": f"{caller_type} timelines",
                    "src": png_data_uri(fig, dpi=70),
                }
            )
    return shown


def mood_section(calls: pd.DataFrame, mood: pd.DataFrame | None) -> dict[str, Any] | None:
    """The caller's mood across the calls: a table per caller type, the outcome by final
    patience, and the figures (trajectories, where patience ran out, outcome by mood); None
    when no call recorded a mood."""
    if mood is None or mood.empty or calls["caller_type"].dropna().empty:
        return None
    outcome = analysis.outcome_by_final_mood(calls, mood)
    shown = [
        ("Mood through the call", "caller mood trajectories", plots.mood_trajectories(mood)),
        ("Where patience ran out", "where patience ran out", plots.patience_ran_out(mood)),
        ("Outcome by final mood", "outcome by final mood", plots.outcome_by_final_mood(outcome)),
    ]
    return {
        "by_type": analysis.mood_by_caller_type(calls, mood).to_dict("records"),
        "outcome": outcome.to_dict("records"),
        "figures": [
            {"heading": heading, "level": "h3", "alt": alt, "src": png_data_uri(fig)}
            for heading, alt, fig in shown
        ],
    }


def audio_player(
    audio: Path, report_dir: Path, embed_max_bytes: int = EMBED_AUDIO_MAX_BYTES
) -> dict[str, str] | None:
    """An audio player for ``audio`` (``src``, ``href``, ``name``, ``note``): embedded if small,
    else linked relative to the report; None if there is no such file."""
    if not audio.is_file():
        return None
    relative = urllib.parse.quote(
        Path(os.path.relpath(audio.resolve(), report_dir.resolve())).as_posix()
    )
    mime = AUDIO_MIME.get(audio.suffix.lstrip("."), "audio/wav")
    size = audio.stat().st_size
    if size <= embed_max_bytes:
        source = f"data:{mime};base64,{base64.b64encode(audio.read_bytes()).decode()}"
        note = "embedded"
    else:
        source, note = relative, f"linked, {size / 1e6:.1f} MB"
    return {"src": source, "href": relative, "name": audio.name, "note": note}


def _outcome(call: pd.Series) -> dict[str, Any]:
    """The call's outcome dict, rebuilt from the flattened ``outcome.*`` columns."""
    return {k[len("outcome.") :]: v for k, v in call.items() if str(k).startswith("outcome.")}


def _checks(call: pd.Series) -> list[dict[str, Any]]:
    """Each success criterion, and each failure condition that happened; ``good`` if as hoped."""
    return [
        {**check, "good": check["met"] == (check["kind"] == "criterion")}
        for check in analysis.outcome_checks(_outcome(call))
        if check["kind"] == "criterion" or check["met"]
    ]


def call_view(
    call: pd.Series,
    turns: pd.DataFrame,
    tools: pd.DataFrame,
    report_dir: Path,
    *,
    embed_max_bytes: int,
    timeline: bool,
) -> dict[str, Any]:
    """What the report shows of one call (a row of ``load_calls`` and its turns and tools)."""
    audio = sorted(Path(call["path"]).glob("stereo_recording.*"))
    error, load_error = call["error"], call["load_error"]
    return {
        "conversation_id": str(call["conversation_id"]),
        **{
            key: call[key]
            for key in (
                "caller_type",
                "status",
                "end_reason",
                "route",
                "seed",
                "turn_count",
                "timeline_s",
                "mean_turn_gap_s",
                "mean_engine_latency_s",
                "tool_call_count",
            )
        },
        "outcome": call["outcome.result"] if isinstance(call["outcome.result"], str) else None,
        "checks": _checks(call),
        "error": error if isinstance(error, str) and error else None,
        "load_error": load_error if isinstance(load_error, str) and load_error else None,
        "audio": audio_player(audio[0], report_dir, embed_max_bytes) if audio else None,
        "timeline": (
            png_data_uri(plots.call_timeline(turns, tools), dpi=60)
            if timeline and not turns.empty
            else None
        ),
        "tools": tools.to_dict("records"),
        "turns": turns.to_dict("records"),
    }


# ------------------------------------------------------------------------------ the report


def render_report(
    calls: pd.DataFrame,
    turns: pd.DataFrame,
    tool_calls: pd.DataFrame,
    report_dir: Path,
    *,
    title: str = "dualagent calls",
    embed_audio_max_bytes: int = EMBED_AUDIO_MAX_BYTES,
    timelines: bool = True,
    mood: pd.DataFrame | None = None,
) -> str:
    """The report as one HTML string (``report_dir``: where it will be saved, for audio links;
    ``mood``: :func:`dualagent.analysis.load_mood` of the calls, for the caller-mood section)."""
    summary = analysis.summarize_by_caller_type(calls)
    views = [
        call_view(
            call,
            turns[turns["conversation_id"] == call["conversation_id"]],
            tool_calls[tool_calls["conversation_id"] == call["conversation_id"]],
            report_dir,
            embed_max_bytes=embed_audio_max_bytes,
            timeline=timelines and number < MAX_CALL_TIMELINES,
        )
        for number, (_, call) in enumerate(calls.iterrows())
    ]
    return _template().render(
        title=title,
        generated=f"{datetime.now(UTC):%Y-%m-%d %H:%M}",
        statuses=", ".join(f"{n} {s}" for s, n in calls["status"].value_counts().items()),
        summary=summary.to_dict("records"),
        rate_kind=summary["rate_kind"].iloc[0] if not summary.empty else "rate",
        figures=figures(calls, turns),
        mood=mood_section(calls, mood),
        calls=views,
        speaker_labels=SPEAKER_LABELS,
    )


def build_report(
    input_dir: str | Path,
    output: str | Path | None = None,
    *,
    title: str | None = None,
    embed_audio_max_bytes: int = EMBED_AUDIO_MAX_BYTES,
    timelines: bool = True,
) -> Path:
    """Write the HTML report for every call under ``input_dir``; returns its path.

    ``output`` defaults to ``input_dir/report.html``. Raises :class:`FileNotFoundError` if
    ``input_dir`` does not exist and :class:`ValueError` if it holds no calls.
    """
    input_dir = Path(input_dir)
    folders = analysis.find_conversations(input_dir)
    if not folders:
        raise ValueError(f"no calls found in {input_dir} (no folder with call_metadata.json)")
    output = Path(output) if output is not None else input_dir / "report.html"
    output.parent.mkdir(parents=True, exist_ok=True)
    page = render_report(
        analysis.load_calls(folders),
        analysis.load_turns(folders),
        analysis.load_tool_calls(folders),
        output.parent,
        title=title or f"dualagent calls in {input_dir}",
        embed_audio_max_bytes=embed_audio_max_bytes,
        timelines=timelines,
        mood=analysis.load_mood(folders),
    )
    output.write_text(page, encoding="utf-8")
    return output
