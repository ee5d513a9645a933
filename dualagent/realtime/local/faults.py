"""Faults on demand in the embedded server: a parsed :class:`FaultPlan` and its per-connection
trigger, :class:`ConnectionFaults`, which the server's pump asks before every event it sends.

Spec syntax (``dualagent local-server --faults SPEC``, ``LocalRealtimeServer(faults=SPEC)``)::

    SPEC  := ITEM[,ITEM...]
    ITEM  := FAULT[=VALUE]@AGENT[:WHEN]  |  seed=N
    FAULT := drop | close[=CODE] | error | malformed | unknown | stall[=SECONDS] | slow[=SECONDS]
           | reorder[=N]
    AGENT := caller | cs | any | a model name without ':'
    WHEN  := N (the agent's N-th response on a connection, 1-based; default 1) | random

``drop@cs:2,stall=3@caller:1`` drops the CS agent's connection during its second response and
stalls the caller for 3 s during its first. ``caller`` is the model ``local-caller``, ``cs`` is
the agent under test's scripted brain (``local-cs`` or ``local-agent``). ``random`` draws the response from 1..6 with the plan's ``seed`` (default 0), per
connection, reproducibly. Every matching connection (every call) gets the fault, once.

A fault fires at the first output delta (audio, transcript or text) of its response (or of a
later one, when that response says nothing), so the agent is mid-sentence:

- ``drop``: the TCP connection is cut with no close frame (the client sees code 1006);
- ``close``: a close frame with CODE (default 1011, internal error);
- ``error``: an ``error`` event (``server_error``), then the response goes on;
- ``malformed``: a text frame that is not JSON, then the response goes on;
- ``unknown``: an event of an unknown type, then the response goes on;
- ``stall``: nothing is sent for SECONDS (default 5), then the response goes on;
- ``slow``: from then on each audio/text delta is held back SECONDS (default 0.1);
- ``reorder``: that delta and the N-1 events after it (default N=2: a swap; fewer when the
  response ends first) are sent in reverse order, so events arrive out of order (a delta after
  its ``.done``, the ``response.done`` first, say).
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from typing import Any

FAULTS = ("drop", "close", "error", "malformed", "unknown", "stall", "slow", "reorder")
DEFAULT_VALUES = {"close": 1011.0, "stall": 5.0, "slow": 0.1, "reorder": 2.0}
AGENT_MODELS = {"caller": ("local-caller",), "cs": ("local-cs", "local-agent")}
MAX_REORDER = 10
RANDOM_MAX = 6  # ``:random`` picks a response in 1..RANDOM_MAX
CLOSE_CODES = "1000-1003, 1007-1014 or 3000-4999"
OUTPUT_DELTAS = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
    }
)
UNKNOWN_EVENT_TYPE = "dualagent.injected.unknown_event"
MALFORMED_FRAME = '{"type": "response.output_text.delta", "delta": '  # cut short: not JSON


class FaultSpecError(ValueError):
    """A bad ``--faults`` spec: the message names the bad part and the valid choices."""


@dataclass(frozen=True)
class Fault:
    kind: str
    agent: str  # caller | cs | any | a model name
    at: int | None  # 1-based response number; None: random
    value: float | None = None  # close code, stall seconds, slow seconds per delta

    def matches(self, model: str) -> bool:
        return self.agent == "any" or model in AGENT_MODELS.get(self.agent, (self.agent,))


@dataclass(frozen=True)
class FaultPlan:
    faults: tuple[Fault, ...] = ()
    seed: int = 0

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        faults: list[Fault] = []
        seed = 0
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                raise FaultSpecError(f"empty item in {spec!r}; write FAULT[=VALUE]@AGENT[:WHEN]")
            if part.startswith("seed="):
                try:
                    seed = int(part[5:])
                except ValueError:
                    raise FaultSpecError(f"{part!r}: the seed must be an integer") from None
                continue
            faults.append(_parse_item(part))
        if not faults:
            raise FaultSpecError(f"{spec!r} names no fault; valid faults: {', '.join(FAULTS)}")
        return cls(tuple(faults), seed)

    def for_connection(self, model: str, number: int) -> ConnectionFaults | None:
        """The faults aimed at the ``number``-th connection, serving ``model`` (None: none)."""
        chosen: list[tuple[Fault, int]] = []
        for index, fault in enumerate(self.faults):
            if fault.matches(model):
                at = fault.at
                if at is None:
                    at = random.Random(f"{self.seed}/{number}/{index}").randint(1, RANDOM_MAX)
                chosen.append((fault, at))
        return ConnectionFaults(chosen) if chosen else None


def _parse_item(part: str) -> Fault:
    form = "write FAULT[=VALUE]@AGENT[:WHEN]"
    head, at_sign, target = part.partition("@")
    if not at_sign or not target:
        raise FaultSpecError(f"{part!r}: no agent; {form}, AGENT one of caller, cs, any, a model")
    kind, equals, raw_value = head.partition("=")
    if kind not in FAULTS:
        raise FaultSpecError(f"{part!r}: unknown fault {kind!r}; valid faults: {', '.join(FAULTS)}")
    value: float | None = DEFAULT_VALUES.get(kind)
    if equals:
        if kind not in DEFAULT_VALUES:
            raise FaultSpecError(
                f"{part!r}: {kind} takes no value (only close, stall, slow, reorder do)"
            )
        try:
            value = float(raw_value)
        except ValueError:
            raise FaultSpecError(f"{part!r}: {raw_value!r} is not a number") from None
        if kind == "close" and not _valid_close_code(value):
            raise FaultSpecError(f"{part!r}: close code must be {CLOSE_CODES}")
        if kind == "reorder" and not (value == int(value) and 2 <= value <= MAX_REORDER):
            raise FaultSpecError(f"{part!r}: reorder takes 2 to {MAX_REORDER} events")
        if kind not in ("close", "reorder") and not 0 <= value <= 3600:
            raise FaultSpecError(f"{part!r}: {kind} seconds must be between 0 and 3600")
    agent, colon, when = target.partition(":")
    if not agent:
        raise FaultSpecError(f"{part!r}: no agent; valid: caller, cs, any or a model name")
    at: int | None = 1
    if colon:
        if when == "random":
            at = None
        elif when.isdigit() and int(when) >= 1:
            at = int(when)
        else:
            raise FaultSpecError(
                f"{part!r}: when {when!r} must be a response number (1, 2, ...) or 'random'"
            )
    return Fault(kind, agent, at, value)


def _valid_close_code(value: float) -> bool:
    code = int(value)
    return code == value and (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code < 5000)


class ConnectionFaults:
    """The faults of one connection: asked before each event the server sends."""

    def __init__(self, faults: list[tuple[Fault, int]]) -> None:
        self.pending = list(faults)  # (fault, response number it fires at)
        self.responses = 0
        self.slow_s = 0.0
        self.dead = False  # the line was cut or closed: send nothing more
        self.fired: list[Fault] = []
        self.held: list[dict[str, Any]] | None = None  # events being reordered
        self.hold_count = 0

    async def before_send(self, ws: Any, event: dict[str, Any]) -> bool:
        """Inject what is due before ``event``; False: do not send it (the line is gone)."""
        if self.dead:
            return False
        if self.held is not None:  # reordering: collect, then send them backwards
            self.held.append(event)
            # A response's events stay within it: its end sends what is held, however few.
            if len(self.held) >= self.hold_count or event.get("type") == "response.done":
                held, self.held = self.held, None
                for late in reversed(held):
                    await ws.send(json.dumps(late))
            return False
        kind = event.get("type")
        if kind == "response.created":
            self.responses += 1
        if kind not in OUTPUT_DELTAS:
            return True
        if self.slow_s:
            await asyncio.sleep(self.slow_s)
        due = [(f, at) for f, at in self.pending if self.responses >= at]
        for entry in due:
            self.pending.remove(entry)
            fault = entry[0]
            self.fired.append(fault)
            if fault.kind == "reorder":
                self.held, self.hold_count = [event], int(fault.value or 2)
                return False
            if not await self._inject(ws, fault):
                self.dead = True
                return False
        return True

    async def _inject(self, ws: Any, fault: Fault) -> bool:
        if fault.kind == "drop":
            ws.transport.abort()
            return False
        if fault.kind == "close":
            await ws.close(int(fault.value or 1011), "injected fault")
            return False
        if fault.kind == "error":
            error = {
                "type": "server_error",
                "code": "server_error",
                "message": "injected fault: the server had an error",
            }
            await ws.send(json.dumps({"type": "error", "event_id": "event_fault", "error": error}))
        elif fault.kind == "malformed":
            await ws.send(MALFORMED_FRAME)
        elif fault.kind == "unknown":
            await ws.send(json.dumps({"type": UNKNOWN_EVENT_TYPE, "event_id": "event_fault"}))
        elif fault.kind == "stall":
            await asyncio.sleep(fault.value or 0.0)
        elif fault.kind == "slow":
            self.slow_s = fault.value or 0.0
        return True
