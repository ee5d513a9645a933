"""``dualagent batch``: run many calls (caller types or scenarios × repeat) and summarise them.

Registered by ``dualagent.cli`` through ``add_parser(subparsers)``. Exit codes:

- 0: every call ran (whatever its outcome); with ``--min-success RATE`` (or ``min_success`` in
  the config): the success rate reached RATE;
- 1: the success rate is below ``--min-success`` (one line says the rate and the threshold;
  calls that ended in error count as failed calls in it), or, without a threshold, a call
  ended in error; or the batch machinery or the notebook failed;
- 2: bad input (one line naming the value and the valid choices; nothing is written);
- 130: interrupted (Ctrl-C, SIGTERM); the manifest and the ``--junit`` report say so.

``--junit FILE`` writes a JUnit XML report (one test case per call) that CI systems show.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}; valid: a positive whole number"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid value {text!r}; valid: a positive whole number")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}; valid: a share of the judged calls from 0 to 1, e.g. 0.9"
        ) from None


def _names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_selection_flags(parser: argparse.ArgumentParser) -> None:
    """Add the flags that choose a batch's calls (``--caller-types``, ``--scenarios``,
    ``--repeat``, ``--parallel``, ``--output-dir``, ``--seed``, ``--no-progress``) to
    ``parser``: ``dualagent batch`` and ``dualagent compare-agents`` share them."""
    from dualagent.batch import DEFAULT_OUTPUT_DIR
    from dualagent.personas import list_personas

    parser.add_argument(
        "--caller-types",
        type=_names,
        metavar="A,B",
        help=f"comma-separated personas: {', '.join(list_personas())}, or .yaml paths (default: all four)",
    )
    parser.add_argument(
        "--scenarios", type=_names, metavar="X,Y", help="comma-separated scenario names"
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        metavar="K",
        help="calls per caller type / scenario (default 1)",
    )
    parser.add_argument(
        "--parallel",
        type=_positive_int,
        nargs="?",
        const=None,
        metavar="N",
        help="calls at a time (default: 16 on the text route, one per CPU core on audio)",
    )
    parser.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        help=f"where the runs go (default: {DEFAULT_OUTPUT_DIR})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="base seed; each call's seed derives from it (default 0)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_call_flags(parser: argparse.ArgumentParser, title: str) -> None:
    """Add one flag per :class:`~dualagent.call.options.CallDefaults` field (as ``dualagent
    run``), in a group titled ``title``."""
    from dualagent.call.options import CallDefaults, add_cli_flags

    add_cli_flags(parser.add_argument_group(title), CallDefaults)  # type: ignore[arg-type]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``batch`` on the ``dualagent`` command's subparsers."""
    from dualagent.batch import list_configs

    batch = subparsers.add_parser(
        "batch",
        help="run many calls (caller types / scenarios × repeat) and summarise them",
        description="Run every caller type or scenario REPEAT times, N calls at a time; each call is "
        "recorded under OUTPUT_DIR/BATCH_ID/ with a batch.json manifest, calls.csv and summary.csv/json.",
    )
    batch.add_argument(
        "--config",
        metavar="NAME|PATH",
        help=f"built-in config ({', '.join(list_configs())}) or a .yaml file; options below override it",
    )
    add_selection_flags(batch)
    batch.add_argument(
        "--executor",
        default="local",
        metavar="local|dask://HOST:PORT",
        help="run calls here (default) or as tasks on a Dask cluster",
    )
    batch.add_argument(
        "--processes",
        type=_positive_int,
        default=None,
        metavar="N",
        help="local executor: N worker processes, one call at a time each (default: one per "
        "core for fast text batches of 64 calls or more, else 1: all calls in this process)",
    )
    batch.add_argument(
        "--batch-id",
        default=None,
        help="batch folder name: letters, digits, - and _ (default: NAME-TIME-XXXX)",
    )
    batch.add_argument(
        "--resume",
        action="store_true",
        help="re-run only the calls of --batch-id that did not complete",
    )
    batch.add_argument(
        "--notebook",
        default=None,
        metavar="PATH",
        help="afterwards, execute this notebook with papermill (input_dir/output_dir = the batch folder)",
    )
    batch.add_argument(
        "--retries",
        type=int,
        default=None,
        metavar="N",
        help="run a call again, up to N times, when it failed on a rate limit or a transient "
        "connect or server error (default 0; recorded in the manifest)",
    )
    batch.add_argument(
        "--min-success",
        type=_number,  # the range is checked with the config (one definition)
        default=None,
        metavar="RATE",
        help="fail (exit 1) when the success rate of the judged calls is below RATE, 0 to 1 "
        "(calls that ended in error count as failed; never-judged ones are left out)",
    )
    batch.add_argument(
        "--junit",
        default=None,
        metavar="FILE",
        help="write a JUnit XML report to FILE: a test case per call, a suite per scenario or "
        "caller type (for CI test reports)",
    )
    add_call_flags(batch, "every call (overrides the config; unset: the scenario's)")
    batch.set_defaults(func=cmd_batch)
    return batch


def cmd_batch(args: argparse.Namespace) -> int:
    """Run the batch, print its summary; the exit code as the module docstring says."""
    from dualagent import batch
    from dualagent.call.options import CallDefaults, cli_fields
    from dualagent.cli import UsageError
    from dualagent.errors import InputError

    call_defaults = {n: getattr(args, n) for n in cli_fields(CallDefaults) if hasattr(args, n)}

    try:
        result = asyncio.run(
            batch.run(
                args.config,
                caller_types=args.caller_types,
                scenarios=args.scenarios,
                repeat=args.repeat,
                parallel=args.parallel,
                executor=args.executor,
                processes=args.processes,
                output_dir=args.output_dir,
                seed=args.seed,
                resume=args.resume,
                progress=not args.no_progress,
                batch_id=args.batch_id,
                notebook=args.notebook,
                retries=args.retries,
                min_success=args.min_success,
                junit=args.junit,
                **call_defaults,
            )
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise KeyboardInterrupt from None
    except Exception as exc:  # the batch machinery itself failed (e.g. Dask scheduler unreachable)
        print(f"dualagent: batch failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED

    print(batch.format_summary(result))
    if args.junit:
        print(f"junit:    {args.junit}")
    gate = result.gate
    if gate is None:
        failed = result.errors > 0
    else:  # the threshold decides: a call in error is a failed call in the rate
        failed = not gate.passed
        print(f"dualagent: {gate.message()}", file=sys.stdout if gate.passed else sys.stderr)
    notebook = result.manifest.get("notebook")
    if notebook:
        print(f"notebook: {notebook['output']} ({notebook['status']})")
        if notebook["status"] != "completed":
            print(f"dualagent: notebook failed: {notebook['error']}", file=sys.stderr)
            failed = True
    return EXIT_FAILED if failed else EXIT_OK
