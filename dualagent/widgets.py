"""An ipywidgets app to run and inspect calls from a notebook cell.

    from dualagent.widgets import CallApp
    CallApp()            # or CallApp().display()

Pick a scenario (or none), a caller type, a duration, a route and a seed; press **Run call**.
The controls are a view of :class:`~dualagent.call.options.CallOptions` (``app.options()``). The transcript fills
while the call runs and a progress bar counts conversation turns against the persona's limit.
When the call ends you get its outcome, audio players (stereo, caller, agent) and the timeline.

The Run button only *schedules* the call on the kernel's event loop and returns, so the
notebook stays responsive; ``await app.run_call()`` runs one call directly (used by tests).
"""

from __future__ import annotations

import asyncio
import html
import time
from pathlib import Path
from typing import Any

import ipywidgets as w

from dualagent import analysis
from dualagent.agent_spec import list_agents
from dualagent.analysis import plots
from dualagent.call.options import DEFAULT_OUTPUT_DIR, ROUTES, CallOptions
from dualagent.call.result import CallResult
from dualagent.call.simulate import simulate
from dualagent.personas import list_personas, load_persona
from dualagent.scenarios import list_scenarios, load_scenario

MAX_EMBED_BYTES = 25_000_000  # larger recordings get a path instead of an inline player
SPEAKER_STYLE = {"caller": ("CALLER", "#2a6fb0"), "cs": ("AGENT", "#e07b24")}


def _line_html(kind: str, speaker: str | None, text: str) -> str:
    text = html.escape(text)
    if kind == "turn":
        label, color = SPEAKER_STYLE.get(speaker or "", (speaker or "?", "#333"))
        return f'<div><b style="color:{color}">{label}:</b> {text}</div>'
    color = {"tool": "#666", "error": "#c00"}.get(kind, "#888")
    return f'<div style="color:{color};font-size:90%;margin-left:2em">[{kind}] {text}</div>'


def _outcome_badge(result: Any) -> str:
    if not isinstance(result, str):
        return "<i>not assessed</i>"
    color = {"success": "#2ca02c", "failure": "#d62728"}.get(result, "#e07b24")
    return f'<b style="color:{color}">{html.escape(result)}</b>'


def outcome_html(result: CallResult) -> str:
    """A short HTML summary of a finished call: status, outcome, turns, duration, tools."""
    summary = result.summary()
    outcome = result.metadata.get("outcome") or {}
    status_color = "#2ca02c" if summary["status"] == "completed" else "#d62728"
    rows = [
        (
            "status",
            f'<b style="color:{status_color}">{summary["status"]}</b> ({summary["end_reason"]})',
        ),
        ("outcome", _outcome_badge(outcome.get("result"))),
        ("turns", summary["turns"]),
        ("call length", f"{summary['duration_s']} s (simulated in {summary['wall_time_s']} s)"),
        ("tool calls", html.escape(", ".join(summary["tool_calls"]) or "none")),
        ("recording", html.escape(summary["path"])),
    ]
    if summary.get("error"):
        rows.append(("error", html.escape(str(summary["error"]))))
    for check in analysis.outcome_checks(outcome):
        if check["kind"] == "failure condition" and not check["met"]:
            continue  # only failure conditions that happened are news
        good = check["met"] == (check["kind"] == "criterion")
        mark = '<b style="color:#2ca02c">✓</b>' if good else '<b style="color:#d62728">✗</b>'
        title = html.escape(str(check["evidence"] or ""), quote=True)
        rows.append(
            (check["kind"], f'{mark} <span title="{title}">{html.escape(check["name"])}</span>')
        )
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


def audio_player(path: Path, label: str) -> w.Widget:
    """A labelled inline player for one recording file (a note instead if it is too big)."""
    title = w.HTML(f"<b>{html.escape(label)}</b>")
    if not path.is_file():
        return w.VBox([title, w.HTML(f"<i>missing: {html.escape(str(path))}</i>")])
    if path.stat().st_size > MAX_EMBED_BYTES:
        return w.VBox([title, w.HTML(f"<i>too large to embed; open {html.escape(str(path))}</i>")])
    fmt = path.suffix.lstrip(".")
    player = w.Audio(value=path.read_bytes(), format=fmt, autoplay=False, loop=False, controls=True)
    return w.VBox([title, player])


class CallApp:
    """Run a simulated call from a notebook and watch it: controls, live transcript, results."""

    def __init__(
        self,
        *,
        caller_type: str = "typical",
        scenario: str | None = None,
        agent: str | None = None,
        duration: int = 90,  # a typical caller's goal at ~50 s, with room for a busy machine
        route: str = "audio",
        seed: int = 0,
        output_dir: str | Path = DEFAULT_OUTPUT_DIR,
        local_server: Any = None,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.local_server = local_server
        self._own_server: Any = None
        self.result: CallResult | None = None
        self.task: asyncio.Future[Any] | None = None
        self.lines: list[str] = []
        self._last_speaker: str | None = None
        self._turns = 0
        self._started = 0.0

        self.scenario = w.Dropdown(
            options=[("(none)", None), *((n, n) for n in list_scenarios())],
            index=0,  # not value=None, which ipywidgets shows as no selection at all
            description="Scenario",
        )  # all options (label, value) pairs: ipywidgets reads a mixed list as plain values
        self.caller_type = w.Dropdown(
            options=list_personas(), value=caller_type, description="Caller type"
        )
        # The agent under test: a shipped spec; unset, the scenario's (else the bank agent).
        self.agent = w.Dropdown(
            options=[("(scenario's)", None), *((n, n) for n in list_agents())],
            index=0,
            description="Agent",
        )
        if agent is not None:
            self.agent.value = agent
        self.duration = w.IntSlider(
            value=duration, min=10, max=600, step=10, description="Duration (s)"
        )
        self.scenario.observe(self._on_scenario, names="value")
        if scenario is not None:
            self.scenario.value = scenario
        self.route = w.ToggleButtons(options=list(ROUTES), value=route, description="Route")
        self.route.style.button_width = "70px"
        self.seed = w.IntText(value=seed, description="Seed", layout=w.Layout(width="160px"))
        self.run_button = w.Button(description="Run call", button_style="primary", icon="phone")
        self.run_button.on_click(self._on_click)
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Turns", bar_style="info")
        self.progress_label = w.Label("")
        self.status = w.HTML("<i>Choose a caller and press Run call.</i>")
        self.transcript = w.HTML(
            "",
            layout=w.Layout(
                max_height="320px", overflow="auto", border="1px solid #ddd", padding="4px"
            ),
        )
        self.outcome = w.HTML("")
        self.players = w.HBox([])
        self.timeline = w.Image(format="png", layout=w.Layout(width="100%"))
        self.results = w.VBox(
            [self.outcome, self.players, self.timeline], layout=w.Layout(display="none")
        )
        controls = w.VBox(
            [
                w.HBox([self.scenario, self.caller_type, self.agent]),
                w.HBox([self.route]),
                w.HBox([self.duration, self.seed, self.run_button]),
                w.HBox([self.progress, self.progress_label]),
                self.status,
            ]
        )
        self.widget = w.VBox([controls, self.transcript, self.results])

    # ------------------------------------------------------------------ display

    def display(self) -> CallApp:
        from IPython.display import display

        display(self.widget)
        return self

    def _ipython_display_(self) -> None:
        self.display()

    # ------------------------------------------------------------------ running

    def _on_click(self, _button: Any = None) -> None:
        """Schedule the call on the running event loop and return at once."""
        if self.task is not None and not self.task.done():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop()
        self.task = loop.create_task(self.run_call())

    def _on_scenario(self, change: dict[str, Any]) -> None:
        """A scenario brings its own caller and limit: show them (the user may still change them)."""
        if change["new"] is None:
            return
        scenario = load_scenario(change["new"])
        self.caller_type.value = scenario.resolve_persona().name
        agent = getattr(scenario, "agent", None)
        if agent in list_agents():
            self.agent.value = agent
        else:
            self.agent.index = 0  # the scenario's own (a spec file, or the bank)
        if scenario.duration_s:
            self.duration.value = int(min(max(scenario.duration_s, 10), 600))

    def options(self) -> CallOptions:
        """The call the controls describe."""
        return CallOptions.build(
            scenario=self.scenario.value,
            caller_type=self.caller_type.value,
            agent=self.agent.value,
            duration=float(self.duration.value),
            route=self.route.value,
            seed=int(self.seed.value),
            output_dir=self.output_dir,
        )

    @property
    def max_turns(self) -> int:
        if self.scenario.value is not None:
            scenario = load_scenario(self.scenario.value)
            if scenario.resolve_persona().name == self.caller_type.value:
                return scenario.turn_limit
        return load_persona(self.caller_type.value).goal.max_conversation_turns

    def on_log(self, entry: Any) -> None:
        """Simulation log callback: add the line to the transcript, advance the progress bar."""
        kind, speaker, text = (
            getattr(entry, "kind", "info"),
            getattr(entry, "speaker", None),
            str(getattr(entry, "text", "")),
        )
        self.lines.append(_line_html(kind, speaker, text))
        self.transcript.value = "".join(self.lines)
        if kind == "turn" and speaker != self._last_speaker:
            self._last_speaker = speaker
            self._turns += 1
            self.progress.value = min(self._turns, self.progress.max)
        self.progress_label.value = (
            f"{self._turns}/{self.progress.max} turns, {time.monotonic() - self._started:.1f} s"
        )

    def _reset(self) -> None:
        self.lines.clear()
        self.transcript.value = ""
        self._last_speaker, self._turns = None, 0
        self._started = time.monotonic()
        self.progress.max = self.max_turns
        self.progress.value = 0
        self.progress.bar_style = "info"
        self.results.layout.display = "none"
        self.players.children = ()
        self.timeline.value = b""
        self.outcome.value = ""

    async def _server(self) -> Any:
        """The shared server if given, else one the app starts once and keeps for its calls."""
        if self.local_server is not None:
            return self.local_server
        if self._own_server is None:
            from dualagent.realtime.local.server import LocalRealtimeServer

            warm = self.route.value == "audio"  # text calls need no speech engines
            self.status.value = "<i>Starting the local Realtime server…</i>"
            self._own_server = await LocalRealtimeServer(warm=warm).start()
        return self._own_server

    async def run_call(self) -> CallResult | None:
        """Run one call with the current settings; fill transcript, progress and results."""
        self.run_button.disabled = True
        self._reset()
        try:
            server = await self._server()
            self.status.value = f"<i>Calling: {html.escape(self.caller_type.value)} caller, {self.route.value} route…</i>"
            self.result = await simulate(
                options=self.options(), local_server=server, on_log=self.on_log
            )
        except Exception as exc:  # shown in the app: a notebook user must see why
            self.progress.bar_style = "danger"
            self.status.value = f'<b style="color:#c00">Call failed: {html.escape(str(exc))}</b>'
            self.on_log(type("Entry", (), {"kind": "error", "speaker": None, "text": str(exc)})())
            return None
        finally:
            self.run_button.disabled = False
        self.show_result(self.result)
        return self.result

    def show_result(self, result: CallResult) -> None:
        """Fill the results area: outcome, audio players, timeline plot."""
        self.progress.value = self.progress.max
        self.progress.bar_style = "success" if result.status == "completed" else "danger"
        self.status.value = f"<b>Done</b>: {html.escape(result.conversation_id)}"
        self.outcome.value = outcome_html(result)
        self.players.children = tuple(
            audio_player(result.audio_path(channel), label)
            for channel, label in (
                ("stereo_recording", "Stereo (caller left, agent right)"),
                ("caller_audio", "Caller"),
                ("cs_audio", "Agent"),
            )
        )
        turns = analysis.load_turns(result)
        if not turns.empty:
            figure = plots.call_timeline(turns, analysis.load_tool_calls(result))
            self.timeline.value = plots.figure_png(figure, dpi=80)
        self.results.layout.display = "flex"

    @property
    def audio_widgets(self) -> list[w.Audio]:
        """The inline audio players of the last call."""
        return [
            child
            for box in self.players.children
            for child in box.children
            if isinstance(child, w.Audio)
        ]

    async def close(self) -> None:
        """Stop the app's own speech server (if it started one)."""
        if self._own_server is not None:
            await self._own_server.close()
            self._own_server = None
