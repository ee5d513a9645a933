"""Which brain answers for which model name: ``register_brain`` / ``brain_for``.

A session's model (``?model=local-cs`` or ``session.model``) names its brain exactly; there is
no guessing from parts of the name. The scripted brains are registered below. A new kind of
brain (an LLM behind the same server, say) registers a factory under its own name::

    register_brain("local-llm", lambda profile: LlmBrain(profile))

This module imports no brain at import time (the factories import theirs when called), so the
session can check model names without loading the brains' language tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dualagent.realtime.local.brains.base import Brain

BrainFactory = Callable[[dict[str, Any]], "Brain"]
"""Makes one brain for one session from the profile in its instructions."""

LOCAL_CALLER_MODEL = "local-caller"
LOCAL_CS_MODEL = "local-cs"

_FACTORIES: dict[str, BrainFactory] = {}


class UnknownBrainError(ValueError):
    """No brain is registered under a model name."""


def register_brain(model_name: str, factory: BrainFactory) -> None:
    """Serve sessions of ``model_name`` with brains made by ``factory`` (replaces an earlier one)."""
    if not model_name:
        raise ValueError("a brain's model name must not be empty")
    _FACTORIES[model_name] = factory


def brain_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_FACTORIES)


def is_registered(model_name: str | None) -> bool:
    return model_name in _FACTORIES


def unknown_brain_message(model_name: str | None) -> str:
    """The error for a model no brain serves, naming it and the valid choices."""
    choices = ", ".join(f"'{name}'" for name in brain_names())
    return (
        f"Invalid value: '{model_name or ''}'. The local server has no brain for this model; "
        f"supported values are: {choices}."
    )


def brain_for(model_name: str | None) -> BrainFactory:
    """The factory registered for ``model_name``; :class:`UnknownBrainError` if there is none."""
    try:
        return _FACTORIES[model_name or ""]
    except KeyError:
        raise UnknownBrainError(unknown_brain_message(model_name)) from None


def _scripted_caller(profile: dict[str, Any]) -> Brain:
    from dualagent.realtime.local.brains.caller import CallerBrain

    return CallerBrain(profile)


def _scripted_cs(profile: dict[str, Any]) -> Brain:
    from dualagent.realtime.local.brains.cs import CustomerServiceBrain

    return CustomerServiceBrain(profile)


register_brain(LOCAL_CALLER_MODEL, _scripted_caller)
register_brain(LOCAL_CS_MODEL, _scripted_cs)
