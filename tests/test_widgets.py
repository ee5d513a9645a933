"""dualagent.widgets.CallApp: controls, live transcript, progress, audio and timeline."""

from __future__ import annotations

import asyncio
import re

import ipywidgets as w
import pytest

import dualagent
from dualagent import widgets
from dualagent.widgets import CallApp


def plain(html_text: str) -> str:
    return re.sub(r"<[^>]+>", " ", html_text)


def test_controls_offer_personas_routes_and_seed():
    app = CallApp()
    assert list(app.caller_type.options) == dualagent.list_personas()
    assert list(app.route.options) == ["audio", "text"]
    assert isinstance(app.seed, w.IntText) and isinstance(app.progress, w.IntProgress)
    assert app.run_button.description == "Run call"
    assert app.results.layout.display == "none"  # nothing to show before a call
    # The agent under test: unset means the scenario's; a shipped spec can be chosen.
    assert app.options().agent is None and app.agent.label == "(scenario's)"
    assert app.scenario.label == "(none)" and ("bank", "bank") in app.agent.options
    app.agent.value = "bank"
    assert app.options().agent == "bank"


async def test_run_call_fills_transcript_progress_audio_and_outcome(local_server, tmp_path):
    app = CallApp(output_dir=tmp_path, local_server=local_server)
    app.caller_type.value = "frustrated"
    app.route.value = "text"
    app.duration.value = 300
    app.seed.value = 3

    result = await app.run_call()

    assert result is not None and app.result is result
    assert result.metadata["caller_type"] == "frustrated" and result.metadata["seed"] == 3
    assert result.metadata["route"] == "text" and result.path.parent == tmp_path
    transcript = plain(app.transcript.value)
    assert "AGENT:" in transcript and "CALLER:" in transcript
    assert "Thank you for calling First Bank" in transcript
    assert "[tool] verify_customer" in transcript
    assert transcript.count("CALLER:") == sum(t["speaker"] == "caller" for t in result.turns)
    assert app.progress.max == dualagent.load_persona("frustrated").goal.max_conversation_turns
    assert app.progress.value == app.progress.max and app.progress.bar_style == "success"
    assert result.metadata["end_reason"] in plain(app.outcome.value)
    assert "completed" in plain(app.outcome.value)
    outcome = result.metadata.get("outcome")
    if outcome:  # evaluated calls: the result and each success criterion are shown
        assert outcome["result"] in plain(app.outcome.value)
        assert all(c["name"] in plain(app.outcome.value) for c in outcome["criteria"])
    players = app.audio_widgets
    assert len(players) == 3
    assert all(p.value[:4] == b"fLaC" or p.value[:4] == b"RIFF" for p in players)
    assert not any(p.autoplay for p in players)
    assert app.timeline.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert app.results.layout.display == "flex"
    assert not app.run_button.disabled


async def test_transcript_fills_while_the_call_runs(local_server, tmp_path):
    app = CallApp(route="text", output_dir=tmp_path, local_server=local_server)
    seen: list[tuple[int, int, bool]] = []
    original = app.on_log

    def watch(entry):
        original(entry)
        seen.append((len(app.transcript.value), app.progress.value, app.result is None))

    app.on_log = watch
    await app.run_call()
    assert len(seen) > 5
    assert all(during for _, _, during in seen)  # every update happened before the call ended
    lengths = [n for n, _, _ in seen]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress) and 0 < progress[-1] <= app.progress.max


async def test_run_button_schedules_the_call_and_returns(local_server, tmp_path):
    app = CallApp(route="text", output_dir=tmp_path, local_server=local_server)
    app.run_button.click()
    # The click handler only scheduled the call: nothing has been said yet.
    assert app.transcript.value == "" and app.result is None
    task = app.task
    assert task is not None and not task.done()
    app.run_button.click()  # a second click while running does not start another call
    assert app.task is task
    result = await asyncio.wait_for(task, 300)  # a hang guard, not a stopwatch
    assert result.status == "completed" and app.audio_widgets and app.transcript.value


async def test_failed_call_is_reported_in_the_app(monkeypatch, tmp_path):
    async def refuse(*args, **kwargs):
        raise dualagent.InputError("invalid duration 0; valid: 1 to 1800 seconds")

    monkeypatch.setattr(widgets, "simulate", refuse)
    app = CallApp(route="text", output_dir=tmp_path, local_server=object())
    assert await app.run_call() is None
    assert "Call failed: invalid duration 0" in app.status.value
    assert app.progress.bar_style == "danger" and not app.run_button.disabled
    assert "invalid duration 0" in plain(app.transcript.value)


@pytest.mark.slow
def test_click_in_a_real_kernel_keeps_the_kernel_responsive(tmp_path):
    """A click arriving as a comm message schedules the call; the kernel answers meanwhile."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))

    def run(code: str) -> str:
        msg_id = kc.execute(code)
        out = []
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                raise AssertionError("\n".join(msg["content"]["traceback"]))
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out).strip()

    try:
        # The call waits for a gate the test opens, so "still running" does not depend on
        # how fast a text call is.
        model_id = run(
            "import asyncio\n"
            "from dualagent import widgets\n"
            "gate = asyncio.Event()\n"
            "real_simulate = widgets.simulate\n"
            "async def gated_simulate(*args, **kwargs):\n"
            "    await gate.wait()\n"
            "    return await real_simulate(*args, **kwargs)\n"
            "widgets.simulate = gated_simulate\n"
            "app = widgets.CallApp(route='text', output_dir='calls')\n"
            "app.display()\n"
            "print(app.run_button.model_id)"
        )
        click = {"comm_id": model_id, "data": {"method": "custom", "content": {"event": "click"}}}
        kc.shell_channel.send(kc.session.msg("comm_msg", click))
        assert run("print(app.task is not None and not app.task.done())") == "True"
        assert run("print(1 + 1)") == "2"  # the kernel is free while the call runs
        run("gate.set()")
        done = run(
            "import asyncio\nr = await asyncio.wait_for(app.task, 300)\nprint(r.status, len(app.audio_widgets))"
        )
        assert done == "completed 3"
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert any((tmp_path / "calls").iterdir())
