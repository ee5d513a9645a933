"""dualagent's pytest plugin, as an agent's own test suite meets it: a generated test file run by
pytest in a fresh interpreter (pytester), the plugin loaded through its ``pytest11`` entry point,
calls on the embedded server over the text route."""

from __future__ import annotations

import importlib.metadata
import xml.etree.ElementTree as ET

import pytest

from dualagent.call.record import load_call

pytest_plugins = ["pytester"]

AGENT_TESTS = """
import pytest

from dualagent.pytest_plugin import assert_call_success


@pytest.mark.agent_test(route="text")  # call options for every call of the test
def test_lost_card(agent_call):
    result = agent_call(scenario="lost_gold_card", agent="bank")
    assert result.metadata["route"] == "text"
    assert result.success, result.explain()


@pytest.mark.agent_test(route="text")
def test_unverified_caller_gets_a_new_card(agent_call):
    result = agent_call(scenario="cannot_verify_identity", agent="bank")
    assert_call_success(result)  # fails: the agent rightly refuses and transfers


@pytest.mark.asyncio
async def test_lost_card_async(agent_call):
    result = await agent_call.simulate(scenario="lost_gold_card", route="text")
    assert result.success, result.explain()
    assert agent_call.results == [result]


def test_no_call():
    pass
"""


def test_the_plugin_is_registered_by_its_entry_point():
    plugins = importlib.metadata.entry_points(group="pytest11")
    assert {(ep.name, ep.value) for ep in plugins if ep.name == "dualagent"} == {
        ("dualagent", "dualagent.pytest_plugin")
    }


def test_agent_tests_pass_and_fail_with_a_readable_message(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_agent=AGENT_TESTS)
    out = pytester.path / "recordings"
    report = pytester.path / "pytest.xml"
    run = pytester.runpytest_subprocess(
        "--dualagent-output", str(out), f"--junitxml={report}", "-p", "no:cacheprovider"
    )
    run.assert_outcomes(passed=3, failed=1)
    text = run.stdout.str()

    # The failure reads as a verdict with its evidence, not a bare `assert False`.
    assert "FAILED test_agent.py::test_unverified_caller_gets_a_new_card" in text
    run.stdout.fnmatch_lines(
        [
            "E *AssertionError: call *: not a success (outcome failure, scenario expects failure)",
            "E *status: completed, end reason: transferred_to_human",
            "E *unmet criteria:",
            "E *  - card replacement confirmed: *",
            "E *failure conditions met:",
            "E *  - transferred to human: *",
            "E *recording: *",
            "E *last 6 of * utterances:",
            "E *AGENT : *transfer you to a colleague.",
        ]
    )

    # One folder per test under --dualagent-output, each with its call's recording.
    folders = {p.name: p for p in out.iterdir()}
    assert set(folders) == {
        "test_agent.py_test_lost_card",
        "test_agent.py_test_unverified_caller_gets_a_new_card",
        "test_agent.py_test_lost_card_async",
    }
    for name, folder in folders.items():
        [call] = list(folder.iterdir())
        record = load_call(call)
        assert record.status == "completed" and record.metadata["route"] == "text"
        expected = "cannot_verify_identity" if "unverified" in name else "lost_gold_card"
        assert record.scenario_name == expected

    # pytest's own JUnit report says where each recording is.
    root = ET.parse(report).getroot()
    recordings = {
        case.get("name"): prop.get("value")
        for case in root.iter("testcase")
        for prop in case.iter("property")
        if prop.get("name") == "dualagent_recording"
    }
    assert set(recordings) == {
        "test_lost_card",
        "test_unverified_caller_gets_a_new_card",
        "test_lost_card_async",
    }
    assert all(load_call(path).status == "completed" for path in recordings.values())


def test_agent_tests_are_marked_and_recordings_default_to_tmp_path(pytester):
    pytester.makepyfile(
        test_marked="""
        def test_call(agent_call, tmp_path):
            assert agent_call.output_dir == tmp_path / "dualagent"

        def test_plain():
            pass
        """
    )
    # Deselected without running a call: a test that uses agent_call is an agent test.
    run = pytester.runpytest_subprocess("-m", "not agent_test", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=1, deselected=1)
    run = pytester.runpytest_subprocess("-m", "agent_test", "-p", "no:cacheprovider")
    run.assert_outcomes(passed=1, deselected=1)


@pytest.mark.parametrize("backend", ["phone", "http://example.com"])
def test_a_bad_backend_stops_the_session_in_one_line(pytester, backend):
    pytester.makepyfile(test_x="def test_x(agent_call):\n    pass\n")
    run = pytester.runpytest_subprocess("--dualagent-backend", backend, "-p", "no:cacheprovider")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in run.stderr.lines if line.strip()] == [
        f"ERROR: --dualagent-backend: invalid value {backend!r}; valid choices: local, openai, "
        "or a ws:// / wss:// URL"
    ]
