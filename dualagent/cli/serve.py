"""``dualagent serve`` (the service and its monitor page) and ``dualagent clean`` (retention).

Registered by ``dualagent.cli`` through ``add_parser(subparsers)``. Exit codes: 0 ok, 2 bad
input (one line naming the value and the valid choices).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from typing import Any

EXIT_OK = 0


def add_parser(subparsers: Any) -> None:
    """Register ``serve`` and ``clean`` on the ``dualagent`` command's subparsers."""
    from dualagent.service.settings import DEFAULT_BATCH_DIR, DEFAULT_OUTPUT_DIR, TOKEN_ENV

    serve = subparsers.add_parser(
        "serve",
        help="serve calls over HTTP/websocket, with a live monitor page",
        description="Start calls over a websocket (/agent-conversation?caller_type=...), watch "
        "them live in the browser (/), read recordings (/conversations) and run batches "
        "(/batches). OpenAPI docs at /docs.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    serve.add_argument(
        "--max-conversations",
        type=int,
        default=10,
        metavar="N",
        help="calls at once; more are refused with 1013 (default 10)",
    )
    serve.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        metavar="DIR",
        help=f"where calls are recorded (default {DEFAULT_OUTPUT_DIR})",
    )
    serve.add_argument(
        "--batch-dir",
        default=DEFAULT_BATCH_DIR,
        metavar="DIR",
        help=f"where batches go (default {DEFAULT_BATCH_DIR})",
    )
    serve.add_argument(
        "--retention-days",
        type=float,
        default=7.0,
        metavar="DAYS",
        help="delete recordings and batches older than this, at start and daily (default 7)",
    )
    serve.add_argument(
        "--token",
        default=None,
        help=f"required on every request (bearer or ?token=); needed off localhost "
        f"(default: ${TOKEN_ENV})",
    )
    serve.add_argument(
        "--executor",
        default="local",
        metavar="local|dask://HOST:PORT",
        help="where batch calls run (default: here, on the shared embedded server)",
    )
    serve.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024,
        metavar="BYTES",
        help="largest message or request body a client may send (default 65536)",
    )
    serve.set_defaults(func=cmd_serve)

    clean = subparsers.add_parser(
        "clean",
        help="delete recordings and batches older than an age",
        description="Delete call folders and batch folders directly inside the given folders "
        "whose call or batch started longer ago than --older-than.",
    )
    clean.add_argument(
        "--older-than", default="7d", metavar="AGE", help="e.g. 7d, 12h, 30m (default 7d)"
    )
    clean.add_argument(
        "--output-dir",
        action="append",
        default=None,
        metavar="DIR",
        help=f"a folder of recordings or batches; repeatable (default: {DEFAULT_OUTPUT_DIR} "
        f"and {DEFAULT_BATCH_DIR})",
    )
    clean.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    clean.set_defaults(func=cmd_clean)


def cmd_serve(args: argparse.Namespace) -> int:
    from dualagent.batch.runner import check_executor
    from dualagent.cli import UsageError
    from dualagent.errors import InputError
    from dualagent.service.server import serve
    from dualagent.service.settings import TOKEN_ENV, ServiceSettings

    try:
        # The batches' executor, checked now: a typo must not wait for the first batch.
        check_executor(args.executor)
        settings = ServiceSettings.build(
            host=args.host,
            port=args.port,
            max_conversations=args.max_conversations,
            output_dir=args.output_dir,
            batch_dir=args.batch_dir,
            retention_days=args.retention_days,
            token=args.token or os.environ.get(TOKEN_ENV),
            executor=args.executor,
            max_message_bytes=args.max_message_bytes,
        )
    except InputError as exc:
        raise UsageError(str(exc)) from None
    service_log = logging.getLogger("dualagent.service")
    if service_log.getEffectiveLevel() > logging.INFO:  # calls started/ended, retention
        service_log.setLevel(logging.INFO)
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"dualagent service on http://{shown}:{settings.port}/ (docs: /docs)", flush=True)
    if settings.token_required:
        print("a token is required on every request (Authorization: Bearer or ?token=)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings))
    return EXIT_OK


def cmd_clean(args: argparse.Namespace) -> int:
    from dualagent.cli import UsageError
    from dualagent.errors import InputError
    from dualagent.service.retention import clean, parse_age
    from dualagent.service.settings import DEFAULT_BATCH_DIR, DEFAULT_OUTPUT_DIR

    try:
        older_than_s = parse_age(args.older_than)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    roots = args.output_dir or [DEFAULT_OUTPUT_DIR, DEFAULT_BATCH_DIR]
    removed = clean(roots, older_than_s, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for entry in removed:
        size_mb = entry.bytes / 1e6
        print(f"{verb} {entry.kind} {entry.path} ({entry.age_days:g} days old, {size_mb:.1f} MB)")
    total_mb = sum(e.bytes for e in removed) / 1e6
    print(
        f"{verb} {len(removed)} folder{'s' if len(removed) != 1 else ''} older than "
        f"{args.older_than} ({total_mb:.1f} MB) from {', '.join(str(r) for r in roots)}"
    )
    return EXIT_OK
