"""dualagent: let two voice agents call each other over the Realtime protocol.

A caller agent plays a persona with a goal; a banking customer-service agent answers with
function tools. Every call is recorded (audio, transcript, tool calls, metrics) for analysis.

    result = await dualagent.simulate(caller_type="frustrated", duration=60)
    result.transcript      # pandas DataFrame, one row per turn
    result.audio()         # inline player in Jupyter
"""

from dualagent.call.options import CallOptions
from dualagent.call.result import CallResult
from dualagent.call.simulate import run, simulate
from dualagent.errors import InputError
from dualagent.personas import (
    CallerGoal,
    CallerPersonality,
    CallerType,
    Persona,
    list_personas,
    load_persona,
)
from dualagent.version import __version__

__all__ = [
    "CallOptions",
    "CallResult",
    "CallerGoal",
    "CallerPersonality",
    "CallerType",
    "InputError",
    "Persona",
    "__version__",
    "list_personas",
    "load_persona",
    "run",
    "simulate",
]
