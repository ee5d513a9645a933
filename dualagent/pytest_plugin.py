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
- options ``--dualagent-output DIR`` (keep the recordings there, one folder per test) and
  ``--dualagent-backend BACKEND`` (``local``, ``openai`` or a ``ws://``/``wss://`` URL: where
  the agents run unless a test says otherwise).

An agent's tests then read::

    @pytest.mark.agent_test
    def test_lost_card(agent_call):
        result = agent_call(scenario="lost_gold_card", agent="bank", route="text")
        assert result.success, result.explain()

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
    from dualagent.realtime.local.server import LocalRealtimeServer

__all__ = ["AgentCall", "assert_call_success"]

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
