"""The docs' example of "your own agent" (examples/harbor_hotel) runs as documented, offline.

A spec written as a user would (its tools in a module next to the YAML, a canned tool, a state
from the scenario) drives the embedded server's spec-driven agent; both scenarios reach their
expected outcome in the text route for several seeds, and in the audio route.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import dualagent
from dualagent.agent_spec import load_agent
from tests.test_e2e import run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "harbor_hotel"
SCENARIOS = {
    "book_saturday": EXAMPLE / "scenarios" / "book_saturday.yaml",
    "saturday_full": EXAMPLE / "scenarios" / "saturday_full.yaml",
}


def test_the_example_spec_loads_with_its_tools_module_next_to_it() -> None:
    spec = load_agent(EXAMPLE / "agent.yaml")
    assert [t.implementation for t in spec.tools] == ["python", "python", "responses", "python"]
    assert type(spec.new_state({"free_rooms": {"Saturday": 0}})).__name__ == "Hotel"


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_the_example_scenarios_reach_their_expected_outcome(
    local_server, tmp_path: Path, name: str, seed: int
) -> None:
    result = await dualagent.simulate(
        scenario=str(SCENARIOS[name]),
        route="text",
        seed=seed,
        output_dir=tmp_path,
        conversation_id=f"{name}-{seed}",
        local_server=local_server,
    )
    assert result.metadata["agent"]["name"] == "harbor_hotel"
    assert result.metadata["outcome"]["result"] == "success", result.explain()
    bookings = result.metadata["agent_state"]["bookings"]
    if name == "book_saturday":
        assert bookings == [{"booking_id": "H-1", "guest": "Peter Wilson", "night": "Saturday"}]
    else:
        assert bookings == []


def test_the_documented_batch_runs_from_the_example_folder(tmp_path: Path) -> None:
    proc = run_cli(
        "batch",
        "--scenarios",
        "scenarios/book_saturday.yaml,scenarios/saturday_full.yaml",
        "--repeat",
        "2",
        "--route",
        "text",
        "--output-dir",
        str(tmp_path),
        "--batch-id",
        "hotel",
        "--no-progress",
        cwd=EXAMPLE,
    )
    assert proc.returncode == 0, proc.stderr
    calls = [json.loads(p.read_text()) for p in tmp_path.glob("hotel/*/call_metadata.json")]
    assert len(calls) == 4
    assert {c["outcome"]["result"] for c in calls} == {"success"}
    assert not (EXAMPLE / "agent_conversations").exists()


@pytest.mark.slow
async def test_the_example_books_a_room_in_the_audio_route(local_server, tmp_path: Path) -> None:
    result = await dualagent.simulate(
        scenario=str(SCENARIOS["book_saturday"]),
        output_dir=tmp_path,
        conversation_id="audio",
        local_server=local_server,
    )
    assert result.status == "completed"
    assert result.metadata["outcome"]["result"] == "success", result.explain()
    assert result.audio_path().stat().st_size > 100_000
