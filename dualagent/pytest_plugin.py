"""Agent tests in pytest: dualagent's plugin (registered by the ``pytest11`` entry point).

Installing dualagent makes pytest load this module, which adds:

- the ``agent_call`` fixture: ``agent_call(**call_options)`` runs one call (any
  :class:`~dualagent.call.options.CallOptions` field: ``scenario``, ``agent``, ``route``,
  ``seed``...) and returns its :class:`~dualagent.call.result.CallResult`; in an ``async def``
  test, ``await agent_call.simulate(**call_options)``. Recordings go to a folder per test
  (under ``tmp_path``, or ``--dualagent-output DIR``), and calls on the local backend share
  one embedded server for the whole session;
- the ``agent_test`` marker: selects agent tests (``-m agent_test``; a test that uses
  ``agent_call`` gets it automatically) and gives call options for every call of the test,
  ``@pytest.mark.agent_test(agent="bank", route="text")``;
- :func:`assert_call_success`: fails the test with :meth:`CallResult.explain` (the unmet
  criteria with their evidence, how the call ended, the transcript's tail) unless it
  succeeded;
- the ``compare_agents`` fixture: ``compare_agents(baseline, candidate, **options)`` runs a
  paired A/B comparison (:func:`dualagent.compare.compare_agents`: same keywords) on the
  session's server and returns its :class:`~dualagent.compare.Comparison`; in an ``async def``
  test, ``await compare_agents.run(...)``. :func:`assert_not_worse` is the regression gate
  as an assertion (fails with the gate's sentence and the comparison's table);
- options ``--dualagent-output DIR`` (keep the recordings there, one folder per test) and
  ``--dualagent-backend BACKEND`` (``local``, ``openai`` or a ``ws://``/``wss://`` URL: where
  the agents run unless a test says otherwise).

An agent's tests then read::

    @pytest.mark.agent_test
    def test_lost_card(agent_call):
        result = agent_call(scenario="lost_gold_card", agent="bank", route="text")
        assert result.success, result.explain()

    def test_new_prompt_is_not_worse(compare_agents):
        comparison = compare_agents("bank", "my_bank.yaml", scenarios=["lost_gold_card"],
                                    repeat=10, route="text")
        assert_not_worse(comparison, alpha=0.05, min_effect=0.05)

pytest loads this module in every session where dualagent is installed, so importing it costs
nothing: dualagent and the speech engines load only when a test calls.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dualagent.call.options import CallOptions
    from dualagent.call.result import CallResult
    from dualagent.compare import Comparison
    from dualagent.realtime.local.server import LocalRealtimeServer

__all__ = ["AgentCall", "CompareAgents", "assert_call_success", "assert_not_worse"]

MARKER = "agent_test"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dualagent", "dualagent agent tests")
    group.addoption(
        "--dualagent-output",
        metavar="DIR",
        default=None,
        help="keep the recordings of agent_call under DIR, one folder per test "
        "(default: the test's tmp_path)",
    )
    group.addoption(
        "--dualagent-backend",
        metavar="BACKEND",
        default=None,
        help="where agent_call's agents run unless a test says otherwise: local (default), "
        "openai, or a ws:// / wss:// URL",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**call_options): a test of a voice agent through dualagent's agent_call "
        "fixture; keyword arguments are call options for every call of the test "
        "(e.g. agent='bank', route='text')",
    )
    backend = config.getoption("dualagent_backend", None)
    if backend is not None:  # a bad value stops the session at once, not in every test
        from dualagent.call.options import BACKEND_CHOICES, CallDefaults

        try:
            CallDefaults.model_validate({"backend": backend})
        except ValueError:  # pydantic's ValidationError
            raise pytest.UsageError(
                f"--dualagent-backend: invalid value {backend!r}; valid choices: {BACKEND_CHOICES}"
            ) from None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that calls an agent is an agent test: `-m agent_test` / `-m "not agent_test"`.
    for item in items:
        if "agent_call" in getattr(item, "fixturenames", ()) and not item.get_closest_marker(
            MARKER
        ):
            item.add_marker(MARKER)


# ------------------------------------------------------------------------------ the server


class SharedServer:
    """One embedded server for the session, started on first need, on its own event loop in
    a thread: a sync test's ``dualagent.run`` makes a new loop per call and an async test
    runs on its plugin's loop, and a server on a loop of its own serves both alike (calls
    reach it over its websocket only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: LocalRealtimeServer | None = None

    def get(self) -> LocalRealtimeServer:
        with self._lock:
            if self._server is None:
                from dualagent.realtime.local.server import LocalRealtimeServer

                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="dualagent-server", daemon=True
                )
                thread.start()
                server = LocalRealtimeServer()  # engines warm: the first call is like the rest
                try:
                    asyncio.run_coroutine_threadsafe(server.start(), loop).result()
                except BaseException:
                    _stop_loop(loop, thread)
                    raise
                self._loop, self._thread, self._server = loop, thread, server
            return self._server

    def close(self) -> None:
        with self._lock:
            server, loop, thread = self._server, self._loop, self._thread
            self._server = self._loop = self._thread = None
        if server is None or loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(server.close(), loop).result(timeout=60)
        finally:
            _stop_loop(loop, thread)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=60)
    if not thread.is_alive():
        loop.close()


@pytest.fixture(scope="session")
def dualagent_server() -> Iterator[SharedServer]:
    """The session's embedded server (started only when a call on the local backend needs it)."""
    shared = SharedServer()
    yield shared
    shared.close()


# ------------------------------------------------------------------------------ the fixture


class AgentCall:
    """``agent_call(**call_options) -> CallResult`` in a sync test;
    ``await agent_call.simulate(**call_options)`` in an async one.

    Options come, weakest first, from ``--dualagent-backend``, the test's ``agent_test``
    marker and the call's own keywords; ``output_dir`` defaults to the test's folder.
    ``results`` lists the calls made so far.
    """

    def __init__(
        self,
        server: SharedServer,
        output_dir: Path,
        defaults: dict[str, Any],
        node: pytest.Item | None = None,
    ) -> None:
        self.server = server
        self.output_dir = output_dir
        self.defaults = defaults
        self.node = node
        self.results: list[CallResult] = []

    def options(self, caller_type: Any = None, **fields: Any) -> CallOptions:
        """The call's :class:`CallOptions` (a bad value raises InputError, one line)."""
        from dualagent.call.options import CallOptions

        if caller_type is not None:
            fields["caller_type"] = caller_type
        values = {"output_dir": self.output_dir, **self.defaults, **fields}
        return CallOptions.build(**values)

    def _server_for(self, options: CallOptions) -> LocalRealtimeServer | None:
        from dualagent.call.plan import plan_call

        return self.server.get() if plan_call(options).needs_local_server else None

    def __call__(self, caller_type: Any = None, **fields: Any) -> CallResult:
        """Run one call and wait for it (a sync test)."""
        from dualagent.call.simulate import run

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "agent_call(...) waits for the call; in an async test use "
                "`await agent_call.simulate(...)`"
            )
        options = self.options(caller_type, **fields)
        return self._done(run(options=options, local_server=self._server_for(options)))

    async def simulate(self, caller_type: Any = None, **fields: Any) -> CallResult:
        """Run one call on the running event loop (an async test)."""
        from dualagent.call.simulate import simulate

        options = self.options(caller_type, **fields)
        # Starting the shared server blocks for the engines' warm-up: off this loop.
        server = await asyncio.to_thread(self._server_for, options)
        return self._done(await simulate(options=options, local_server=server))

    def _done(self, result: CallResult) -> CallResult:
        self.results.append(result)
        if self.node is not None:  # pytest's own --junitxml shows where the recording is
            self.node.user_properties.append(("dualagent_recording", str(result.path)))
        return result


def _test_folder(root: Path, nodeid: str) -> Path:
    """A folder name for a test: its node id with anything but letters, digits, ., - and _
    replaced."""
    return root / (re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_") or "test")


@pytest.fixture
def agent_call(
    request: pytest.FixtureRequest, tmp_path: Path, dualagent_server: SharedServer
) -> AgentCall:
    """Run calls against an agent under test and get their :class:`CallResult` (see
    :class:`AgentCall`); recordings go to a folder of this test."""
    config = request.config
    output = config.getoption("dualagent_output", None)
    folder = _test_folder(Path(output), request.node.nodeid) if output else tmp_path / "dualagent"
    defaults: dict[str, Any] = {}
    backend = config.getoption("dualagent_backend", None)
    if backend is not None:
        defaults["backend"] = backend
    for marker in reversed(list(request.node.iter_markers(MARKER))):  # the closest wins
        defaults.update(marker.kwargs)
    return AgentCall(dualagent_server, folder, defaults, request.node)


def assert_call_success(result: CallResult) -> None:
    """Fail the test unless the call succeeded, with :meth:`CallResult.explain` as the message
    (a call never judged is not a success either)."""
    __tracebackhide__ = True
    if result.success is not True:
        raise AssertionError(result.explain())


# ------------------------------------------------------------------------------ comparisons


class CompareAgents:
    """``compare_agents(baseline, candidate, **options) -> Comparison`` in a sync test;
    ``await compare_agents.run(...)`` in an async one. The keywords are
    :func:`dualagent.compare.compare_agents`'s; ``output_dir`` defaults to the test's folder,
    ``progress`` to off, and the calls run on the session's embedded server."""

    def __init__(self, server: SharedServer, output_dir: Path) -> None:
        self.server = server
        self.output_dir = output_dir

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        return {"output_dir": self.output_dir, "progress": False, **options}

    def __call__(self, baseline: Any, candidate: Any, **options: Any) -> Comparison:
        """Run both versions and wait for them (a sync test)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "compare_agents(...) waits for the calls; in an async test use "
                "`await compare_agents.run(...)`"
            )
        from dualagent.compare import compare_agents

        server = self.server.get()
        return asyncio.run(
            compare_agents(baseline, candidate, local_server=server, **self._options(options))
        )

    async def run(self, baseline: Any, candidate: Any, **options: Any) -> Comparison:
        """Run both versions on the running event loop (an async test)."""
        from dualagent.compare import compare_agents

        server = await asyncio.to_thread(self.server.get)  # warm-up blocks: off this loop
        return await compare_agents(
            baseline, candidate, local_server=server, **self._options(options)
        )


@pytest.fixture
def compare_agents(tmp_path: Path, dualagent_server: SharedServer) -> CompareAgents:
    """Compare two versions of the agent under test on identical calls (see
    :class:`CompareAgents`); the comparison folders go to this test's folder."""
    return CompareAgents(dualagent_server, tmp_path / "dualagent-compare")


def assert_not_worse(comparison: Comparison, alpha: float = 0.05, min_effect: float = 0.05) -> None:
    """Fail the test when the candidate is significantly worse than the baseline (McNemar
    p < ``alpha`` and a drop in success rate of at least ``min_effect``), with the gate's
    sentence and the comparison's table as the message."""
    __tracebackhide__ = True
    gate = comparison.gate(alpha, min_effect)
    if gate.worse:
        raise AssertionError(f"{gate.message()}\n\n{comparison.format()}")
