"""Session configurations for the two agents, rendered from a persona and the caller's facts.

Instructions are written for a language model (a hosted Realtime model reads them as they are)
and end with the machine-readable profile section the local scripted brains read.

The caller of the bank is a bank customer (its facts come from the bank's records, its profile
names a banking ``intent``); the caller of any other agent spec phones the spec's organisation
with a situation, a goal and facts in that domain's words (its profile names the ``domain``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dualagent import bank
from dualagent.agent_spec import AgentSpec
from dualagent.call.tools import CALLER_TOOLS
from dualagent.personas import Persona
from dualagent.realtime import protocol as p
from dualagent.realtime.local.brains.registry import LOCAL_CALLER_MODEL, LOCAL_CS_MODEL
from dualagent.realtime.local.profile import render_profile

__all__ = ["LOCAL_CALLER_MODEL", "LOCAL_CS_MODEL"]  # the local brains' model names, re-exported
DEFAULT_CS_VOICE = "alloy"
BANK_NAME = "First Bank"
CS_AGENT_NAME = "Alex"

LOCAL_TRANSCRIPTION_MODEL = "whisper-1"
"""The transcription model named to the embedded server (it transcribes with its own engine
whatever the name; kept as it always was, so local event logs do not change)."""


@dataclass(frozen=True)
class Hearing:
    """How an agent's server transcribes what the agent hears (``audio.input``)."""

    model: str = LOCAL_TRANSCRIPTION_MODEL
    language: str | None = None
    noise_reduction: str | None = None  # near_field, far_field; None or "off": none

    def session_fields(self) -> dict[str, Any]:
        transcription = {"model": self.model}
        if self.language:
            transcription["language"] = self.language
        return {"transcription": transcription, "noise_reduction": self.noise_reduction}

    def describe(self) -> dict[str, Any]:
        return {
            "transcription_model": self.model,
            "language": self.language,
            "noise_reduction": self.noise_reduction or "off",
        }


INTENTS = (
    "lost_card",
    "stolen_card",
    "balance",
    "transactions",
    "dispute",
    "address_change",
    "human",
)


@dataclass
class CallerFacts:
    """What the caller knows about themselves (drawn from the bank fixture)."""

    full_name: str
    date_of_birth: str
    address: str
    card_product: str = "gold"
    card_last4: str | None = None
    knows_card_last4: bool = True
    new_address: str | None = None
    disputed_merchant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "extra" and v is not None}
        return {**data, **self.extra}


def caller_facts_from_fixture(
    fixture: bank.BankFixture, customer_id: str | None = None, card_product: str = "gold"
) -> CallerFacts:
    """The caller's facts for ``customer_id`` (default: the fixture's first customer)."""
    customer = next((c for c in fixture.customers if customer_id in (None, c.customer_id)), None)
    if customer is None:
        known = ", ".join(c.customer_id for c in fixture.customers)
        raise ValueError(f"unknown customer_id {customer_id!r}; the fixture has: {known}")
    cards = [c for c in fixture.cards if c.customer_id == customer.customer_id]
    card = next((c for c in cards if c.product == card_product), cards[0] if cards else None)
    return CallerFacts(
        full_name=customer.full_name,
        date_of_birth=customer.date_of_birth,
        address=customer.address,
        card_product=card.product if card else card_product,
        card_last4=card.last4 if card else None,
    )


def is_banking(spec: AgentSpec | None) -> bool:
    """Whether ``spec`` is the banking agent (its scripted brain is the banking one, its state
    the bank's records, its caller a bank customer). None: the default agent, the bank."""
    return spec is None or spec.profile.get("role") == "cs"


def caller_instructions(
    persona: Persona,
    facts: CallerFacts | Mapping[str, Any],
    intent: str,
    seed: int,
    *,
    spec: AgentSpec | None = None,
    situation: str = "",
) -> str:
    """Instructions for the caller: role-play prose plus the profile section.

    For the bank (``spec`` None or the banking agent), ``facts`` are a bank customer's
    :class:`CallerFacts`; for any other agent, a mapping ``{name: value}`` in its domain's words.
    """
    if spec is not None and not is_banking(spec):
        return domain_caller_instructions(persona, spec, situation, _fact_dict(facts), seed)
    if not isinstance(facts, CallerFacts):
        raise TypeError("a bank caller's facts are CallerFacts (see caller_facts_from_fixture)")
    personality, goal = persona.personality, persona.goal
    lines = [
        f"You are a bank customer phoning {BANK_NAME}'s customer service line. Stay in character.",
        f"Persona: {persona.name} caller. {persona.description}",
        f"Traits: {', '.join(personality.traits)}. Style: {personality.communication_style}.",
        f"Patience {personality.patience_level}/10, tech comfort {personality.tech_comfort}/10, "
        f"tendency to interrupt {personality.tendency_to_interrupt:.0%}, "
        f"gives clear information {personality.provides_clear_info:.0%} of the time.",
        f"Your goal: {goal.primary_goal}.",
    ]
    if goal.secondary_goals:
        lines.append("Once that is done, also: " + "; ".join(goal.secondary_goals) + ".")
    if situation:
        lines.append(f"Your situation: {situation.strip()}")
    lines += [
        f"You are {facts.full_name}, born {facts.date_of_birth}, living at {facts.address}.",
        f"Your {facts.card_product} card ends in {facts.card_last4}."
        if facts.card_last4 and facts.knows_card_last4
        else "You do not remember your card number.",
        "Speak in short, natural sentences as on a phone call. When you are done, say goodbye "
        "and call the end_call tool to hang up.",
    ]
    profile = {
        "role": "caller",
        "seed": seed,
        "intent": intent,
        "persona": personality.model_dump(mode="json"),
        "goal": goal.model_dump(mode="json"),
        "facts": facts.as_dict(),
    }
    return "\n".join(lines) + "\n\n" + render_profile(profile)


def domain_caller_instructions(
    persona: Persona, spec: AgentSpec, situation: str, facts: Mapping[str, Any], seed: int
) -> str:
    """A caller of any organisation: whom they phone, their situation, goal and facts, in the
    domain's own words (nothing of banking), plus the profile section the domain caller reads."""
    personality, goal = persona.personality, persona.goal
    organisation = spec.organisation or spec.name
    lines = [
        f"You are phoning {organisation}. Stay in character as the caller.",
        f"Persona: {persona.name} caller. {persona.description}",
        f"Traits: {', '.join(personality.traits)}. Style: {personality.communication_style}.",
        f"Patience {personality.patience_level}/10, tech comfort {personality.tech_comfort}/10, "
        f"tendency to interrupt {personality.tendency_to_interrupt:.0%}, "
        f"gives clear information {personality.provides_clear_info:.0%} of the time.",
    ]
    if situation.strip():
        lines.append(f"Your situation: {situation.strip()}")
    lines.append(f"Your goal: {goal.primary_goal}.")
    if goal.secondary_goals:
        lines.append("Once that is done, also: " + "; ".join(goal.secondary_goals) + ".")
    if facts:
        known = "; ".join(f"{name.replace('_', ' ')}: {value}" for name, value in facts.items())
        lines.append(f"What you know, to give when you are asked: {known}.")
    lines.append(
        "Speak in short, natural sentences as on a phone call. When you are done, say goodbye "
        "and call the end_call tool to hang up."
    )
    profile = {
        "role": "caller",
        "seed": seed,
        "domain": spec.name,
        "organisation": organisation,
        "persona": personality.model_dump(mode="json"),
        "goal": goal.model_dump(mode="json"),
        "situation": situation.strip(),
        "facts": dict(facts),
    }
    return "\n".join(lines) + "\n\n" + render_profile(profile)


def _fact_dict(facts: CallerFacts | Mapping[str, Any]) -> dict[str, Any]:
    """A domain caller's facts (a bank customer's facts as they are, should one be given)."""
    return facts.as_dict() if isinstance(facts, CallerFacts) else dict(facts)


def agent_instructions(spec: AgentSpec, seed: int) -> str:
    """The agent under test's instructions: the spec's, plus the profile section the embedded
    server's scripted brain reads (a language model reads it as a harmless appendix)."""
    profile = {
        "role": "agent",
        "seed": seed,
        "spec": spec.name,
        "organisation": spec.organisation,
        "agent_name": spec.agent_name,
        "greeting": spec.greeting,
        "tools": {t.name: {"say": t.say} for t in spec.tools if t.say},
        **spec.profile,
    }
    if profile["role"] == "cs":  # the banking brain's names for the same things
        profile.update(
            bank_name=spec.organisation or BANK_NAME, agent_name=spec.agent_name or CS_AGENT_NAME
        )
    return spec.instructions.strip() + "\n\n" + render_profile(profile)


def caller_session(
    persona: Persona,
    facts: CallerFacts | Mapping[str, Any],
    *,
    intent: str = "lost_card",
    seed: int = 0,
    model: str = LOCAL_CALLER_MODEL,
    voice: str | None = None,
    output_modalities: list[str] | None = None,
    hearing: Hearing | None = None,
    spec: AgentSpec | None = None,
    situation: str = "",
) -> p.SessionConfig:
    """The caller's session: persona voice and speaking rate, the end_call tool. ``spec`` is
    the agent phoned (default: the bank); see :func:`caller_instructions`."""
    return p.session_config(
        model=model,
        instructions=caller_instructions(
            persona, facts, intent, seed, spec=spec, situation=situation
        ),
        voice=voice or persona.voice,
        speed=persona.personality.speaking_rate,
        tools=CALLER_TOOLS,
        output_modalities=output_modalities,
        **(hearing or Hearing()).session_fields(),
    )


def agent_session(
    spec: AgentSpec,
    *,
    seed: int = 0,
    model: str | None = None,
    voice: str | None = None,
    output_modalities: list[str] | None = None,
    hearing: Hearing | None = None,
) -> p.SessionConfig:
    """The agent under test's session, from its spec: instructions, voice, turn detection and
    tools (``model`` defaults to the spec's brain on the embedded server)."""
    return p.session_config(
        model=model or spec.local_model,
        instructions=agent_instructions(spec, seed),
        voice=voice or spec.voice or DEFAULT_CS_VOICE,
        speed=1.0,
        tools=spec.session_tools(),
        output_modalities=output_modalities,
        turn_detection=spec.turn_detection.session_value(),
        **(hearing or Hearing()).session_fields(),
    )
