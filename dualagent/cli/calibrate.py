"""``dualagent judge-calibrate``: how far to trust a judge, measured on planted faults.

Registered by ``dualagent.cli`` through ``add_parser(subparsers)``. Runs the calibration set
(:data:`dualagent.evaluation.calibration.CASES`: clean calls and calls where the scripted bank
agent plants a fault), judges every criterion with the rule checks or an LLM judge, prints
precision and recall per criterion and writes calibration.csv, summary.csv, report.md and
calibration.json to ``--output-dir``. Exit codes: 0 done; 1 the calls or the judge failed
(one line); 2 bad input (one line; nothing is written); 130 interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_OUTPUT_DIR = "judge_calibration"


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``judge-calibrate`` on the ``dualagent`` command's subparsers."""
    from dualagent.cli.batch import _positive_int
    from dualagent.evaluation.calibration import JUDGES, ROUTES

    calibrate = subparsers.add_parser(
        "judge-calibrate",
        help="measure a judge's precision and recall per criterion on calls with planted faults",
        description="Run calls of the scripted bank agent, clean and with planted faults "
        "(skipped verification, a wrong amount, a promise no tool kept, an early transfer), "
        "judge every criterion and report precision and recall per criterion against the "
        "known truth.",
    )
    calibrate.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        metavar="DIR",
        help=f"where the calls and the report go (default: {DEFAULT_OUTPUT_DIR}; must not "
        "hold a calibration already)",
    )
    calibrate.add_argument(
        "--judge", choices=JUDGES, default="rules", help="rules (default) or llm"
    )
    calibrate.add_argument("--route", choices=ROUTES, default="text", help="default text")
    calibrate.add_argument(
        "--repeat", type=_positive_int, default=1, metavar="K", help="calls per case (seeds)"
    )
    calibrate.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    calibrate.add_argument(
        "--parallel", type=_positive_int, default=4, metavar="N", help="calls at a time"
    )
    calibrate.add_argument(
        "--judge-url",
        default=None,
        metavar="URL",
        help="llm: an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1 (default: "
        "OPENAI_BASE_URL or the hosted service; the key comes from OPENAI_API_KEY)",
    )
    calibrate.add_argument(
        "--judge-model", default=None, metavar="MODEL", help="llm: the model to ask"
    )
    calibrate.set_defaults(func=cmd_calibrate)
    return calibrate


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Run the calibration and print its table; the exit code as the module docstring says."""
    from dualagent.cli import UsageError
    from dualagent.errors import InputError
    from dualagent.evaluation.calibration import calibrate

    if args.seed < 0:
        raise UsageError(f"seed: invalid value {args.seed}; valid: 0 or more")
    try:
        result = asyncio.run(
            calibrate(
                args.output_dir,
                judge=args.judge,
                route=args.route,
                repeat=args.repeat,
                seed=args.seed,
                parallel=args.parallel,
                judge_url=args.judge_url,
                judge_model=args.judge_model,
            )
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise KeyboardInterrupt from None
    except Exception as exc:  # the calls or the judge's client failed
        print(f"dualagent: judge-calibrate failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(result.format())
    print(f"report:  {result.path / 'report.md'}")
    return EXIT_OK
