"""An ipywidgets form to write a scenario, check it as you type, run it and save it as YAML.

    from dualagent.scenario_builder import ScenarioBuilder
    ScenarioBuilder()                       # starts from lost_gold_card; or start="clinic_cancel"

Pick a scenario to start from, then change the caller (persona sliders), the goal, the facts,
the line, the checks and the agent under test. Every change rebuilds the
:class:`~dualagent.scenarios.Scenario` through :func:`~dualagent.scenarios.scenario_from_dict`
(the loader's own validation) and shows ``valid`` or the one-line error naming the field.
**Save YAML** writes the file :func:`dualagent.load_scenario` reads back; **Run call** runs
the scenario in the embedded call app (:class:`~dualagent.widgets.CallApp`).

The form owns only the fields it shows; any other field of the starting scenario (a bank
fixture, a state, a turn limit, fields a newer schema adds) is carried over unchanged.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import ipywidgets as w
import yaml
from annotated_types import Ge, Le

from dualagent import agents, datafiles
from dualagent.agent_spec import list_agents
from dualagent.call.options import DEFAULT_OUTPUT_DIR, CallOptions
from dualagent.personas import CallerPersonality, list_personas, load_persona
from dualagent.scenarios import LINE_CONDITIONS, Scenario, list_scenarios, scenario_from_dict
from dualagent.widgets import CallApp

DEFAULT_START = "lost_gold_card"
# A scenario without a limit gets this one: a typical caller reaches its goal at ~50 s of the
# call's timeline, and gaps between turns grow on a busy machine (as in 01_explore).
DEFAULT_DURATION_S = 90.0
OUTCOMES = ("success", "failure", "incomplete")
SOURCE = "scenario"  # how errors name the form: "scenario: field: reason"
# The scenario fields the form edits; any other field of the starting scenario is carried over.
OWNED = frozenset(
    [
        "name",
        "description",
        "agent",
        "persona",
        "goal",
        "intent",
        "situation",
        "facts",
        "caller",
        "checks",
        "line",
        "expected_outcome",
        "duration_s",
    ]
)


def _has_field(name: str) -> bool:
    """Whether the scenario schema has ``name`` (the form stays usable as the schema grows)."""
    return name in Scenario.model_fields


def _bounds(field: str) -> tuple[float, float]:
    """The (ge, le) range of a personality field, read from the model."""
    info = CallerPersonality.model_fields[field]
    low = next(m.ge for m in info.metadata if isinstance(m, Ge))
    high = next(m.le for m in info.metadata if isinstance(m, Le))
    return float(low), float(high)  # type: ignore[arg-type]


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _yaml_text(value: Any) -> str:
    """A mapping as the YAML shown in a text area ("" for an empty one)."""
    if not value:
        return ""
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=100)


class _FormLoader(yaml.SafeLoader):
    """YAML as typed into the form: a date stays text (``date_of_birth: 1980-05-14`` is the
    string a fact needs, not a date object the schema refuses)."""


_FormLoader.yaml_implicit_resolvers = {
    first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _parse_mapping(field: str, text: str) -> dict[str, Any]:
    """A text area's YAML mapping; a ValueError names the field."""
    try:
        value = yaml.load(text, Loader=_FormLoader) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
        raise ValueError(f"{SOURCE}: {field}: not valid YAML{at}: {problem}") from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(
            f"{SOURCE}: {field}: expected 'name: value' lines (a mapping), "
            f"got {type(value).__name__}"
        )
    return value


def _raw_scenario(name: str) -> dict[str, Any]:
    """A built-in scenario as written in its file."""
    return datafiles.read_yaml(datafiles.builtin_dir("scenarios") / f"{name}.yaml", ValueError)


# Persona sliders: the personality fields with a numeric range (label, field, kind).
SLIDERS: tuple[tuple[str, str, type], ...] = (
    ("Patience", "patience_level", int),
    ("Interrupts", "tendency_to_interrupt", float),
    ("Clear info", "provides_clear_info", float),
    ("Speech rate", "speaking_rate", float),
    ("Tech comfort", "tech_comfort", int),
)


class ScenarioBuilder:
    """A scenario form: edit, see whether it is valid, run it, save it as YAML."""

    def __init__(
        self,
        *,
        start: str = DEFAULT_START,
        save_dir: str | Path = "scenarios",
        output_dir: str | Path = DEFAULT_OUTPUT_DIR,
        route: str = "audio",
        local_server: Any = None,
        app: CallApp | None = None,
    ) -> None:
        """``app``: a call app whose speech server the form's calls share (one set of engines
        in the kernel); ``local_server``: a running server to use instead."""
        self.save_dir = Path(save_dir)
        self._carried: dict[str, Any] = {}  # fields of the starting scenario the form lacks
        self._inline_persona: dict[str, Any] | None = None  # an inline caller's full persona
        self._loading = False
        self.scenario: Scenario | None = None  # the last valid build
        self.error: str | None = None
        style = {"description_width": "130px"}
        wide = w.Layout(width="98%")

        self.start = w.Dropdown(
            options=list_scenarios(), value=start, description="Start from", style=style
        )
        self.name = w.Text(description="Name", style=style, continuous_update=True)
        self.description = w.Textarea(
            description="Description", style=style, layout=wide, continuous_update=True
        )
        self.agent = w.Dropdown(options=list_agents(), description="Agent", style=style)
        self.persona = w.Dropdown(options=list_personas(), description="Caller", style=style)
        self.sliders: dict[str, w.IntSlider | w.FloatSlider] = {}
        for label, field, kind in SLIDERS:
            if field not in CallerPersonality.model_fields:
                continue  # an older or newer persona schema
            low, high = _bounds(field)
            if kind is int:
                slider: w.IntSlider | w.FloatSlider = w.IntSlider(
                    min=int(low), max=int(high), description=label, style=style
                )
            else:
                slider = w.FloatSlider(min=low, max=high, step=0.05, description=label, style=style)
            self.sliders[field] = slider
        self.intent = w.Combobox(
            description="Intent", style=style, ensure_option=False, continuous_update=True
        )
        self.primary_goal = w.Text(
            description="Goal", style=style, layout=wide, continuous_update=True
        )
        self.secondary_goals = w.Textarea(
            rows=3,
            description="Also wants",
            placeholder="one a line",
            style=style,
            layout=wide,
            continuous_update=True,
        )
        self.success_criteria = w.Textarea(
            rows=3, description="Success criteria", style=style, layout=wide, continuous_update=True
        )
        self.failure_conditions = w.Textarea(
            rows=3,
            description="Failure conditions",
            style=style,
            layout=wide,
            continuous_update=True,
        )
        self.max_turns = w.IntText(description="Turn limit", style=style)
        self.situation = w.Textarea(
            description="Situation", style=style, layout=wide, continuous_update=True
        )
        self.facts = w.Textarea(
            description="Facts",
            placeholder="name: value, one a line",
            style=style,
            layout=wide,
            continuous_update=True,
        )
        self.caller = w.Textarea(
            description="Bank caller",
            placeholder="customer_id: CUST-1001\ncard_product: gold",
            style=style,
            layout=wide,
            continuous_update=True,
        )
        self.checks = w.Textarea(
            description="Checks",
            placeholder="criterion text: {kind: tool_called, name: ...}",
            style=style,
            layout=w.Layout(width="98%", height="90px"),
            continuous_update=True,
        )
        self.line = w.Dropdown(options=list(LINE_CONDITIONS), description="Line", style=style)
        self.snr_db = w.FloatText(value=20.0, description="SNR (dB)", style=style)
        self.expected = w.Dropdown(options=list(OUTCOMES), description="Expected", style=style)
        self.duration = w.FloatText(
            value=DEFAULT_DURATION_S, description="Duration (s)", style=style
        )
        self.validity = w.HTML()
        self.path = w.Text(description="Save as", style=style, layout=w.Layout(width="60%"))
        self.save_button = w.Button(description="Save YAML", icon="save")
        self.save_button.on_click(lambda _button: self._on_save())
        self.saved = w.HTML()
        self.yaml_view = w.Textarea(
            description="YAML",
            disabled=True,
            style=style,
            layout=w.Layout(width="98%", height="180px"),
        )
        # Running reuses the call app; its own caller/scenario/agent/limit controls are the form.
        self.app = _ScenarioCallApp(
            self, route=route, output_dir=output_dir, local_server=local_server, share=app
        )
        self.app.status.value = "<i>Press Run call to run this scenario.</i>"

        self.start.observe(lambda change: self.load(change["new"]), names="value")
        for widget in self._inputs():
            widget.observe(lambda _change: self.validate(), names="value")
        self.persona.observe(self._on_persona, names="value")
        self.agent.observe(self._on_agent, names="value")
        self.line.observe(self._on_agent, names="value")
        self.name.observe(self._on_name, names="value")
        self.load(start)

        sections = [
            w.HTML("<b>Scenario</b>"),
            w.HBox([self.start, self.name, self.agent]),
            self.description,
            w.HTML("<b>Caller</b>"),
            w.HBox([self.persona, self.intent]),
            w.HBox(list(self.sliders.values())[:3]),
            w.HBox(list(self.sliders.values())[3:]),
            w.HTML("<b>Goal</b>"),
            self.primary_goal,
            self.secondary_goals,
            self.success_criteria,
            self.failure_conditions,
            self.max_turns,
            w.HTML("<b>What the caller knows</b>"),
        ]
        if _has_field("situation"):
            sections.append(self.situation)
        if _has_field("facts"):
            sections.append(self.facts)
        sections += [
            self.caller,
            w.HTML("<b>Judging and the line</b>"),
            self.checks,
            w.HBox([self.expected, self.line, self.snr_db, self.duration]),
            self.validity,
            w.HBox([self.path, self.save_button]),
            self.saved,
            w.Accordion(children=[self.yaml_view], titles=("YAML",)),
            w.HTML("<b>Run it</b>"),
            self.app.widget,
        ]
        self.widget = w.VBox(sections)

    # ------------------------------------------------------------------ display

    def display(self) -> ScenarioBuilder:
        from IPython.display import display

        display(self.widget)
        return self

    def _ipython_display_(self) -> None:
        self.display()

    # ------------------------------------------------------------------ form <-> data

    def _inputs(self) -> list[w.Widget]:
        return [
            self.name,
            self.description,
            self.agent,
            self.persona,
            *self.sliders.values(),
            self.intent,
            self.primary_goal,
            self.secondary_goals,
            self.success_criteria,
            self.failure_conditions,
            self.max_turns,
            self.situation,
            self.facts,
            self.caller,
            self.checks,
            self.line,
            self.snr_db,
            self.expected,
            self.duration,
        ]

    def load(self, start: str | dict[str, Any]) -> None:
        """Fill the form from a built-in scenario's name or a scenario mapping (as in YAML)."""
        data = dict(_raw_scenario(start) if isinstance(start, str) else start)
        scenario = scenario_from_dict(data, source=SOURCE)
        persona = scenario.resolve_persona()
        raw_persona = data.get("persona")
        base = raw_persona if isinstance(raw_persona, str) else None
        self._loading = True
        try:
            self.name.value = scenario.name
            self.description.value = scenario.description
            shipped = list_agents()
            agent = data.get("agent") or scenario.agent_name
            self.agent.value = (
                agent if agent in shipped else ("bank" if "bank" in shipped else shipped[0])
            )
            self.persona.value = base or _closest_persona(persona.name)
            for field, slider in self.sliders.items():
                slider.value = getattr(persona.personality, field)
            self.intent.value = scenario.intent or ""
            goal = persona.goal
            self.primary_goal.value = goal.primary_goal
            self.secondary_goals.value = "\n".join(goal.secondary_goals)
            self.success_criteria.value = "\n".join(goal.success_criteria)
            self.failure_conditions.value = "\n".join(goal.failure_conditions)
            self.max_turns.value = goal.max_conversation_turns
            self.situation.value = str(data.get("situation") or "")
            self.facts.value = _yaml_text(data.get("facts"))
            self.caller.value = _yaml_text(data.get("caller"))
            self.checks.value = _yaml_text(data.get("checks"))
            line = scenario.line
            self.line.value = line.name if line else "clean"
            if line and line.snr_db is not None:
                self.snr_db.value = line.snr_db
            self.expected.value = scenario.expected_outcome
            self.duration.value = float(scenario.duration_s or DEFAULT_DURATION_S)
            self.path.value = str(self.save_dir / f"{scenario.name}.yaml")
            # A persona written inline keeps what the form does not show (traits, voice...).
            self._inline_persona = None if base else persona.model_dump(mode="json")
            self._carried = {k: v for k, v in data.items() if k not in OWNED}
        finally:
            self._loading = False
        self._sync_visibility()
        self.validate()

    def data(self) -> dict[str, Any]:
        """The scenario the form describes, as the mapping its YAML file holds.

        Raises ValueError (one line, naming the field) for a text area that is not a mapping.
        """
        base = load_persona(self.persona.value)
        personality = {f: s.value for f, s in self.sliders.items()}
        goal = {
            "primary_goal": self.primary_goal.value,
            "secondary_goals": _lines(self.secondary_goals.value),
            "success_criteria": _lines(self.success_criteria.value),
            "failure_conditions": _lines(self.failure_conditions.value),
            "max_conversation_turns": self.max_turns.value,
        }
        data: dict[str, Any] = {"name": self.name.value}
        if self.description.value.strip():
            data["description"] = self.description.value.strip()
        if _has_field("agent"):
            data["agent"] = self.agent.value
        own = base.personality.model_dump(mode="json")
        if self._inline_persona is None and all(own[f] == v for f, v in personality.items()):
            data["persona"] = base.name
        else:  # the sliders moved: the caller is written inline, named after its base
            inline = self._inline_persona or base.model_dump(mode="json")
            inline = {**inline, "personality": {**inline["personality"], **personality}}
            if self._inline_persona is None:
                inline["name"] = f"{base.name}_custom"
            data["persona"] = inline
        data["goal"] = goal
        if self.intent.value.strip():
            data["intent"] = self.intent.value.strip()
        if _has_field("situation") and self.situation.value.strip():
            data["situation"] = self.situation.value.strip()
        facts = _parse_mapping("facts", self.facts.value)
        if facts and _has_field("facts"):
            data["facts"] = facts
        if self.agent.value == "bank":  # hidden for other agents: it would only be refused
            caller = _parse_mapping("caller", self.caller.value)
            if caller:
                data["caller"] = caller
        checks = _parse_mapping("checks", self.checks.value)
        if checks:
            data["checks"] = checks
        data["expected_outcome"] = self.expected.value
        if self.line.value == "noisy":
            data["line"] = {"name": "noisy", "snr_db": self.snr_db.value}
        elif self.line.value != "clean":
            data["line"] = self.line.value
        data["duration_s"] = self.duration.value
        return {**data, **self._carried}

    def build(self) -> Scenario:
        """The validated scenario (ScenarioError / ValueError: one line naming the field)."""
        return scenario_from_dict(self.data(), source=SOURCE)

    def validate(self) -> bool:
        """Rebuild the scenario from the form and show ``valid`` or the error."""
        if self._loading:
            return False
        try:
            self.scenario, self.error = self.build(), None
        except ValueError as exc:  # ScenarioError is a ValueError; so are the text areas'
            self.scenario, self.error = None, str(exc)
        if self.error is None:
            self.validity.value = '<b style="color:#2ca02c">✓ valid</b>'
            self.yaml_view.value = self.yaml()
        else:
            self.validity.value = f'<b style="color:#c00">✗ {html.escape(self.error)}</b>'
        self.save_button.disabled = self.error is not None
        if self.persona.value in self.app.caller_type.options:  # the app's status line names it
            self.app.caller_type.value = self.persona.value
        self.app.run_button.disabled = self.error is not None
        return self.error is None

    def yaml(self) -> str:
        """The scenario file's text."""
        return yaml.safe_dump(self.data(), sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path | None = None) -> Path:
        """Write the scenario's YAML (only a valid one); the path written."""
        if not self.validate():
            raise ValueError(self.error)
        target = Path(path or self.path.value or self.save_dir / f"{self.name.value}.yaml")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.yaml(), encoding="utf-8")
        return target

    # ------------------------------------------------------------------ reactions

    def _on_save(self) -> None:
        try:
            path = self.save()
        except (OSError, ValueError) as exc:
            self.saved.value = f'<span style="color:#c00">{html.escape(str(exc))}</span>'
            return
        self.saved.value = f"saved to <code>{html.escape(str(path))}</code>"

    def _on_persona(self, change: dict[str, Any]) -> None:
        """A new base caller brings its personality (the goal stays the scenario's)."""
        if self._loading:
            return
        persona = load_persona(change["new"])
        self._inline_persona = None
        self._loading = True
        try:
            for field, slider in self.sliders.items():
                slider.value = getattr(persona.personality, field)
        finally:
            self._loading = False
        self.validate()

    def _on_agent(self, _change: dict[str, Any]) -> None:
        self._sync_visibility()  # the agent and the line decide which fields are shown

    def _on_name(self, change: dict[str, Any]) -> None:
        """The file name follows the scenario name while the user has not chosen another."""
        if Path(self.path.value).name == f"{change['old']}.yaml":
            self.path.value = str(Path(self.path.value).with_name(f"{change['new']}.yaml"))

    def _sync_visibility(self) -> None:
        """Bank fields for the bank, the domain's for other agents; SNR for a noisy line."""
        bank = self.agent.value == "bank"
        self.caller.layout.display = None if bank else "none"
        self.snr_db.layout.display = None if self.line.value == "noisy" else "none"
        self.intent.options = _intents() if bank else ()


def _closest_persona(name: str) -> str:
    """The built-in persona an inline one is based on (its name's first part), else typical."""
    choices = list_personas()
    head = name.split("_")[0]
    return head if head in choices else ("typical" if "typical" in choices else choices[0])


def _intents() -> tuple[str, ...]:
    return tuple(getattr(agents, "INTENTS", ()))  # the bank's intents, offered as you type


class _ScenarioCallApp(CallApp):
    """The call app, running the builder's scenario (its caller, agent and limit)."""

    def __init__(
        self, builder: ScenarioBuilder, *, share: CallApp | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._builder = builder
        self._share = share
        for control in (self.scenario, self.caller_type, self.agent, self.duration):
            control.layout.display = "none"

    def options(self) -> CallOptions:
        return CallOptions.build(
            scenario=self._builder.build(),
            route=self.route.value,
            seed=int(self.seed.value),
            output_dir=self.output_dir,
        )

    @property
    def max_turns(self) -> int:
        return self._builder.build().turn_limit

    async def _server(self) -> Any:
        if self.local_server is None and self._share is not None:
            return await self._share._server()  # the other app's engines, started once
        return await super()._server()
