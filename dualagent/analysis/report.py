"""A self-contained HTML report for a folder of recorded calls.

    from dualagent.analysis.report import build_report
    build_report("results/batch", "results/batch/report.html")

The report holds a summary table per caller type, the caller-type comparison plot and one
stacked-timelines plot per caller type (PNG, base64-embedded), a table of all calls, and per
call: its facts, a timeline plot, an audio player and the transcript (said and heard).

Audio: every player links the call's stereo recording by a path relative to the report (so the
report works next to the recordings without copying them), and the recording is also embedded
(base64) when it is smaller than ``embed_audio_max_bytes`` (2 MB by default, e.g. short or ogg
calls), so such calls still play when the report is mailed around on its own.
"""

from __future__ import annotations

import base64
import html
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

STYLE = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 90%; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; }
section.call { border-top: 2px solid #ccc; margin-top: 2em; padding-top: 0.5em; }
.caller { color: #2a6fb0; font-weight: bold; } .cs { color: #e07b24; font-weight: bold; }
.heard { color: #777; font-size: 90%; } .bad { color: #c00; font-weight: bold; } .ok { color: #2ca02c; }
"""


def _esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return html.escape(str(value))


def _num(value: Any, digits: int = 2) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if number != number else f"{number:.{digits}f}"


def _png(fig: Any, dpi: int = 90, alt: str = "plot") -> str:
    data = base64.b64encode(plots.figure_png(fig, dpi=dpi)).decode()
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{data}">'


def _table(headers: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _status(call: pd.Series) -> str:
    css = "ok" if call["status"] == "completed" else "bad"
    return f'<span class="{css}">{_esc(call["status"])}</span>'


# ------------------------------------------------------------------------------ sections


def summary_section(calls: pd.DataFrame) -> str:
    """Per caller type: n, rate with Wilson 95% CI, mean turns, duration, latency, talk ratio."""
    summary = analysis.summarize_by_caller_type(calls)
    if summary.empty:
        return "<h2>Summary by caller type</h2><p>No call has a readable caller type.</p>"
    kind = summary["rate_kind"].iloc[0] if not summary.empty else "rate"
    rows = [
        [
            _esc(r.caller_type),
            str(r.calls),
            f"{r.successes}/{r.rated} = {_num(r.rate)} [{_num(r.rate_ci_low)}, {_num(r.rate_ci_high)}]",
            _num(r.mean_turns, 1),
            _num(r.mean_duration_s, 1),
            _num(r.mean_latency_s, 3),
            _num(r.mean_caller_talk_ratio),
            _num(r.mean_interruptions, 1),
            _num(r.mean_tool_calls, 1),
        ]
        for r in summary.itertuples(index=False)
    ]
    headers = [
        "caller type",
        "calls",
        f"{kind} [95% CI]",
        "turns",
        "duration (s)",
        "latency (s)",
        "caller talk ratio",
        "interruptions",
        "tool calls",
    ]
    return "<h2>Summary by caller type</h2>" + _table(headers, rows, numeric={1, 3, 4, 5, 6, 7, 8})


def plots_section(calls: pd.DataFrame, turns: pd.DataFrame) -> str:
    if calls["caller_type"].dropna().empty:
        return ""
    parts = [
        "<h2>Caller types compared</h2>",
        _png(plots.compare_caller_types(calls), alt="caller types compared"),
    ]
    for caller_type in analysis.caller_type_order(calls["caller_type"]):
        mine = turns[turns["caller_type"] == caller_type]
        if not mine.empty:
            fig = plots.caller_type_timelines(
                mine, title=f"{caller_type}: {mine['conversation_id'].nunique()} calls"
            )
            parts += [
                f"<h3>{_esc(caller_type)} calls</h3>",
                _png(fig, dpi=70, alt=f"{caller_type} timelines"),
            ]
    return "".join(parts)


def calls_table(calls: pd.DataFrame) -> str:
    rows = [
        [
            f'<a href="#{_esc(c["conversation_id"])}">{_esc(c["conversation_id"])}</a>',
            _esc(c["caller_type"]),
            _status(c),
            _esc(c["end_reason"]),
            _esc(c["outcome.result"]),
            _num(c["turn_count"], 0),
            _num(c["timeline_s"], 1),
            _num(c["mean_response_latency_s"], 3),
            _num(c["tool_call_count"], 0),
            _esc(c["seed"]),
        ]
        for _, c in calls.iterrows()
    ]
    headers = [
        "conversation",
        "caller type",
        "status",
        "end reason",
        "outcome",
        "turns",
        "duration (s)",
        "latency (s)",
        "tool calls",
        "seed",
    ]
    return f"<h2>All calls ({len(calls)})</h2>" + _table(headers, rows, numeric={5, 6, 7, 8, 9})


def audio_html(audio: Path, report_dir: Path, embed_max_bytes: int = EMBED_AUDIO_MAX_BYTES) -> str:
    """An audio player for ``audio``: embedded if small, else linked relative to the report."""
    if not audio.is_file():
        return "<p><i>no recording</i></p>"
    relative = urllib.parse.quote(
        Path(os.path.relpath(audio.resolve(), report_dir.resolve())).as_posix()
    )
    mime = AUDIO_MIME.get(audio.suffix.lstrip("."), "audio/wav")
    size = audio.stat().st_size
    if size <= embed_max_bytes:
        source = f"data:{mime};base64,{base64.b64encode(audio.read_bytes()).decode()}"
        note = "embedded"
    else:
        source = relative
        note = f"linked, {size / 1e6:.1f} MB"
    return (
        f'<p><audio controls preload="none" src="{source}"></audio> '
        f'<a href="{relative}">{_esc(audio.name)}</a> <small>({note}; caller left, agent right)</small></p>'
    )


def transcript_html(turns: pd.DataFrame) -> str:
    rows = []
    for t in turns.itertuples(index=False):
        label = {"caller": "CALLER", "cs": "AGENT"}.get(str(t.speaker), _esc(t.speaker))
        heard = _esc(t.heard) if isinstance(t.heard, str) else "<i>(not heard)</i>"
        mark = " <i>(interrupted)</i>" if t.interrupted else ""
        rows.append(
            [
                _num(t.start_s, 1),
                f'<span class="{_esc(t.speaker)}">{label}</span>',
                f"{_esc(t.text)}{mark}<br><span class='heard'>heard: {heard}</span>",
            ]
        )
    return _table(["t (s)", "speaker", "said / heard"], rows, numeric={0})


def tools_html(tools: pd.DataFrame) -> str:
    if tools.empty:
        return "<p>No tool calls.</p>"
    rows = [
        [
            _num(t.t_s, 1),
            _esc(t.agent),
            f"<code>{_esc(t.name)}</code>",
            f"<code>{_esc(t.arguments)}</code>",
            '<span class="ok">ok</span>' if t.ok else '<span class="bad">failed</span>',
        ]
        for t in tools.itertuples(index=False)
    ]
    return _table(["t (s)", "agent", "tool", "arguments", "result"], rows, numeric={0})


def _outcome(call: pd.Series) -> dict[str, Any]:
    """The call's outcome dict, rebuilt from the flattened ``outcome.*`` columns."""
    return {k[len("outcome.") :]: v for k, v in call.items() if str(k).startswith("outcome.")}


def call_section(
    call: pd.Series,
    turns: pd.DataFrame,
    tools: pd.DataFrame,
    report_dir: Path,
    *,
    embed_max_bytes: int,
    timeline: bool,
) -> str:
    cid = str(call["conversation_id"])
    facts = (
        f"<p>{_esc(call['caller_type'])} caller, {_status(call)} ({_esc(call['end_reason'])}), "
        f"{_num(call['turn_count'], 0)} turns, {_num(call['timeline_s'], 1)} s, route {_esc(call['route'])}, "
        f"seed {_esc(call['seed'])}"
        + (
            f", outcome <b>{_esc(call['outcome.result'])}</b>"
            if isinstance(call["outcome.result"], str)
            else ""
        )
        + "</p>"
    )
    checks = [
        c for c in analysis.outcome_checks(_outcome(call)) if c["kind"] == "criterion" or c["met"]
    ]
    if checks:
        items = "".join(
            f'<li class="{"ok" if c["met"] == (c["kind"] == "criterion") else "bad"}">'
            f"{'✓' if c['met'] == (c['kind'] == 'criterion') else '✗'} {_esc(c['kind'])}: "
            f'{_esc(c["name"])} <small class="heard">{_esc(c["evidence"])}</small></li>'
            for c in checks
        )
        facts += f"<ul>{items}</ul>"
    if isinstance(call["error"], str) and call["error"]:
        facts += f'<p class="bad">error: {_esc(call["error"])}</p>'
    if isinstance(call["load_error"], str) and call["load_error"]:
        facts += f'<p class="bad">incomplete recording: {_esc(call["load_error"])}</p>'
    parts = [f'<section class="call" id="{_esc(cid)}"><h3>{_esc(cid)}</h3>', facts]
    audio = sorted(Path(call["path"]).glob("stereo_recording.*"))
    parts.append(
        audio_html(audio[0], report_dir, embed_max_bytes) if audio else "<p><i>no recording</i></p>"
    )
    if timeline and not turns.empty:
        parts.append(_png(plots.call_timeline(turns, tools), dpi=60, alt=f"timeline {cid}"))
    parts.append(
        f"<details><summary>Tool calls ({len(tools)})</summary>{tools_html(tools)}</details>"
    )
    parts.append(
        f"<details open><summary>Transcript ({len(turns)} utterances)</summary>{transcript_html(turns)}</details>"
    )
    return "".join(parts) + "</section>"


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
) -> str:
    """The report as one HTML string (``report_dir``: where it will be saved, for audio links)."""
    statuses = ", ".join(f"{n} {s}" for s, n in calls["status"].value_counts().items())
    head = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{_esc(title)}</h1>"
        f"<p>{len(calls)} calls ({_esc(statuses)}); generated {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>"
    )
    body = [summary_section(calls), plots_section(calls, turns), calls_table(calls)]
    for number, (_, call) in enumerate(calls.iterrows()):
        cid = call["conversation_id"]
        body.append(
            call_section(
                call,
                turns[turns["conversation_id"] == cid],
                tool_calls[tool_calls["conversation_id"] == cid],
                report_dir,
                embed_max_bytes=embed_audio_max_bytes,
                timeline=timelines and number < MAX_CALL_TIMELINES,
            )
        )
    return head + "".join(body) + "</body></html>"


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
    )
    output.write_text(page, encoding="utf-8")
    return output
