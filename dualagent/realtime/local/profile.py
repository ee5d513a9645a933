"""The machine-readable profile section inside session instructions.

The caller's persona and goal reach the local brain the same way they reach a hosted model:
inside the session ``instructions``. Below the prose for a language model we add a fenced JSON
block under a fixed heading; the scripted brains parse it back. No side channel, so a session
config works unchanged against a hosted model.
"""

from __future__ import annotations

import json
import re
from typing import Any

PROFILE_HEADING = "## Agent profile (machine-readable)"
_BLOCK = re.compile(re.escape(PROFILE_HEADING) + r"\s*```json\s*(\{.*?\})\s*```", re.DOTALL)


def render_profile(profile: dict[str, Any]) -> str:
    """The profile section to append to instructions."""
    return f"{PROFILE_HEADING}\n```json\n{json.dumps(profile, indent=2, sort_keys=True)}\n```\n"


def parse_profile(instructions: str | None) -> dict[str, Any]:
    """The profile found in ``instructions``, or ``{}`` when there is none or it is malformed."""
    match = _BLOCK.search(instructions or "")
    if not match:
        return {}
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}
