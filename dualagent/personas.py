"""Caller personas: personality, goal and the facts a caller knows, as validated models.

The four built-in personas (typical, frustrated, elderly, hurried) live as YAML in
``dualagent/data/personas/``; a path to your own YAML file works wherever a name does.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dualagent import datafiles
from dualagent.errors import describe_validation_error
from dualagent.mood import MoodProfile


class CallerType(StrEnum):
    TYPICAL = "typical"
    FRUSTRATED = "frustrated"
    ELDERLY = "elderly"
    HURRIED = "hurried"
    CUSTOM = "custom"


class PersonaError(ValueError):
    """A persona name or file that cannot be used; the message says why and what is valid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallerMood(_Strict):
    """Where the caller's mood starts and how strongly events move it (:mod:`dualagent.mood`).

    ``start_patience`` None: ``patience_level / 10``. ``sensitivity`` multiplies what
    setbacks (being asked to repeat, holds, transfers...) cost, ``recovery`` what progress
    gives back."""

    start_patience: float | None = Field(default=None, ge=0.0, le=1.0)
    start_frustration: float = Field(default=0.0, ge=0.0, le=1.0)
    sensitivity: float = Field(default=1.0, ge=0.0, le=5.0)
    recovery: float = Field(default=1.0, ge=0.0, le=5.0)


class CallerPersonality(_Strict):
    type: CallerType = CallerType.TYPICAL
    traits: list[str] = Field(default_factory=list)
    communication_style: str = "Friendly and cooperative"
    patience_level: int = Field(default=7, ge=1, le=10)
    tech_comfort: int = Field(default=7, ge=1, le=10)
    tendency_to_interrupt: float = Field(default=0.1, ge=0.0, le=1.0)
    provides_clear_info: float = Field(default=0.9, ge=0.0, le=1.0)
    speaking_rate: float = Field(default=1.0, ge=0.5, le=1.5, description="1.0 = normal speed")
    mood: CallerMood = Field(default_factory=CallerMood)

    def mood_profile(self) -> MoodProfile:
        """The starting point and sensitivities of this caller's mood."""
        start = self.mood.start_patience
        return MoodProfile(
            start_patience=start if start is not None else self.patience_level / 10,
            start_frustration=self.mood.start_frustration,
            sensitivity=self.mood.sensitivity,
            recovery=self.mood.recovery,
        )


class CallerGoal(_Strict):
    primary_goal: str
    secondary_goals: list[str] = Field(default_factory=list)
    success_criteria: list[str] = Field(default_factory=list)
    failure_conditions: list[str] = Field(default_factory=list)
    max_conversation_turns: int = Field(default=15, ge=1, le=200)


class Persona(_Strict):
    name: str
    description: str = ""
    personality: CallerPersonality
    goal: CallerGoal
    voice: str = "coral"


def list_personas() -> list[str]:
    """Names of the built-in personas."""
    return datafiles.list_builtin("personas")


def load_persona(name_or_path: str | Path) -> Persona:
    """A built-in persona by name, or a persona YAML file by path."""
    path = datafiles.resolve("personas", name_or_path, "caller type", PersonaError)
    return persona_from_dict(datafiles.read_yaml(path, PersonaError), source=str(path))


def persona_from_dict(data: Any, source: str = "persona") -> Persona:
    """Validate a persona mapping; errors name the source, the field and the reason."""
    try:
        return Persona.model_validate(data)
    except ValidationError as exc:
        raise PersonaError(describe_validation_error(exc, source, model=Persona)) from None
