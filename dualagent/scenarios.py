"""Scenarios: who phones which agent, about what, knowing what, and how to judge the call.

A scenario is one YAML file. Built-in scenarios live in ``dualagent/data/scenarios/``; a path
to your own file works wherever a name does. See ``docs/scenarios.md`` for the schema.

The agent under test is the scenario's ``agent`` (an agent spec; default: the bank). For the
bank, the caller is a customer of a bank fixture (``bank``, ``caller``, a banking ``intent``);
for any other agent the caller has a ``situation`` and ``facts`` in the domain's own words, and
``state`` seeds the agent's state (its spec's ``state`` factory gets it).

Everything is validated when the file is loaded, so a bad scenario never starts a call:
errors are :class:`ScenarioError` with ``"<file>: <field>: <reason>"`` and, for unknown names,
the valid choices.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dualagent import agents, datafiles
from dualagent.agent_spec import (
    DEFAULT_AGENT,
    AgentSpec,
    AgentSpecError,
    list_agents,
    load_agent,
)
from dualagent.bank import BankFixture, default_fixture
from dualagent.errors import describe_validation_error
from dualagent.evaluation.checks import (
    CHECK_KINDS,
    STANDARD_CHECKS,
    CheckSpec,
    StandardCheck,
    agent_problems,
    check_context,
    normalize_criterion,
)
from dualagent.evaluation.outcome import Result
from dualagent.personas import (
    CallerGoal,
    Persona,
    PersonaError,
    list_personas,
    load_persona,
    persona_from_dict,
)

__all__ = [
    "LINE_CONDITIONS",
    "CallerOverrides",
    "LineCondition",
    "Scenario",
    "ScenarioError",
    "list_scenarios",
    "load_scenario",
    "scenario_from_dict",
]

LINE_CONDITIONS = ("clean", "telephone", "noisy")
MAX_DURATION_S = 30 * 60  # the same limit simulate() enforces
DEFAULT_INTENT = "lost_card"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_FACT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# A state factory's message that starts with a field path: "slots.0.day: reason".
_FIELD_FIRST = re.compile(r"^([a-z_]\w*(?:\.[\w-]+)*): ")


class ScenarioError(ValueError):
    """A scenario name or file that cannot be used; the message says where, what and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CallerOverrides(_Strict):
    """Who the caller is (a customer of the bank fixture) and what they know or want."""

    customer_id: str | None = Field(None, description="default: the fixture's first customer")
    card_product: str | None = Field(None, description='the card the call is about, e.g. "gold"')
    knows_card_last4: bool = True
    new_address: str | None = Field(None, min_length=5, description="the caller has moved here")
    disputed_merchant: str | None = None
    wrong_date_of_birth: str | None = Field(
        None, description="YYYY-MM-DD the caller gives instead of the true one (cannot verify)"
    )

    @field_validator("wrong_date_of_birth")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        from datetime import date

        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a date as YYYY-MM-DD") from None
        return value


class LineCondition(_Strict):
    """The phone line between the agents: ``clean``, ``telephone`` or ``noisy`` (with snr_db)."""

    name: Literal["clean", "telephone", "noisy"] = "clean"
    snr_db: float | None = Field(None, ge=-10, le=60)

    @model_validator(mode="after")
    def _snr_for_noisy(self) -> LineCondition:
        if self.name == "noisy" and self.snr_db is None:
            raise ValueError("a noisy line needs snr_db (signal-to-noise ratio in dB)")
        if self.name != "noisy" and self.snr_db is not None:
            raise ValueError(f"snr_db applies only to the noisy line, not {self.name!r}")
        return self


class Scenario(_Strict):
    """One call to simulate and how to judge it."""

    name: str
    description: str = ""
    agent: str | None = Field(
        None,
        description="the agent under test: a shipped agent spec name, a spec .yaml path "
        "(relative to the scenario file) or package.module:attribute; default: bank",
    )
    persona: str | Persona = Field(description="a built-in persona name, or an inline persona")
    goal: CallerGoal | None = Field(None, description="replaces the persona's goal")
    intent: str | None = Field(
        None,
        description="the bank: a banking intent (default lost_card); another agent: a free "
        "label of what the caller wants (default: the scenario's name)",
    )
    situation: str = Field("", description="the caller's situation, in the domain's words")
    facts: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="what the caller knows: name -> value"
    )
    state: dict[str, Any] | None = Field(
        None, description="data for the agent's state (its spec's state factory gets it)"
    )
    bank: BankFixture | None = Field(None, description="default: bank.default_fixture()")
    caller: CallerOverrides = Field(default_factory=CallerOverrides)
    checks: dict[str, CheckSpec] = Field(default_factory=dict)
    expected_outcome: Result = "success"
    line: LineCondition | None = None
    max_turns: int | None = Field(None, ge=1, le=200)
    duration_s: float | None = Field(None, ge=1, le=MAX_DURATION_S)

    _resolved: Persona | None = PrivateAttr(None)
    _spec: AgentSpec | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '_', '-' and '.' only")
        return value

    @field_validator("persona", mode="before")
    @classmethod
    def _persona(cls, value: Any) -> Any:
        if isinstance(value, str):
            choices = list_personas()
            if value not in choices:
                raise ValueError(f"unknown persona {value!r}; valid choices: {', '.join(choices)}")
            return value
        if isinstance(value, dict):
            try:
                return persona_from_dict(value, source="persona")
            except PersonaError as exc:
                raise ValueError(str(exc).removeprefix("persona: ")) from None
        return value

    @field_validator("agent")
    @classmethod
    def _agent(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and "spec" not in _context(info):  # not from scenario_from_dict
            _load_spec(value)
        return value

    @field_validator("intent")
    @classmethod
    def _intent(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and _banking(info) and value not in agents.INTENTS:
            raise ValueError(
                f"unknown intent {value!r}; valid choices: {', '.join(agents.INTENTS)}"
            )
        if value is not None and not value.strip():
            raise ValueError("an intent must not be empty")
        return value

    @field_validator("facts")
    @classmethod
    def _fact_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not _FACT.match(name):
                raise ValueError(
                    f"fact name {name!r}: use letters, digits and _ (e.g. date_of_birth)"
                )
        return value

    @model_validator(mode="after")
    def _resolve_agent(self, info: ValidationInfo) -> Scenario:
        context = _context(info)
        self._spec = context["spec"] if "spec" in context else _load_spec(self.agent)
        if self.intent is None:
            self.intent = DEFAULT_INTENT if self.banking else self.name
        return self

    @field_validator("line", mode="before")
    @classmethod
    def _line_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("checks", mode="before")
    @classmethod
    def _standard_shorthand(cls, value: Any) -> Any:
        # `text:` (null) = the standard check for that text; `text: other text` = that one's.
        if not isinstance(value, dict):
            return value
        return {
            str(text): {"kind": "standard", "criterion": spec if isinstance(spec, str) else text}
            if spec is None or isinstance(spec, str)
            else spec
            for text, spec in value.items()
        }

    # ---- resolved views -----------------------------------------------------------------

    @property
    def banking(self) -> bool:
        """Whether the agent under test is the bank (its fixture, customers and intents)."""
        return self._spec is None or agents.is_banking(self._spec)

    def agent_spec(self) -> AgentSpec:
        """The agent under test (the shipped bank spec unless ``agent`` names another)."""
        return self._spec if self._spec is not None else load_agent(DEFAULT_AGENT)

    @property
    def agent_name(self) -> str:
        return self._spec.name if self._spec is not None else DEFAULT_AGENT

    def resolve_persona(self) -> Persona:
        """The persona to play, with the scenario's goal (if any) in place of its own."""
        if self._resolved is None:
            persona = self.persona
            if not isinstance(persona, Persona):
                persona = load_persona(persona)
            self._resolved = (
                persona.model_copy(update={"goal": self.goal}) if self.goal else persona
            )
        return self._resolved.model_copy(deep=True)

    @property
    def effective_goal(self) -> CallerGoal:
        return self.resolve_persona().goal

    @property
    def turn_limit(self) -> int:
        return self.max_turns or self.effective_goal.max_conversation_turns

    def bank_fixture(self) -> BankFixture:
        """A fresh copy of the bank to seed the call with."""
        fixture = self.bank if self.bank is not None else default_fixture()
        return fixture.model_copy(deep=True)

    def customer_id(self) -> str:
        """The customer the caller plays (default: the fixture's first)."""
        fixture = self.bank_fixture()
        return self.caller.customer_id or fixture.customers[0].customer_id

    def caller_facts(self) -> agents.CallerFacts:
        """What a bank caller knows, from the fixture with the scenario's overrides applied
        (and the scenario's ``facts`` besides)."""
        overrides = self.caller
        facts = agents.caller_facts_from_fixture(
            self.bank_fixture(), self.customer_id(), overrides.card_product or "gold"
        )
        facts.knows_card_last4 = overrides.knows_card_last4
        facts.new_address = overrides.new_address
        facts.disputed_merchant = overrides.disputed_merchant
        if overrides.wrong_date_of_birth:
            facts.date_of_birth = overrides.wrong_date_of_birth
        facts.extra.update(self.facts)
        return facts

    def check_plan(self) -> tuple[list[tuple[str, CheckSpec]], list[tuple[str, CheckSpec]]]:
        """(success criteria, failure conditions) as (text, check spec) pairs, in goal order."""
        goal = self.effective_goal
        by_text = {normalize_criterion(t): spec for t, spec in self.checks.items()}

        def spec(text: str) -> CheckSpec:
            key = normalize_criterion(text)
            return by_text.get(key) or StandardCheck(criterion=text)

        return (
            [(t, spec(t)) for t in goal.success_criteria],
            [(t, spec(t)) for t in goal.failure_conditions],
        )

    def metadata(self) -> dict[str, Any]:
        """What to record under call_metadata.json["scenario"]."""
        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "agent": self.agent_name,
            "intent": self.intent,
            "situation": self.situation,
            "facts": dict(self.facts),
            "expected_outcome": self.expected_outcome,
            "line": self.line.model_dump(mode="json") if self.line else None,
        }
        if self.banking:  # who the caller is in the bank's records
            data["customer_id"] = self.customer_id()
            data["customer"] = self.caller_facts().as_dict()
        data["checks"] = {t: spec.model_dump(mode="json") for t, spec in self.checks.items()}
        return data


def _context(info: ValidationInfo) -> dict[str, Any]:
    return info.context if isinstance(info.context, dict) else {}


def _banking(info: ValidationInfo) -> bool:
    """Whether the scenario being validated is the bank's (from the context, else its agent)."""
    context = _context(info)
    if "banking" in context:
        return bool(context["banking"])
    try:
        spec = _load_spec(info.data.get("agent"))
    except ValueError:
        return True  # the agent's own error is reported
    return spec is None or agents.is_banking(spec)


def _load_spec(agent: str | None) -> AgentSpec | None:
    """The spec ``agent`` names (None: the default bank, not loaded); ValueError if unusable."""
    if agent is None:
        return None
    try:
        return load_agent(agent)
    except AgentSpecError as exc:
        raise ValueError(str(exc)) from None


# --------------------------------------------------------------------------------------------
# Cross-field validation (needs the resolved persona and fixture)
# --------------------------------------------------------------------------------------------


def _consistency_errors(scenario: Scenario) -> list[tuple[str, str]]:
    errors = _bank_errors(scenario) if scenario.banking else _domain_errors(scenario)
    return errors or _criteria_errors(scenario)


def _bank_errors(scenario: Scenario) -> list[tuple[str, str]]:
    """The caller must be a customer of the bank, with the card the call is about."""
    errors: list[tuple[str, str]] = []
    if scenario.state is not None:
        return [("state", "the bank's state is its records: give them under bank")]
    own = set(agents.CallerFacts.__dataclass_fields__) - {"extra"}
    for name in scenario.facts:
        if name in own:
            return [(f"facts.{name}", f"a bank caller's {name} comes from the bank (caller:)")]
    fixture = scenario.bank_fixture()
    if not fixture.customers:
        return [("bank.customers", "the bank needs at least one customer (the caller)")]
    customers = {c.customer_id: c for c in fixture.customers}
    customer_id = scenario.caller.customer_id
    if customer_id is not None and customer_id not in customers:
        errors.append(
            (
                "caller.customer_id",
                f"unknown customer {customer_id!r}; valid choices: {', '.join(customers)}",
            )
        )
        return errors
    customer_id = customer_id or fixture.customers[0].customer_id
    products = [c.product for c in fixture.cards if c.customer_id == customer_id]
    product = scenario.caller.card_product
    if product is not None and product not in products:
        errors.append(
            (
                "caller.card_product",
                f"customer {customer_id} has no {product!r} card; valid choices: "
                + (", ".join(products) or "none"),
            )
        )
    return errors


def _domain_errors(scenario: Scenario) -> list[tuple[str, str]]:
    """Another agent than the bank: no bank fields, a goal of its own, a state its spec takes,
    and checks that can judge its calls."""
    spec = scenario.agent_spec()
    for field in ("bank", "caller"):
        if field in scenario.model_fields_set:
            return [
                (
                    field,
                    f"applies to the bank only; agent {spec.name!r} takes situation, facts "
                    "and state",
                )
            ]
    if isinstance(scenario.persona, str) and scenario.goal is None:
        return [
            (
                "goal",
                f"missing (required: the built-in personas' goals are banking goals; say what "
                f"the caller wants from {spec.organisation or spec.name})",
            )
        ]
    if scenario.state is not None:
        if spec.state is None:
            return [("state", f"agent {spec.name!r} keeps no state (its spec has no state:)")]
        try:
            spec.new_state(copy.deepcopy(scenario.state))
        except Exception as exc:  # the factory is the spec author's code: any error is theirs
            message = " ".join(str(exc).split()) or type(exc).__name__
            where = _FIELD_FIRST.match(message)
            if where:
                return [(f"state.{where.group(1)}", message[where.end() :])]
            return [("state", message)]
    tools = check_context(spec)["tools"]
    errors = [
        problem
        for text, check in scenario.checks.items()
        for problem in agent_problems(check, tools, spec.name, f"checks.{text}")
    ]
    given = {normalize_criterion(t) for t in scenario.checks}
    goal = scenario.effective_goal
    for text in goal.success_criteria + goal.failure_conditions:
        standard = STANDARD_CHECKS.get(normalize_criterion(text))
        if standard is None or normalize_criterion(text) in given:
            continue
        for _, reason in agent_problems(standard, tools, spec.name)[:1]:
            errors.append(
                ("checks", f"criterion {text!r} needs a check: its standard one does not fit: "
                 f"{reason}")
            )  # fmt: skip
    return errors


def _criteria_errors(scenario: Scenario) -> list[tuple[str, str]]:
    """Every check is for a criterion of the goal, and every criterion has a check."""
    errors: list[tuple[str, str]] = []
    goal = scenario.effective_goal
    criteria = {normalize_criterion(t): t for t in goal.success_criteria + goal.failure_conditions}
    for text in scenario.checks:
        if normalize_criterion(text) not in criteria:
            errors.append(
                (
                    f"checks.{text}",
                    "not one of the goal's success_criteria or failure_conditions: "
                    + ", ".join(map(repr, criteria.values())),
                )
            )
    given = {normalize_criterion(t) for t in scenario.checks}
    for key, text in criteria.items():
        if key not in given and key not in STANDARD_CHECKS:
            errors.append(
                (
                    "checks",
                    f"no check for criterion {text!r}; give one under checks, or use a standard "
                    f"criterion: {', '.join(STANDARD_CHECKS)}",
                )
            )
    return errors


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _describe(exc: ValidationError, source: str) -> str:
    """The problems in one line. Check kinds are dropped from paths only under ``checks``: a
    kind may share its name with a scenario field (``state``)."""
    problems = []
    for error in exc.errors():
        single = ValidationError.from_exception_data(exc.title, [error])  # type: ignore[list-item]
        tags = CHECK_KINDS if error["loc"][:1] == ("checks",) else ()
        problems.append(describe_validation_error(single, model=Scenario, union_tags=tags))
    return f"{source}: " + "; ".join(dict.fromkeys(problems))


def _scenario_agent(data: dict[str, Any], source: str) -> AgentSpec | None:
    """The spec the scenario's ``agent`` names (a relative .yaml path is relative to the
    scenario file); None for the default bank. A ScenarioError says why one cannot be used."""
    agent = data.get("agent")
    if agent is None:
        return None
    if not isinstance(agent, str) or not agent.strip():
        raise ScenarioError(
            f"{source}: agent: expected a shipped agent ({', '.join(list_agents())}) or a spec "
            f".yaml path, got {type(agent).__name__ if not isinstance(agent, str) else 'nothing'}"
        )
    path = Path(agent)
    if path.suffix in (".yaml", ".yml") and not path.is_absolute():
        origin = Path(source)
        base = origin.parent if origin.suffix in (".yaml", ".yml") else Path.cwd()
        agent = str((base / path).resolve())
    try:
        return load_agent(agent)
    except AgentSpecError as exc:
        raise ScenarioError(f"{source}: agent: {exc}") from None


def list_scenarios() -> list[str]:
    """Names of the built-in scenarios."""
    return datafiles.list_builtin("scenarios")


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path."""
    path = datafiles.resolve("scenarios", name_or_path, "scenario", ScenarioError)
    data = datafiles.read_yaml(path, ScenarioError, where="(root): ")
    return scenario_from_dict(data, source=str(path))


def scenario_from_dict(data: Any, source: str = "scenario") -> Scenario:
    """Validate a scenario mapping; errors name the source, the field and the reason.

    ``name`` defaults to the source's file name without its extension.
    """
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: (root): expected a mapping, got {type(data).__name__}")
    data = {"name": Path(source).stem, **data}
    spec = _scenario_agent(data, source)
    if spec is not None:
        data["agent"] = spec.source  # a relative path, resolved: plan_call loads it again
    banking = spec is None or agents.is_banking(spec)
    context = {**check_context(spec), "spec": spec, "banking": banking}
    try:
        scenario = Scenario.model_validate(data, context=context)
    except ValidationError as exc:
        raise ScenarioError(_describe(exc, source)) from None
    errors = _consistency_errors(scenario)
    if errors:
        field, reason = errors[0]
        raise ScenarioError(f"{source}: {field}: {reason}")
    return scenario
