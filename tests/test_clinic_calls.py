"""Whole offline calls to Riverside Clinic: the spec-driven scripted agent (local-agent) answers,
the domain caller phones, and every shipped clinic scenario ends with its expected outcome, in
text and with real speech (Piper and PocketSphinx)."""

from __future__ import annotations

from pathlib import Path

import pytest

import dualagent
from dualagent.scenarios import list_scenarios, load_scenario

CLINIC = sorted(name for name in list_scenarios() if name.startswith("clinic_"))
pytestmark = pytest.mark.skipif(not CLINIC, reason="no clinic scenarios are shipped")


def expected(name: str) -> str:
    return load_scenario(name).expected_outcome


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", CLINIC)
async def test_each_clinic_scenario_reaches_its_expected_outcome_in_text(
    name: str, seed: int, local_server, tmp_path: Path
) -> None:
    result = await dualagent.simulate(
        scenario=name, route="text", seed=seed, output_dir=tmp_path, local_server=local_server
    )
    assert result.status == "completed", result.explain()
    assert result.outcome == expected(name), result.explain()


async def test_a_clinic_call_is_the_same_call_for_the_same_seed(local_server, tmp_path) -> None:
    runs = [
        await dualagent.simulate(
            scenario=CLINIC[0],
            route="text",
            seed=3,
            output_dir=tmp_path,
            conversation_id=f"same_{i}",
            local_server=local_server,
        )
        for i in range(2)
    ]
    words = [[(t["speaker"], t["text"]) for t in r.turns] for r in runs]
    calls = [[(c["name"], c["arguments"]) for c in r.function_calls] for r in runs]
    assert words[0] == words[1]
    assert calls[0] == calls[1]


def test_the_synchronous_api_runs_a_clinic_call(tmp_path: Path) -> None:
    name = "clinic_book_appointment" if "clinic_book_appointment" in CLINIC else CLINIC[0]
    result = dualagent.run(scenario=name, route="text", output_dir=tmp_path)
    assert result.outcome == expected(name), result.explain()
    # The agent worked through its tools, as the spec's policy asks: the patient first.
    names = [c["name"] for c in result.function_calls]
    assert names[0] == "find_patient" or names == ["transfer_to_human"]


@pytest.mark.slow
@pytest.mark.parametrize("name", CLINIC)
async def test_each_clinic_scenario_reaches_its_expected_outcome_with_speech(
    name: str, local_server, tmp_path: Path
) -> None:
    result = await dualagent.simulate(
        scenario=name, route="audio", seed=0, output_dir=tmp_path, local_server=local_server
    )
    assert result.status == "completed", result.explain()
    assert result.outcome == expected(name), result.explain()
    # Both agents spoke and heard each other through the recogniser.
    assert any(t.get("heard") not in (None, t["text"]) for t in result.turns[:-1])
