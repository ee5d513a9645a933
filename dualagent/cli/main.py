"""The ``dualagent`` command (also ``python -m dualagent``).

Exit codes: 0 ok, 1 the call or command failed at run time, 2 bad input (one clear line on
stderr naming the bad value and the valid choices; nothing is written).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dualagent.version import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input from the command line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, exit 2
        self.exit(EXIT_USAGE, f"dualagent: error: {message}\n")


def _speaker_label(speaker: str | None) -> str:
    return {"caller": "CALLER", "cs": "AGENT "}.get(speaker or "", "      ")


def _make_logger(verbose: bool, quiet: bool) -> Callable[[Any], None]:
    def show(entry: Any) -> None:
        if quiet:
            return
        if entry.kind == "turn":
            print(f"{_speaker_label(entry.speaker)}: {entry.text}", flush=True)
        elif entry.kind == "tool" and verbose:
            print(f"        [tool] {entry.text}", flush=True)
        elif entry.kind in ("error", "info"):
            print(f"        [{entry.kind}] {entry.text}", file=sys.stderr, flush=True)

    return show


def cmd_run(args: argparse.Namespace) -> int:
    from dualagent.call.options import CallOptions, cli_fields
    from dualagent.call.simulate import simulate
    from dualagent.errors import InputError

    given = {name: getattr(args, name) for name in cli_fields() if hasattr(args, name)}
    try:
        options = CallOptions.build(**given)
        result = asyncio.run(
            simulate(options=options, on_log=_make_logger(args.verbose, args.json))
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    summary = result.summary()
    if args.json:
        print(json.dumps(summary))
    else:
        print()
        print(f"conversation: {summary['conversation_id']}")
        print(f"recording:    {summary['path']}")
        print(f"status:       {summary['status']} ({summary['end_reason']})")
        print(
            f"turns:        {summary['turns']}   call length: {summary['duration_s']} s   "
            f"simulated in {summary['wall_time_s']} s"
        )
        print(f"tool calls:   {', '.join(summary['tool_calls']) or 'none'}")
        if summary.get("outcome"):
            print(f"outcome:      {summary['outcome']}")
            for criterion in result.metadata.get("outcome", {}).get("criteria", []):
                mark = "pass" if criterion["passed"] else "FAIL"
                print(f"  [{mark}] {criterion['name']}: {criterion['evidence']}")
        if summary.get("error"):
            print(f"error:        {summary['error']}")
    return EXIT_OK if result.status == "completed" else EXIT_FAILED


def cmd_local_server(args: argparse.Namespace) -> int:
    from dualagent.realtime.local.server import LocalRealtimeServer

    if args.selftest:
        return asyncio.run(_selftest())
    llm_names = _register_llms(args.llm or [])
    faults = None
    if args.faults:
        from dualagent.realtime.local.faults import FaultPlan, FaultSpecError

        try:
            faults = FaultPlan.parse(args.faults)
        except FaultSpecError as exc:
            raise UsageError(f"--faults: {exc}") from None

    async def serve() -> None:
        server = LocalRealtimeServer(args.host, args.port, faults=faults)
        await server.start()
        # Printed once the engines are warm and the port is open (the bench waits for it).
        print(
            f"dualagent local Realtime server on {server.url}?model=local-cs (Ctrl-C to stop)",
            flush=True,
        )
        for name in llm_names:
            print(f"  language model: ?model={name}", flush=True)
        try:
            await asyncio.Future()
        finally:
            await server.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return EXIT_OK


def _register_llms(specs: list[str]) -> list[str]:
    """``--llm URL#MODEL``: serve ``llm:MODEL`` with that endpoint (llm:MODEL@URL always works)."""
    from dualagent.realtime.local.brains.llm import LlmEndpoint, register_llm

    try:
        return [register_llm(LlmEndpoint.parse(spec)) for spec in specs]
    except ValueError as exc:
        raise UsageError(f"--llm: {exc}") from None


async def _selftest() -> int:
    """Speak one sentence through the server's TTS and hear it back through its ASR."""
    from dualagent.realtime import protocol as p
    from dualagent.realtime.client import RealtimeConnection
    from dualagent.realtime.local.server import LocalRealtimeServer

    async with LocalRealtimeServer() as server:
        speaker = await RealtimeConnection.connect(server.url + "?model=local-cs")
        listener = await RealtimeConnection.connect(server.url + "?model=local-cs")
        # A new session has server VAD on (as the hosted service): we commit ourselves.
        await listener.send(p.SessionUpdate(session=p.session_config()))
        await speaker.send(p.ResponseCreate())
        said = ""
        async for event in speaker:
            if event["type"] == "response.output_audio.delta":
                await listener.send(p.InputAudioBufferAppend(audio=event["delta"]))
            elif event["type"] == "response.output_audio_transcript.done":
                said = event["transcript"]
            elif event["type"] == "response.done":
                break
        await listener.send(p.InputAudioBufferCommit())
        async for event in listener:
            if event["type"] == "conversation.item.input_audio_transcription.completed":
                print(f"said:  {said}\nheard: {event['transcript']}")
                break
        await speaker.close()
        await listener.close()
    return EXIT_OK


def cmd_personas(args: argparse.Namespace) -> int:
    from dualagent.personas import list_personas, load_persona

    for name in list_personas():
        persona = load_persona(name)
        pers = persona.personality
        print(
            f"{name:<11} patience {pers.patience_level:>2}/10  interrupts {pers.tendency_to_interrupt:.0%}  "
            f"clear info {pers.provides_clear_info:.0%}  rate {pers.speaking_rate:.2f}x  {persona.description}"
        )
    return EXIT_OK


def cmd_agents(args: argparse.Namespace) -> int:
    from dualagent.agent_spec import list_agents, load_agent

    for name in list_agents():
        spec = load_agent(name)
        tools = ", ".join(t.name for t in spec.tools)
        print(
            f"{name:<11} {spec.turn_detection.type:<12} {len(spec.tools):>2} tools  "
            f"{spec.description}\n{'':<11} tools: {tools}"
        )
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dualagent.bench import PARTS, run_bench

    if args.soak:
        from dualagent.soak import run_soak

        report = asyncio.run(run_soak())
        print("\n".join(report.lines()))
        return EXIT_FAILED if report.leaked else EXIT_OK
    parts = [p.strip() for p in args.parts.split(",") if p.strip()] if args.parts else None
    for part in parts or []:
        if part not in PARTS:
            raise UsageError(f"invalid bench part {part!r}; valid choices: {', '.join(PARTS)}")
    if args.compare:
        try:
            json.loads(Path(args.compare).read_text(encoding="utf-8"))["figures"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"--compare {args.compare}: not a bench report ({exc})") from None
    return run_bench(
        parts, as_json=args.json, quick=args.quick, output=args.output, compare=args.compare
    )


def cmd_scenarios(args: argparse.Namespace) -> int:
    from dualagent.scenarios import list_scenarios, load_scenario

    for name in list_scenarios():
        scenario = load_scenario(name)
        persona = scenario.resolve_persona()
        line = scenario.line.name if scenario.line else "clean"
        # The intent is the bank's banking intent, or another agent's own label for the call.
        print(
            f"{name:<36} {scenario.agent_name:<8} {persona.name:<11} {scenario.intent or '':<23} "
            f"line {line:<10} expect {scenario.expected_outcome}"
        )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from dualagent.call.options import add_cli_flags

    parser = _Parser(
        prog="dualagent", description="Two voice agents call each other; every call is recorded."
    )
    parser.add_argument("--version", action="version", version=f"dualagent {__version__}")
    parser.add_argument(
        "--log-level",
        type=_log_level,
        default=_log_level(os.environ.get("DUALAGENT_LOG_LEVEL") or "WARNING"),
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING (default, or $DUALAGENT_LOG_LEVEL) or ERROR; secrets are "
        "never logged at any level",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run one simulated call and record it")
    add_cli_flags(run)  # one flag per CallOptions field
    run.add_argument("--verbose", "-v", action="store_true", help="also show tool calls")
    run.add_argument(
        "--json", action="store_true", help="print one JSON summary line instead of the transcript"
    )
    run.set_defaults(func=cmd_run)

    local = sub.add_parser("local-server", help="run the embedded Realtime-compatible server")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8765)
    local.add_argument(
        "--selftest", action="store_true", help="speak one sentence and recognise it, then exit"
    )
    local.add_argument(
        "--llm",
        action="append",
        metavar="URL#MODEL",
        help="serve ?model=llm:MODEL with the model at this OpenAI-compatible chat endpoint, "
        "e.g. http://127.0.0.1:11434/v1#qwen2.5:3b (repeatable; key: env DUALAGENT_LLM_API_KEY)",
    )
    local.add_argument(
        "--faults",
        metavar="SPEC",
        help="inject faults for testing, e.g. drop@cs:2,stall=3@caller:1 (see docs/reliability.md)",
    )
    local.set_defaults(func=cmd_local_server)

    personas = sub.add_parser("personas", help="list the built-in caller personas")
    personas.set_defaults(func=cmd_personas)

    agents = sub.add_parser(
        "agents", help="list the shipped agent specs (the agents under test: --agent NAME)"
    )
    agents.set_defaults(func=cmd_agents)

    scenarios = sub.add_parser("scenarios", help="list the built-in scenarios")
    scenarios.set_defaults(func=cmd_scenarios)

    bench = sub.add_parser(
        "bench", help="measure speed, overhead, memory and storage on this machine"
    )
    bench.add_argument(
        "--parts",
        default=None,
        help="comma list of: engines, calls, batch, concurrency, start (default: all)",
    )
    bench.add_argument(
        "--quick",
        action="store_true",
        help="every part, small (under 2 minutes): checks that each figure is produced; "
        "its timings are not the figures",
    )
    bench.add_argument("--output", metavar="FILE", help="also write the figures to FILE (JSON)")
    bench.add_argument(
        "--compare", metavar="OLD.json", help="print each figure's change since an --output file"
    )
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    bench.add_argument(
        "--soak",
        action="store_true",
        help="instead: 10 concurrent audio calls then 200 text calls on one server; "
        "report open files, threads, processes and memory before and after (exit 1 if any grew)",
    )
    bench.set_defaults(func=cmd_bench)

    # Command groups in their own modules register themselves on the same subparsers.
    from dualagent.cli import analysis, batch, compare, doctor, serve

    analysis.add_parser(sub)
    serve.add_parser(sub)
    doctor.add_parser(sub)
    batch.add_parser(sub)
    compare.add_parser(sub)
    from dualagent.cli import calibrate

    calibrate.add_parser(sub)
    from dualagent.cli import scenario_from_call

    scenario_from_call.add_parser(sub)
    return parser


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(text: str) -> str:
    if text.upper() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"invalid log level {text!r}; valid choices: {', '.join(LOG_LEVELS)}"
        )
    return text.upper()


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (a scheduler, `kill`, a container stop) ends a command as Ctrl-C does: the call
    in progress is finalised as "interrupted" and the exit code is 130, also when SIGINT is
    ignored (a background job of a shell script inherits SIGINT ignored)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler):  # asyncio's runner cancels its main task; Python's default raises
            handler(signal.SIGINT, frame)
        else:  # SIGINT ignored (a script's background job, `nohup`): SIGTERM still stops us
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()
    except argparse.ArgumentTypeError as exc:  # a bad $DUALAGENT_LOG_LEVEL
        print(f"dualagent: error: DUALAGENT_LOG_LEVEL: {exc}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        with _sigterm_as_ctrl_c():
            return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"dualagent: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Recordings are already finalised; do not wait for queued speech synthesis.
        from dualagent.realtime.local import engines

        engines.shutdown_engines()
        print("dualagent: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `dualagent analyze ... | head`
        sys.stderr.close()
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
