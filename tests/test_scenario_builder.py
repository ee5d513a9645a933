"""dualagent.scenario_builder: the form validates as you type, saves YAML that loads back, runs."""

from __future__ import annotations

import re

import pytest
import yaml

import dualagent
from dualagent.scenario_builder import ScenarioBuilder
from dualagent.scenarios import list_scenarios, load_scenario


def plain(html_text: str) -> str:
    return re.sub(r"<[^>]+>", " ", html_text)


@pytest.fixture
def builder(tmp_path) -> ScenarioBuilder:
    return ScenarioBuilder(save_dir=tmp_path / "scenarios", output_dir=tmp_path / "calls")


def test_the_form_starts_valid_with_the_controls_asked_for(builder):
    assert builder.error is None and "valid" in plain(builder.validity.value)
    assert {
        "patience_level",
        "tendency_to_interrupt",
        "provides_clear_info",
        "speaking_rate",
    } <= set(builder.sliders)
    assert list(builder.agent.options) == dualagent.agent_spec.list_agents()
    assert builder.agent.value == "bank" and builder.persona.value == "typical"
    assert builder.sliders["patience_level"].value == 8  # the typical caller's
    assert builder.primary_goal.value and builder.success_criteria.value
    assert not builder.save_button.disabled and not builder.app.run_button.disabled


@pytest.mark.parametrize(
    ("widget", "value", "field"),
    [
        ("name", "my scenario!", "name"),
        ("intent", "teleport", "intent"),
        ("facts", "pin: [1", "facts"),
        ("facts", "date of birth: 1980-05-14", "facts"),
        (
            "checks",
            "card replacement confirmed: {kind: magic}",
            "checks.card replacement confirmed",
        ),
        ("checks", "no such criterion: null", "checks.no such criterion"),
        ("duration", 0.0, "duration_s"),
        ("max_turns", 0, "goal.max_conversation_turns"),
        ("caller", "customer_id: CUST-9999", "caller.customer_id"),
    ],
)
def test_a_bad_value_shows_one_line_naming_the_field(builder, widget, value, field):
    getattr(builder, widget).value = value
    shown = plain(builder.validity.value)
    assert builder.error is not None and "\n" not in builder.error
    assert builder.error.startswith(f"scenario: {field}"), builder.error
    assert field in shown and "valid" not in shown.replace("invalid", "").split(":")[0]
    assert builder.save_button.disabled and builder.app.run_button.disabled
    with pytest.raises(ValueError, match=re.escape(field)):
        builder.save()


def test_fixing_the_value_makes_the_form_valid_again(builder):
    builder.intent.value = "teleport"
    assert "intent" in builder.error
    builder.intent.value = "stolen_card"
    assert builder.error is None and "✓ valid" in plain(builder.validity.value)
    assert builder.build().intent == "stolen_card"


def test_a_valid_form_saves_yaml_that_loads_back_equal(builder, tmp_path):
    builder.name.value = "impatient_lost_card"
    builder.sliders["patience_level"].value = 2
    builder.sliders["tendency_to_interrupt"].value = 0.6
    builder.sliders["speaking_rate"].value = 1.3
    builder.success_criteria.value = "card replacement confirmed\ndelivery address confirmed"
    builder.line.value = "noisy"
    builder.snr_db.value = 15.0
    builder.expected.value = "success"
    assert builder.error is None, builder.error

    path = builder.save()
    assert path == tmp_path / "scenarios" / "impatient_lost_card.yaml"  # follows the name
    loaded = load_scenario(path)
    built = builder.build()
    assert loaded == built
    assert loaded.model_dump() == built.model_dump()
    persona = loaded.resolve_persona()
    assert persona.personality.patience_level == 2 and persona.personality.speaking_rate == 1.3
    assert persona.name == "typical_custom"  # an inline caller, named after its base
    assert loaded.line is not None and loaded.line.snr_db == 15.0
    assert loaded.effective_goal.success_criteria == [
        "card replacement confirmed",
        "delivery address confirmed",
    ]
    assert yaml.safe_load(path.read_text())["name"] == "impatient_lost_card"
    assert builder.yaml_view.value == path.read_text()


def test_untouched_sliders_keep_the_built_in_caller(builder, tmp_path):
    loaded = load_scenario(builder.save(tmp_path / "plain.yaml"))
    assert loaded.persona == "typical"


@pytest.mark.parametrize("name", list_scenarios())
def test_every_built_in_scenario_round_trips_through_the_form(builder, tmp_path, name):
    builder.start.value = name
    assert builder.error is None, builder.error
    original = load_scenario(name)
    built = builder.build()
    assert built.agent_name == original.agent_name and built.intent == original.intent
    assert built.resolve_persona().personality == original.resolve_persona().personality
    assert built.effective_goal == original.effective_goal
    assert built.check_plan() == original.check_plan()
    assert built.expected_outcome == original.expected_outcome
    assert load_scenario(builder.save(tmp_path / f"{name}.yaml")) == built


def test_another_agent_says_what_the_goal_needs_and_drops_the_bank_caller(builder):
    builder.agent.value = "clinic"  # the bank's goal, told to a clinic
    assert builder.caller.layout.display == "none"
    assert builder.error is not None and builder.error.startswith("scenario: checks:")
    assert "card replacement confirmed" in builder.error and "book_appointment" in builder.error
    builder.agent.value = "bank"
    assert builder.error is None and builder.caller.layout.display is None


def test_another_agent_hides_the_bank_fields(builder):
    builder.start.value = "clinic_book_appointment"
    assert builder.agent.value == "clinic" and builder.error is None
    assert builder.caller.layout.display == "none"
    assert "Doctor Lee" in builder.facts.value
    builder.facts.value += "\nfavourite colour: blue\n"
    assert builder.error is not None and builder.error.startswith("scenario: facts")


@pytest.fixture(scope="module")
def fonts_loaded() -> None:
    """Matplotlib keeps its font files open once it has drawn text: open them before the
    leak check's snapshot, not during the test (the app draws the call's timeline)."""
    import matplotlib.pyplot as plt

    from dualagent.analysis import plots

    figure, axes = plt.subplots()
    axes.set_title("fonts")
    plots.figure_png(figure, dpi=20)
    plt.close(figure)


async def test_running_from_the_form_records_a_call(local_server, tmp_path, fonts_loaded):
    builder = ScenarioBuilder(
        save_dir=tmp_path / "scenarios",
        output_dir=tmp_path / "calls",
        route="text",
        local_server=local_server,
    )
    builder.name.value = "from_the_form"
    builder.sliders["patience_level"].value = 3
    assert builder.error is None

    result = await builder.app.run_call()

    assert result is not None and result.status == "completed"
    assert (
        result.path.parent == tmp_path / "calls" and (result.path / "call_metadata.json").is_file()
    )
    assert result.metadata["scenario"]["name"] == "from_the_form"
    assert result.metadata["route"] == "text"
    assert "AGENT:" in plain(builder.app.transcript.value)
    assert len(builder.app.audio_widgets) == 3
    assert builder.app.progress.max == builder.build().turn_limit
