"""``dualagent compare-agents``: paired A/B runs of two agent versions on identical seeds.

Registered by ``dualagent.cli`` through ``add_parser(subparsers)``. The selection flags are
``dualagent batch``'s own (taken from its parser, not copied). Exit codes: 0 both batches ran
(whatever the outcomes), 1 a call ended in error or the runs failed, 2 bad input (one line;
nothing is written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1

# dualagent batch's flags that mean the same for a comparison (plus every CallDefaults flag
# but --agent, which --baseline / --candidate replace).
SHARED_DESTS = (
    "caller_types",
    "scenarios",
    "repeat",
    "parallel",
    "output_dir",
    "seed",
    "no_progress",
)


def _batch_actions() -> dict[str, argparse.Action]:
    """The actions of ``dualagent batch``'s parser, by destination."""
    from dualagent.cli import batch

    scratch = argparse.ArgumentParser(add_help=False).add_subparsers()
    return {action.dest: action for action in batch.add_parser(scratch)._actions}


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``compare-agents`` on the ``dualagent`` command's subparsers."""
    from dualagent.call.options import CallDefaults, cli_fields

    compare = subparsers.add_parser(
        "compare-agents",
        help="run two versions of the agent under test on identical calls and compare them",
        description="Run the same batch (same personas, seeds, lines and timings) once with "
        "--baseline and once with --candidate, pair the calls, and report what the candidate "
        "fixed and broke (McNemar's exact test, a bootstrap interval, pass^k). Writes "
        "OUTPUT_DIR/COMPARE_ID/{baseline,candidate}/ (batch folders), pairs.csv, summary.csv.",
    )
    compare.add_argument(
        "--baseline", required=True, metavar="NAME|PATH", help="the current agent spec"
    )
    compare.add_argument(
        "--candidate", required=True, metavar="NAME|PATH", help="the new agent spec"
    )
    compare.add_argument(
        "--compare-id",
        default=None,
        help="comparison folder name: letters, digits, - and _ (default: compare-TIME-XXXX)",
    )
    actions = _batch_actions()
    for dest in SHARED_DESTS:
        compare._add_action(actions[dest])  # the same Action objects, as argparse parents= does
    calls = compare.add_argument_group("every call (as dualagent batch; unset: the scenario's)")
    for dest in cli_fields(CallDefaults):
        if dest != "agent" and dest in actions:
            calls._add_action(actions[dest])
    compare.set_defaults(func=cmd_compare)
    return compare


def cmd_compare(args: argparse.Namespace) -> int:
    """Run both batches, print the comparison; the exit code as the module docstring says."""
    from dualagent.call.options import CallDefaults, cli_fields
    from dualagent.cli import UsageError
    from dualagent.compare import compare_agents
    from dualagent.errors import InputError

    call_defaults = {
        n: getattr(args, n) for n in cli_fields(CallDefaults) if n != "agent" and hasattr(args, n)
    }
    try:
        comparison = asyncio.run(
            compare_agents(
                args.baseline,
                args.candidate,
                caller_types=args.caller_types,
                scenarios=args.scenarios,
                repeat=args.repeat,
                parallel=args.parallel,
                output_dir=args.output_dir,
                compare_id=args.compare_id,
                seed=args.seed,
                progress=not args.no_progress,
                **call_defaults,
            )
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise KeyboardInterrupt from None
    except Exception as exc:  # the batch machinery itself failed
        print(f"dualagent: compare-agents failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(comparison.format())
    errors = comparison.baseline.errors + comparison.candidate.errors
    if errors:
        print(f"dualagent: {errors} call(s) ended in error", file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK
