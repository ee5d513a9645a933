"""``dualagent analyze | report | compare``: look at recorded calls from the command line.

    dualagent analyze agent_conversations/typical-20261125T143046-f1629c
    dualagent analyze --conversation-id typical-20261125T143046-f1629c [--output-dir DIR]
    dualagent report --input-dir results/batch --output report.html
    dualagent compare --input-dir results/batch --output-dir results/compare

Registered by :mod:`dualagent.cli` through ``add_parser(subparsers)``. Handlers return an exit
code; bad input raises :class:`dualagent.cli.UsageError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path
from typing import Any

from dualagent.call.record import METADATA_FILE, is_call_folder, load_call
from dualagent.cli import EXIT_OK, UsageError

DEFAULT_OUTPUT_DIR = "agent_conversations"

# (label, column) of the call metrics ``analyze`` shows when the recording has them; the turn
# gap is the silence between turns on the call timeline (not the engine latency above it)
KEY_METRICS = [
    ("turn gap mean", "mean_turn_gap_s"),
    ("p95", "metrics.response_latency_s.p95"),
    ("silence share", "metrics.silence_share"),
    ("word error rate", "metrics.wer.overall"),
    ("time to outcome", "metrics.time_to_outcome_s"),
]


def add_parser(subparsers: Any) -> None:
    """Register ``analyze``, ``report`` and ``compare`` on the main CLI's subparsers."""
    analyze = subparsers.add_parser(
        "analyze", help="summarise one recorded call: status, latency, tools, transcript"
    )
    analyze.add_argument(
        "conversation_dir", nargs="?", metavar="CONVERSATION_DIR", help="the call's folder"
    )
    analyze.add_argument(
        "--conversation-id", default=None, help="find the call by id in --output-dir instead"
    )
    analyze.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        help=f"where recordings are, for --conversation-id (default: {DEFAULT_OUTPUT_DIR})",
    )
    analyze.add_argument(
        "--no-heard", action="store_true", help="show only what was said, not what was heard"
    )
    analyze.set_defaults(func=cmd_analyze)

    report = subparsers.add_parser(
        "report", help="write a self-contained HTML report for a folder of calls"
    )
    report.add_argument(
        "--input-dir", required=True, help="folder with recorded calls (searched recursively)"
    )
    report.add_argument(
        "--output", default=None, help="HTML file to write (default: INPUT_DIR/report.html)"
    )
    report.add_argument("--title", default=None)
    report.add_argument(
        "--embed-audio-max-mb",
        type=float,
        default=2.0,
        help="embed recordings up to this size; larger ones are linked (default: 2)",
    )
    report.add_argument(
        "--no-timelines", action="store_true", help="leave out the per-call timeline plots"
    )
    report.set_defaults(func=cmd_report)

    compare = subparsers.add_parser(
        "compare", help="CSV tables and PNG plots comparing caller types"
    )
    compare.add_argument(
        "--input-dir", required=True, help="folder with recorded calls (searched recursively)"
    )
    compare.add_argument("--output-dir", required=True, help="where the CSV and PNG files go")
    compare.set_defaults(func=cmd_compare)


# ------------------------------------------------------------------------------ helpers


def _call_folders(input_dir: str) -> list[Path]:
    from dualagent import analysis

    root = Path(input_dir)
    if not root.is_dir():
        raise UsageError(f"input folder not found: {root}")
    folders = analysis.find_conversations(root)
    if not folders:
        raise UsageError(f"no calls found in {root} (no folder with call_metadata.json)")
    return folders


def _conversation_folder(args: argparse.Namespace) -> Path:
    if args.conversation_dir and args.conversation_id:
        raise UsageError("give either CONVERSATION_DIR or --conversation-id, not both")
    if args.conversation_id:
        folder = Path(args.output_dir) / args.conversation_id
        if not folder.is_dir():
            raise UsageError(
                f"conversation {args.conversation_id!r} not found in {args.output_dir}"
            )
    elif args.conversation_dir:
        folder = Path(args.conversation_dir)
        if not folder.is_dir():
            raise UsageError(f"conversation folder not found: {folder}")
    else:
        raise UsageError("give a CONVERSATION_DIR or --conversation-id ID")
    if not is_call_folder(folder):
        raise UsageError(f"not a recorded call (no {METADATA_FILE}): {folder}")
    return folder


def _fmt(value: Any, unit: str = "", digits: int = 2) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if math.isnan(number) else f"{number:.{digits}f}{unit}"


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _seconds(value: Any) -> str:
    """Seconds, as milliseconds when under one second (text-route latencies are tiny)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if math.isnan(number):
        return "n/a"
    return f"{number * 1000:.0f} ms" if abs(number) < 1 else f"{number:.2f} s"


def _count(value: Any) -> str:
    return _fmt(value, digits=0)


def _short(value: Any, limit: int = 80) -> str:
    text = (
        ", ".join(f"{k}={v!r}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_call(folder: Path, *, heard: bool = True) -> str:
    """The readable summary ``dualagent analyze`` prints for one call folder."""
    from dualagent import analysis

    record = load_call(folder)
    call = analysis.load_calls(record).iloc[0]
    turns = analysis.load_turns(record)
    tools = analysis.load_tool_calls(record)
    latency = analysis.latency_stats(record.engine_latencies_s)
    lines = [
        f"conversation: {call['conversation_id']}",
        f"recording:    {call['path']}",
        f"caller type:  {call['caller_type']}   scenario: {call['scenario.name']}   "
        f"route: {call['route']}   seed: {call['seed']}",
        f"status:       {call['status']} ({call['end_reason']})",
    ]
    if isinstance(call["outcome.result"], str):
        lines.append(f"outcome:      {call['outcome.result']}")
        for check in analysis.outcome_checks(record.outcome_details):
            if check["kind"] == "failure condition" and not check["met"]:
                continue
            good = check["met"] == (check["kind"] == "criterion")
            lines.append(f"  [{'x' if good else ' '}] {check['kind']}: {check['name']}")
    if isinstance(call["error"], str) and call["error"]:
        lines.append(f"error:        {call['error']}")
    if isinstance(call["load_error"], str) and call["load_error"]:
        lines.append(f"incomplete:   {call['load_error']}")
    lines += [
        f"turns:        {_count(call['turn_count'])} ({len(turns)} utterances)   "
        f"call length: {_fmt(call['timeline_s'], ' s', 1)}   simulated in {_seconds(call['wall_time_s'])}",
        f"engine latency: mean {_seconds(latency['mean'])}   median {_seconds(latency['median'])}   "
        f"p95 {_seconds(latency['p95'])}   max {_seconds(latency['max'])}   ({latency['count']} responses)",
        f"talk time:    caller {_fmt(call['caller_talk_s'], ' s', 1)}, agent {_fmt(call['cs_talk_s'], ' s', 1)} "
        f"(caller share {_fmt(call['caller_talk_ratio'] * 100, '%', 0)})   interruptions: "
        f"{_count(call['interruption_count'])}   overlap: {_fmt(call['overlap_s'], ' s', 1)}",
    ]
    shown = [
        (
            label,
            _seconds(call.get(key))
            if key.endswith(("_s", ".mean", ".p95"))
            else _fmt(call.get(key), digits=3),
        )
        for label, key in KEY_METRICS
        if key in call.index and not _missing(call.get(key))
    ]
    if shown:
        lines.append("metrics:      " + "   ".join(f"{label} {value}" for label, value in shown))
    lines.append(f"tool calls:   {len(tools)}")
    for tool in tools.itertuples(index=False):
        result = "ok" if tool.ok else "FAILED"
        lines.append(
            f"  [{_fmt(tool.t_s, 's', 1):>7}] {tool.agent} {tool.name}({_short(tool.arguments)}) -> {result}"
        )
    lines.append("transcript (said, and what the other side heard):" if heard else "transcript:")
    text = analysis.transcript_text(turns, heard=heard)
    lines += ["  " + line for line in text.splitlines()] if text else ["  (no turns recorded)"]
    return "\n".join(lines)


# ------------------------------------------------------------------------------ handlers


def cmd_analyze(args: argparse.Namespace) -> int:
    print(format_call(_conversation_folder(args), heard=not args.no_heard))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from dualagent.analysis.report import build_report

    folders = _call_folders(args.input_dir)
    if args.embed_audio_max_mb < 0:
        raise UsageError(
            f"invalid --embed-audio-max-mb {args.embed_audio_max_mb}; valid: 0 or more"
        )
    output = Path(args.output) if args.output else None
    if output is not None and output.is_dir():
        raise UsageError(f"--output must be a file name, not a folder: {output}")
    path = build_report(
        args.input_dir,
        output,
        title=args.title,
        embed_audio_max_bytes=int(args.embed_audio_max_mb * 1_000_000),
        timelines=not args.no_timelines,
    )
    print(f"report: {path} ({len(folders)} calls)")
    return EXIT_OK


def write_comparison(input_dir: str | Path, output_dir: str | Path) -> list[Path]:
    """CSV tables (calls, turns, tool calls, by caller type) and PNG plots; returns the files."""
    from dualagent import analysis
    from dualagent.analysis import plots

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    calls = analysis.load_calls(input_dir)
    turns = analysis.load_turns(input_dir)
    tables = {
        "calls.csv": calls,
        "turns.csv": turns,
        "tool_calls.csv": analysis.load_tool_calls(input_dir),
        "by_caller_type.csv": analysis.summarize_by_caller_type(calls),
    }
    written = []
    for name, frame in tables.items():
        frame.to_csv(out / name, index=False)
        written.append(out / name)
    if calls["caller_type"].notna().any():
        plots.compare_caller_types(calls).savefig(out / "compare_caller_types.png", dpi=100)
        written.append(out / "compare_caller_types.png")
    for caller_type in analysis.caller_type_order(calls["caller_type"]):
        mine = turns[turns["caller_type"] == caller_type]
        if mine.empty:
            continue
        path = out / f"timelines_{re.sub(r'[^A-Za-z0-9_-]+', '_', caller_type)}.png"
        plots.caller_type_timelines(mine, title=f"{caller_type} calls").savefig(path, dpi=80)
        written.append(path)
    return written


def cmd_compare(args: argparse.Namespace) -> int:
    folders = _call_folders(args.input_dir)
    written = write_comparison(args.input_dir, args.output_dir)
    print(f"compared {len(folders)} calls; wrote:")
    for path in written:
        print(f"  {path}")
    return EXIT_OK
