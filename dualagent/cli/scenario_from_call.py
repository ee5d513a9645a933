"""``dualagent scenario-from-call``: draft a scenario YAML from a recorded or a real call.

Registered by ``dualagent.cli`` through ``add_parser(subparsers)``. See
:mod:`dualagent.scenario_from_call` for what is read and inferred. Exit codes: 0 the draft was
written, 2 bad input (one line naming the bad value; nothing is written).
"""

from __future__ import annotations

import argparse
from typing import Any

from dualagent.cli.main import EXIT_OK, UsageError


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``scenario-from-call`` on the ``dualagent`` command's subparsers."""
    parser = subparsers.add_parser(
        "scenario-from-call",
        help="draft a scenario YAML from a recorded call or a real call's transcript",
        description="Read a recording folder, or a transcript JSON of a real call "
        '({"turns": [{"speaker": "caller"|"agent", "text": ..., "start_s": ..., "end_s": ...}], '
        '"audio": "caller.wav"}), and draft a scenario: the caller\'s goal, facts and persona '
        "settings (by rules, or by a language model with --llm) and the checks the original "
        "call failed. Edit it and keep it. Replay the caller's own audio against an agent with "
        "`dualagent run --caller-backend replay:FOLDER_OR_JSON`.",
    )
    parser.add_argument("call", metavar="FOLDER_OR_JSON", help="a recording folder or a .json")
    parser.add_argument(
        "--output", "-o", required=True, metavar="FILE.yaml", help="where to write the draft"
    )
    parser.add_argument(
        "--name", default=None, help="the scenario's name (default: from_<call name>)"
    )
    parser.add_argument(
        "--agent",
        default=None,
        metavar="NAME|PATH",
        help="the agent under test (default: the recording's, the JSON's \"agent\", else bank)",
    )
    parser.add_argument(
        "--llm",
        default=None,
        metavar="URL#MODEL",
        help="read goal, situation and facts with a language model at an OpenAI-compatible "
        "chat endpoint, e.g. http://127.0.0.1:11434/v1#qwen2.5:3b (key: env "
        "DUALAGENT_LLM_API_KEY); default: rules, offline",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE.yaml if it exists")
    parser.set_defaults(func=cmd_scenario_from_call)
    return parser


def cmd_scenario_from_call(args: argparse.Namespace) -> int:
    from pathlib import Path

    from dualagent.errors import InputError
    from dualagent.scenario_from_call import draft_from_path, write_draft

    output = Path(args.output)
    if output.exists() and not args.force:
        raise UsageError(f"--output {str(output)!r} exists; give --force to replace it")
    try:
        draft = draft_from_path(args.call, name=args.name, agent=args.agent, llm=args.llm)
        write_draft(draft, output)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    print(f"scenario:     {draft.data['name']} -> {output}")
    goal = draft.data["persona"]["goal"]
    print(f"goal:         {goal['primary_goal']}")
    facts = draft.data.get("facts") or draft.heard_facts
    print(f"facts:        {', '.join(f'{k}={v}' for k, v in facts.items()) or 'none found'}")
    personality = draft.data["persona"]["personality"]
    print(
        f"persona:      patience {personality['patience_level']}, interrupts "
        f"{personality['tendency_to_interrupt']}, {personality['communication_style']}"
    )
    if draft.failed_checks:
        print(f"failed:       {'; '.join(draft.failed_checks)}")
    return EXIT_OK
