"""``dualagent compare-agents``: paired A/B runs of two agent versions on identical seeds.

Registered by ``dualagent.cli`` through ``add_parser(subparsers)``. The selection and per-call
flags are ``dualagent batch``'s (:func:`dualagent.cli.batch.add_selection_flags`,
:func:`~dualagent.cli.batch.add_call_flags`). Exit codes:

- 0: both batches ran; with ``--fail-if-worse``: the candidate is not significantly worse
  (the gate decides; calls that ended in error count as failed calls in the pairs);
- 1: with ``--fail-if-worse``: McNemar's exact p < ``--alpha`` and the success rate dropped by
  at least ``--min-effect`` (one line says why); without it: a call ended in error; or the runs
  failed;
- 2: bad input (one line; nothing is written); 130: interrupted.

``--junit FILE`` writes a JUnit XML report: a test case per scenario or caller type and one
for the overall gate (:func:`dualagent.batch.ci.write_comparison_junit`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


def _share(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid value {text!r}; valid: a number from 0 to 1, e.g. 0.05"
        ) from None


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``compare-agents`` on the ``dualagent`` command's subparsers."""
    from dualagent.cli.batch import add_call_flags, add_selection_flags
    from dualagent.compare import DEFAULT_ALPHA, DEFAULT_MIN_EFFECT

    compare = subparsers.add_parser(
        "compare-agents",
        help="run two versions of the agent under test on identical calls and compare them",
        description="Run the same batch (same personas, seeds, lines and timings) once with "
        "--baseline and once with --candidate, pair the calls, and report what the candidate "
        "fixed and broke (McNemar's exact test, a bootstrap interval, pass^k). Writes "
        "OUTPUT_DIR/COMPARE_ID/{baseline,candidate}/ (batch folders), pairs.csv, summary.csv. "
        "With --fail-if-worse it is a CI gate: exit 1 when the candidate is significantly worse.",
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
    add_selection_flags(compare)
    gate = compare.add_argument_group("regression gate (for CI)")
    gate.add_argument(
        "--fail-if-worse",
        action="store_true",
        help="exit 1 when the candidate is significantly worse (McNemar p < ALPHA) and its "
        "success rate dropped by at least MIN_EFFECT",
    )
    gate.add_argument(
        "--alpha",
        type=_share,
        default=DEFAULT_ALPHA,
        metavar="ALPHA",
        help=f"significance level of the gate (default {DEFAULT_ALPHA:g})",
    )
    gate.add_argument(
        "--min-effect",
        type=_share,
        default=DEFAULT_MIN_EFFECT,
        metavar="DROP",
        help=f"smallest drop in success rate that fails the gate (default {DEFAULT_MIN_EFFECT:g})",
    )
    gate.add_argument(
        "--junit",
        default=None,
        metavar="FILE",
        help="write a JUnit XML report to FILE: a test case per scenario or caller type and "
        "one for the overall gate",
    )
    add_call_flags(compare, "every call (as dualagent batch; unset: the scenario's; no --agent)")
    compare.set_defaults(func=cmd_compare)
    return compare


def cmd_compare(args: argparse.Namespace) -> int:
    """Run both batches, print the comparison; the exit code as the module docstring says."""
    from dualagent.batch.ci import check_junit_path, write_comparison_junit
    from dualagent.call.options import CallDefaults, cli_fields
    from dualagent.cli import UsageError
    from dualagent.compare import check_gate_settings, compare_agents, write_comparison
    from dualagent.errors import InputError

    # --agent, if given, reaches compare_agents, which refuses it (one line, exit 2).
    call_defaults = {n: getattr(args, n) for n in cli_fields(CallDefaults) if hasattr(args, n)}
    try:
        check_gate_settings(args.alpha, args.min_effect)
        check_junit_path(args.junit)
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
    if args.junit:
        write_comparison_junit(comparison, args.junit, args.alpha, args.min_effect)
        print(f"junit:     {args.junit}")
    errors = comparison.baseline.errors + comparison.candidate.errors
    if errors:
        print(f"dualagent: {errors} call(s) ended in error", file=sys.stderr)
    if not args.fail_if_worse:
        return EXIT_FAILED if errors else EXIT_OK
    gate = comparison.gate(args.alpha, args.min_effect)
    write_comparison(comparison, gate)  # the verdict beside the figures
    print(f"dualagent: {gate.message()}", file=sys.stderr if gate.worse else sys.stdout)
    return EXIT_FAILED if gate.worse else EXIT_OK
