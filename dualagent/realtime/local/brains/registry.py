"""Which brain answers for which model name: ``register_brain`` / ``brain_for``.

A session's model (``?model=local-cs`` or ``session.model``) names its brain exactly; there is
no guessing from parts of the name. The scripted brains are registered below. A new kind of
brain (an LLM behind the same server, say) registers a factory under its own name::

    register_brain("local-llm", lambda profile: LlmBrain(profile))

A family of names can be served by a prefix: ``llm:MODEL@URL`` names a model at an
OpenAI-compatible endpoint (:mod:`~dualagent.realtime.local.brains.llm`); a malformed name of
that family is refused with what was wrong. ``llm:MODEL`` alone is an exact name, registered by
``dualagent local-server --llm URL#MODEL``.

This module imports no brain at import time (the factories import theirs when called), so the
session can check model names without loading the brains' language tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dualagent.realtime.local.brains.base import AnyBrain, Brain

BrainFactory = Callable[[dict[str, Any]], "AnyBrain"]
"""Makes one brain for one session from the profile in its instructions."""

LOCAL_CALLER_MODEL = "local-caller"
LOCAL_CS_MODEL = "local-cs"
LOCAL_AGENT_MODEL = "local-agent"

_FACTORIES: dict[str, BrainFactory] = {}
# prefix -> a resolver: full model name -> factory (ValueError saying why for a malformed name)
_PREFIXES: dict[str, Callable[[str], BrainFactory]] = {}
_PATTERNS: dict[str, str] = {}  # prefix -> the form of its names, shown in errors


class UnknownBrainError(ValueError):
    """No brain is registered under a model name."""


def register_brain(model_name: str, factory: BrainFactory) -> None:
    """Serve sessions of ``model_name`` with brains made by ``factory`` (replaces an earlier one)."""
    if not model_name:
        raise ValueError("a brain's model name must not be empty")
    _FACTORIES[model_name] = factory


def register_brain_prefix(
    prefix: str, resolve: Callable[[str], BrainFactory], pattern: str | None = None
) -> None:
    """Serve every model name starting with ``prefix`` that ``resolve`` accepts (it raises
    ``ValueError`` saying why for one it does not). ``pattern`` shows the form in errors."""
    if not prefix:
        raise ValueError("a brain prefix must not be empty")
    _PREFIXES[prefix] = resolve
    _PATTERNS[prefix] = pattern or f"{prefix}..."


def brain_names() -> list[str]:
    """The registered model names, sorted."""
    return sorted(_FACTORIES)


def _resolve(model_name: str | None) -> BrainFactory:
    name = model_name or ""
    if name in _FACTORIES:
        return _FACTORIES[name]
    for prefix, resolve in _PREFIXES.items():
        if name.startswith(prefix):
            try:
                return resolve(name)
            except ValueError as exc:
                raise UnknownBrainError(f"Invalid value: '{name}'. {exc}") from None
    raise UnknownBrainError(_no_brain_message(name))


def is_registered(model_name: str | None) -> bool:
    try:
        _resolve(model_name)
    except UnknownBrainError:
        return False
    return True


def unknown_brain_message(model_name: str | None) -> str:
    """The error for a model no brain serves, naming it and the valid choices."""
    try:
        _resolve(model_name)
    except UnknownBrainError as exc:
        return str(exc)
    return _no_brain_message(model_name or "")


def _no_brain_message(name: str) -> str:
    choices = ", ".join(
        [f"'{name}'" for name in brain_names()] + [f"'{p}'" for p in _PATTERNS.values()]
    )
    return (
        f"Invalid value: '{name}'. The local server has no brain for this model; "
        f"supported values are: {choices}."
    )


def brain_for(model_name: str | None) -> BrainFactory:
    """The factory registered for ``model_name``; :class:`UnknownBrainError` if there is none."""
    return _resolve(model_name)


def _scripted_caller(profile: dict[str, Any]) -> Brain:
    # A banking caller's profile names its intent; any other domain's names the domain.
    if "domain" in profile and "intent" not in profile:
        from dualagent.realtime.local.brains.domain_caller import DomainCallerBrain

        return DomainCallerBrain(profile)
    from dualagent.realtime.local.brains.caller import CallerBrain

    return CallerBrain(profile)


def _scripted_cs(profile: dict[str, Any]) -> Brain:
    from dualagent.realtime.local.brains.cs import CustomerServiceBrain

    return CustomerServiceBrain(profile)


def _spec_agent(profile: dict[str, Any]) -> Brain:
    from dualagent.realtime.local.brains.agent import SpecAgentBrain

    return SpecAgentBrain(profile)


def _llm(model_name: str) -> BrainFactory:
    from dualagent.realtime.local.brains.llm import LlmBrain, LlmEndpoint

    endpoint = LlmEndpoint.from_model_name(model_name)  # ValueError names what is wrong
    return lambda profile: LlmBrain(endpoint, profile)


register_brain(LOCAL_CALLER_MODEL, _scripted_caller)
register_brain(LOCAL_CS_MODEL, _scripted_cs)
register_brain(LOCAL_AGENT_MODEL, _spec_agent)
register_brain_prefix("llm:", _llm, "llm:MODEL@http://HOST:PORT/v1")
