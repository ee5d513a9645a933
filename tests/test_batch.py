"""Batch runs: manifest, per-call recordings, summary figures, resilience, resume, Dask, CLI."""

from __future__ import annotations

import asyncio
import json
import math
import os
from pathlib import Path

import pandas as pd
import pytest

import dualagent.cli
from dualagent import analysis, batch
from dualagent.batch import BatchConfig, derive_seed, pass_hat_k, runner
from dualagent.call.record import call_success, load_call
from dualagent.errors import InputError

REAL_SIMULATE = runner.simulate


def metadata(path: Path) -> dict:
    return json.loads((path / "call_metadata.json").read_text(encoding="utf-8"))


def manifest(batch_dir: Path) -> dict:
    return json.loads((batch_dir / "batch.json").read_text(encoding="utf-8"))


def cli(*args: str) -> int:
    try:
        return dualagent.cli.main(["batch", *args])
    except SystemExit as exc:  # argparse's own errors exit from parse_args
        return int(exc.code or 0)


def transcript_text(call_dir: Path) -> list[str]:
    turns = json.loads((call_dir / "transcript.json").read_text(encoding="utf-8"))["turns"]
    return [t["text"] for t in turns]


# ------------------------------------------------------------------------------ a real batch


async def test_text_batch_records_every_call_and_summary_matches_the_recordings(
    tmp_path, local_server
):
    result = await batch.run(
        caller_types=["typical", "frustrated"],
        repeat=3,
        route="text",
        output_dir=tmp_path,
        batch_id="b1",
        progress=False,
        local_server=local_server,
    )
    batch_dir = tmp_path / "b1"
    assert result.path == batch_dir.resolve()
    doc = manifest(batch_dir)
    assert doc["status"] == "completed"
    assert doc["package_version"] == dualagent.__version__
    assert (
        doc["config"]["caller_types"] == ["typical", "frustrated"] and doc["config"]["repeat"] == 3
    )
    assert doc["started_at"] <= doc["ended_at"]
    assert len(doc["calls"]) == 6
    # Result files are shareable like the recordings (the umask decides), no leftovers.
    modes = {f.name: f.stat().st_mode & 0o777 for f in batch_dir.iterdir() if f.is_file()}
    first_call = batch_dir / doc["calls"][0]["path"]
    expected = (first_call / "call_metadata.json").stat().st_mode & 0o777
    assert modes == dict.fromkeys(
        ["batch.json", "calls.csv", "summary.csv", "summary.json"], expected
    )

    # One conversation folder per call, named by item and repetition, each a finished recording.
    metas = {}
    for entry in doc["calls"]:
        call_dir = batch_dir / entry["path"]
        meta = metadata(call_dir)
        metas[entry["call_id"]] = meta
        assert meta["conversation_id"] == entry["call_id"] == call_dir.name
        assert meta["caller_type"] == entry["item"]
        assert meta["route"] == "text"
        assert (
            meta["seed"]
            == entry["seed"]
            == derive_seed(0, "caller_type", entry["item"], entry["repeat"])
        )
        assert (entry["status"], entry["end_reason"]) == (meta["status"], meta["end_reason"])
    assert sorted(metas) == sorted(
        f"{t}-{r:03d}" for t in ("typical", "frustrated") for r in range(3)
    )
    assert len({m["seed"] for m in metas.values()}) == 6  # every call gets its own seed

    # The summary reconciles with the per-call call_metadata.json files.
    summary = result.summary.set_index("item")
    for caller_type in ("typical", "frustrated"):
        own = [m for cid, m in metas.items() if cid.startswith(caller_type)]
        assert all(isinstance(m.get("outcome"), dict) for m in own)  # every call is judged
        ok = sum(m["outcome"]["result"] == "success" for m in own)
        row = summary.loc[caller_type]
        assert (row["n"], row["judged"]) == (3, 3)
        assert row["successes"] == ok
        assert row["success_rate"] == pytest.approx(ok / 3)
        assert row["pass^1"] == pytest.approx(ok / 3)
        assert row["pass^3"] == pytest.approx(1.0 if ok == 3 else 0.0)
        assert row["mean_turns"] == pytest.approx(sum(m["turn_count"] for m in own) / 3, abs=1e-3)
        assert row["mean_duration_s"] == pytest.approx(
            sum(m["timeline_s"] for m in own) / 3, abs=1e-3
        )
        # Two latencies, never mixed: the silence between turns on the call's timeline...
        gaps = [m["metrics"]["response_latency_s"]["mean"] for m in own]
        assert row["mean_turn_gap_s"] == pytest.approx(sum(gaps) / 3, abs=1e-3)
        # ...and the backend's measured time from response.create to the first output.
        engine = [sum(m["response_latencies_s"]) / len(m["response_latencies_s"]) for m in own]
        assert row["mean_engine_latency_s"] == pytest.approx(sum(engine) / 3, abs=1e-3)
        assert row["errors"] == 0
    calls = result.calls.set_index("call_id")
    for call_id, meta in metas.items():
        gap = meta["metrics"]["response_latency_s"]["mean"]
        assert calls.loc[call_id, "mean_turn_gap_s"] == pytest.approx(gap, abs=1e-3)

    # The same figures are on disk for other tools.
    calls_csv = pd.read_csv(batch_dir / "calls.csv")
    assert sorted(calls_csv["call_id"]) == sorted(metas)
    assert set(calls_csv["status"]) == {"completed"}
    summary_csv = pd.read_csv(batch_dir / "summary.csv").set_index("item")
    assert summary_csv.loc["typical", "n"] == 3
    assert summary_csv.loc["frustrated", "mean_turns"] == pytest.approx(
        summary.loc["frustrated", "mean_turns"]
    )
    summary_json = json.loads((batch_dir / "summary.json").read_text())
    assert summary_json["overall"]["n"] == 6
    assert {row["item"] for row in summary_json["items"]} == {"typical", "frustrated"}

    # Same base seed, same calls: a second batch replays the first one's conversations.
    again = await batch.run(
        caller_types=["frustrated"],
        repeat=1,
        route="text",
        output_dir=tmp_path,
        batch_id="b1_again",
        progress=False,
        local_server=local_server,
    )
    assert again.calls.loc[0, "seed"] == metas["frustrated-000"]["seed"]
    assert transcript_text(tmp_path / "b1_again" / "frustrated-000") == transcript_text(
        batch_dir / "frustrated-000"
    )


async def test_builtin_config_runs_with_overrides(tmp_path, local_server):
    result = await batch.run(
        "difficult_customers",
        repeat=1,
        route="text",
        output_dir=tmp_path,
        progress=False,
        local_server=local_server,
    )
    assert result.batch_id.startswith("difficult_customers-")
    assert list(result.summary["item"]) == ["frustrated", "elderly", "hurried"]
    assert result.manifest["config"]["repeat"] == 1
    assert (result.calls["status"] == "completed").all()


# ------------------------------------------------------------------------------ pass^k


def test_pass_hat_k_hand_computed():
    assert pass_hat_k([(4, 2)], 1) == pytest.approx(0.5)
    assert pass_hat_k([(4, 2)], 2) == pytest.approx(1 / 6)  # C(2,2)/C(4,2)
    assert pass_hat_k([(5, 4)], 3) == pytest.approx(0.4)  # C(4,3)/C(5,3) = 4/10
    assert pass_hat_k([(3, 3), (3, 0)], 1) == pytest.approx(0.5)
    assert pass_hat_k([(3, 3), (3, 0)], 3) == pytest.approx(0.5)
    assert pass_hat_k([(4, 2), (5, 4)], 2) == pytest.approx((1 / 6 + 6 / 10) / 2)
    assert pass_hat_k([(3, 2)], 3) == 0.0  # one failure among 3 trials: never 3 in a row
    assert pass_hat_k([(2, 2), (5, 5)], 3) == 1.0  # the task with too few trials is left out
    assert math.isnan(pass_hat_k([(2, 2)], 3))
    with pytest.raises(ValueError):
        pass_hat_k([(2, 2)], 0)


def test_summary_counts_judged_calls_and_failures_by_end_reason(tmp_path):
    """A batch folder written by hand: success is what the outcome says; a completed call that
    was never judged is neither a success nor a failure; errors fail; pending calls are not trials.
    """

    def call(item, r, status, end_reason, outcome=None):
        call_id = f"{item}-{r:03d}"
        meta = {
            "conversation_id": call_id,
            "status": status,
            "end_reason": end_reason,
            "turn_count": 10 + r,
            "timeline_s": 60.0,
            "response_latencies_s": [0.5, 1.5],  # the backend: 1.0 s on average
            "metrics": {"response_latency_s": {"mean": 0.2}},  # the timeline's gaps
        }
        if outcome:
            meta["outcome"] = {"result": outcome}
        (tmp_path / call_id).mkdir()
        (tmp_path / call_id / "call_metadata.json").write_text(json.dumps(meta))
        entry = {"call_id": call_id, "kind": "caller_type", "item": item, "repeat": r, "seed": r}
        return {**entry, "path": call_id, **load_call(tmp_path / call_id).summary()}

    doc = {
        "batch_id": "x",
        "config": {"repeat": 4},
        "calls": [
            call("a", 0, "completed", "caller_hung_up", "success"),
            call("a", 1, "completed", "caller_hung_up", "failure"),  # completed, not a success
            call("a", 2, "completed", "max_turns", "success"),
            call("a", 3, "error", "connection_failed"),  # no outcome, did not complete: failed
            call("b", 0, "completed", "caller_hung_up", "success"),
            call("b", 1, "completed", "transferred"),  # never judged: left out of the rates
            {
                "call_id": "b-002",
                "kind": "caller_type",
                "item": "b",
                "repeat": 2,
                "seed": 2,
                "status": "pending",
            },
        ],
    }
    (tmp_path / "batch.json").write_text(json.dumps(doc))
    result = batch.load_batch(tmp_path)
    assert list(result.calls["success"]) == [True, False, True, False, True, None, None]
    rows = result.summary.set_index("item")
    assert rows.loc["a", "n"] == 4 and rows.loc["a", "successes"] == 2
    assert rows.loc["a", "pass^1"] == pytest.approx(0.5)
    assert rows.loc["a", "pass^4"] == 0.0
    assert rows.loc["a", "errors"] == 1
    assert rows.loc["a", "failures_by_end_reason"] == {"caller_hung_up": 1, "connection_failed": 1}
    assert rows.loc["a", "mean_turns"] == pytest.approx(11.5)
    assert rows.loc["a", "mean_engine_latency_s"] == pytest.approx(1.0)
    assert rows.loc["a", "mean_turn_gap_s"] == pytest.approx(0.2)
    assert rows.loc["b", "n"] == 2  # the pending call is not a trial
    assert rows.loc["b", "judged"] == 1 and rows.loc["b", "successes"] == 1
    assert rows.loc["b", "success_rate"] == 1.0
    assert rows.loc["b", "failures"] == 0  # the unjudged call is not a failure either
    assert math.isnan(rows.loc["b", "pass^4"])  # fewer than k trials
    figures = batch.overall(result.summary, 4)
    assert (figures["n"], figures["judged"], figures["successes"]) == (6, 5, 3)
    assert figures["success_rate"] == pytest.approx(3 / 5)
    assert figures["pass^1"] == pytest.approx((0.5 + 1.0) / 2)
    # The same definition as everywhere else.
    for entry, success in zip(doc["calls"][:6], result.calls["success"], strict=False):
        assert success is call_success(entry["status"], entry.get("outcome"))


# ------------------------------------------------------------------------------ resilience


async def test_failed_call_does_not_stop_the_batch_and_resume_reruns_only_it(
    tmp_path, local_server, monkeypatch
):
    simulated: list[str] = []
    broken = {"frustrated-001"}

    async def flaky(*args, **kwargs):
        simulated.append(kwargs["conversation_id"])
        if kwargs["conversation_id"] in broken:
            raise RuntimeError("backend exploded")
        return await REAL_SIMULATE(*args, **kwargs)

    monkeypatch.setattr(runner, "simulate", flaky)  # where the runner looks it up
    first = await batch.run(
        caller_types=["typical", "frustrated"],
        repeat=3,
        route="text",
        output_dir=tmp_path,
        batch_id="flaky",
        progress=False,
        local_server=local_server,
    )
    batch_dir = tmp_path / "flaky"
    assert sorted(simulated) == sorted(
        f"{t}-{r:03d}" for t in ("typical", "frustrated") for r in range(3)
    )
    assert first.status == "completed" and first.errors == 1
    failed = manifest(batch_dir)["calls"][4]
    assert failed["call_id"] == "frustrated-001"
    assert failed["status"] == "error" and "backend exploded" in failed["error"]
    row = first.summary.set_index("item").loc["frustrated"]
    assert (row["n"], row["errors"], row["successes"]) == (3, 1, 2)
    assert row["failures_by_end_reason"] == {"exception": 1}
    assert first.summary.set_index("item").loc["typical", "errors"] == 0

    finished = {
        p.name: p.joinpath("call_metadata.json").stat().st_mtime_ns for p in batch_dir.glob("*-00?")
    }
    assert "frustrated-001" not in finished

    simulated.clear()
    broken.clear()  # the backend is fixed
    resumed = await batch.run(
        resume=True,
        batch_id="flaky",
        output_dir=tmp_path,
        progress=False,
        local_server=local_server,
    )
    assert simulated == [
        "frustrated-001"
    ]  # config taken from the manifest; only the failed call re-ran
    assert resumed.status == "completed" and resumed.errors == 0
    assert (resumed.calls["status"] == "completed").all()
    assert resumed.calls.set_index("call_id")["resumed"].to_dict() == {
        cid: cid != "frustrated-001" for cid in resumed.calls["call_id"]
    }
    for name, mtime in finished.items():  # finished recordings untouched
        assert (batch_dir / name / "call_metadata.json").stat().st_mtime_ns == mtime
    assert resumed.summary.set_index("item").loc["frustrated", "successes"] == 3


async def test_cancelling_a_batch_interrupts_calls_in_flight_and_marks_the_manifest(
    tmp_path, local_server
):
    task = asyncio.create_task(
        batch.run(
            caller_types=["typical"],
            repeat=3,
            parallel=1,
            route="audio",
            output_dir=tmp_path,
            batch_id="stop",
            progress=False,
            local_server=local_server,
            transport="websocket",  # the closing handshake below is the websocket's
        )
    )
    batch_dir = tmp_path / "stop"
    before = set(local_server.connections)
    async with asyncio.timeout(60):  # until the first call is talking: both agents connected
        while (
            len(local_server.connections - before) < 2
            or not (batch_dir / "typical-000" / "call_metadata.json").exists()
        ):
            await asyncio.sleep(0.05)
    call_connections = local_server.connections - before
    await asyncio.sleep(1.0)  # mid-call: a real-speech call takes several seconds
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    doc = manifest(batch_dir)
    assert doc["status"] == "interrupted"
    statuses = {c["call_id"]: c["status"] for c in doc["calls"]}
    assert statuses == {
        "typical-000": "interrupted",
        "typical-001": "pending",
        "typical-002": "pending",
    }
    assert metadata(batch_dir / "typical-000")["status"] == "interrupted"
    assert not (batch_dir / "typical-001").exists()
    assert (batch_dir / "summary.csv").exists()
    # Stopped cleanly: the interrupted call hung up both of its Realtime connections, with a
    # completed closing handshake (1000; a handshake left hanging is aborted after the
    # server's close timeout: 1006).
    async with asyncio.timeout(60):  # a guard against hanging, not a stopwatch
        while local_server.connections & call_connections:
            await asyncio.sleep(0.05)
    assert [c.outlet.line.close_code for c in call_connections] == [1000, 1000]


# ------------------------------------------------------------------------------ input


def test_config_files_load_and_bad_ones_name_file_field_and_reason(tmp_path):
    assert set(batch.list_configs()) >= {"default", "difficult_customers"}
    assert batch.load_config("default").caller_types == [
        "typical",
        "frustrated",
        "elderly",
        "hurried",
    ]
    difficult = batch.load_config("difficult_customers")
    assert difficult.caller_types == ["frustrated", "elderly", "hurried"] and difficult.repeat >= 1

    bad = tmp_path / "bad.yaml"
    bad.write_text("caller_types: [typical, angry]\nrepeat: 0\n")
    with pytest.raises(InputError) as err:
        batch.load_config(bad)
    message = str(err.value)
    assert (
        str(bad) in message
        and "caller_types: unknown caller type 'angry'" in message
        and "angry" in message
        and "typical" in message
    )
    assert "repeat: Input should be greater than or equal to 1 (got 0)" in message

    bad.write_text("caller_types: [typical\nrepeat: 2\n")
    with pytest.raises(InputError, match=r"bad\.yaml: not valid YAML at line 2"):
        batch.load_config(bad)
    bad.write_text("caller_types: [typical]\nrepeats: 2\n")
    with pytest.raises(InputError, match=r"repeats: unknown field \(valid fields: .*repeat"):
        batch.load_config(bad)

    persona = tmp_path / "mine.yaml"
    persona.write_text((Path(dualagent.__file__).parent / "data/personas/typical.yaml").read_text())
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "caller_types: [mine.yaml, hurried]\nroute: text\n"
    )  # persona path relative to the config
    config = batch.load_config(ok)
    assert isinstance(config, BatchConfig) and config.caller_types[0] == str(persona)
    assert [s.call_id for s in batch.plan_calls(config)] == ["mine-000", "hurried-000"]


async def test_scenario_batch_counts_successes_from_the_scenario_outcome(tmp_path, local_server):
    result = await batch.run(
        scenarios=["lost_gold_card", "cannot_verify_identity"],
        repeat=2,
        route="text",
        output_dir=tmp_path,
        batch_id="sc",
        progress=False,
        local_server=local_server,
    )
    rows = result.summary.set_index("item")
    for name in ("lost_gold_card", "cannot_verify_identity"):
        metas = [metadata(tmp_path / "sc" / f"{name}-{r:03d}") for r in range(2)]
        assert all(m["outcome"]["scenario"] == name for m in metas)
        assert rows.loc[name, "kind"] == "scenario" and rows.loc[name, "n"] == 2
        # A completed call only counts as a success if its outcome says so.
        assert rows.loc[name, "successes"] == sum(
            m["outcome"]["result"] == "success" for m in metas
        )
        assert rows.loc[name, "as_expected_rate"] == pytest.approx(
            sum(bool(m["outcome"]["as_expected"]) for m in metas) / 2
        )


async def test_batch_and_analysis_agree_on_success(tmp_path, local_server):
    """One definition of success: the batch summary and dualagent.analysis read the same folder
    the same way, call by call and in the rate."""
    result = await batch.run(
        caller_types=["typical", "frustrated"],
        scenarios=["lost_gold_card", "cannot_verify_identity"],
        repeat=2,
        route="text",
        output_dir=tmp_path,
        batch_id="agree",
        progress=False,
        local_server=local_server,
    )
    calls = analysis.load_calls(result.path)
    _, success = analysis.success_measure(calls)
    by_analysis = {
        cid: (None if pd.isna(ok) else bool(ok))
        for cid, ok in zip(calls["conversation_id"], success, strict=True)
    }
    by_batch = {
        cid: (None if ok is None or pd.isna(ok) else bool(ok))
        for cid, ok in zip(result.calls["call_id"], result.calls["success"], strict=True)
    }
    assert by_analysis == by_batch
    judged = [ok for ok in by_analysis.values() if ok is not None]
    assert result.overall["success_rate"] == pytest.approx(sum(judged) / len(judged))
    assert result.overall["judged"] == len(judged)


async def test_scenarios_are_checked_before_anything_is_written(tmp_path):
    with pytest.raises(InputError, match=r"unknown scenario 'no_such_scenario'; valid choices: .*"):
        await batch.run(
            scenarios=["lost_gold_card", "no_such_scenario"], output_dir=tmp_path, progress=False
        )
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--caller-types", "typical,angry"], "'angry'"),
        (["--route", "phone"], "'phone'"),
        (["--repeat", "0"], "'0'"),
        (["--processes", "0"], "'0'"),
        (["--config", "nope"], "'nope'"),
        (["--executor", "spark://host:1"], "dask://HOST:PORT"),
        (["--batch-id", "../up"], "'../up'"),
        (["--resume", "--batch-id", "missing"], "missing"),
        (["--notebook", "missing.ipynb"], "missing.ipynb"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, expected):
    out = tmp_path / "runs"
    assert cli("--output-dir", str(out), "--route", "text", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expected in err
    assert not out.exists()


def test_cli_runs_a_batch_prints_the_summary_and_executes_the_notebook(tmp_path, capsys):
    nbformat = pytest.importorskip("nbformat")
    notebook = tmp_path / "analyse.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    params = nbformat.v4.new_code_cell('input_dir = ""\noutput_dir = ""')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        params,
        nbformat.v4.new_code_cell(
            "import pandas as pd, pathlib\n"
            "s = pd.read_csv(pathlib.Path(input_dir) / 'summary.csv')\n"
            "(pathlib.Path(output_dir) / 'calls_seen.txt').write_text(str(int(s['n'].sum())))"
        ),
    ]
    nbformat.write(nb, notebook)
    out = tmp_path / "runs"
    code = cli(
        "--caller-types",
        "hurried,elderly",
        "--repeat",
        "2",
        "--route",
        "text",
        "--output-dir",
        str(out),
        "--batch-id",
        "cli1",
        "--notebook",
        str(notebook),
        "--no-progress",
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert (
        "hurried" in printed and "elderly" in printed and "pass^2" in printed and "cli1" in printed
    )
    batch_dir = out / "cli1"
    assert (batch_dir / "analyse.ipynb").exists()  # the executed copy
    assert (batch_dir / "calls_seen.txt").read_text() == "4"
    assert manifest(batch_dir)["notebook"]["status"] == "completed"


# ------------------------------------------------------------------------------ Dask


async def test_dask_local_cluster_runs_calls_in_workers(tmp_path):
    distributed = pytest.importorskip("distributed")

    def start() -> distributed.LocalCluster:
        # Everything on 127.0.0.1; the scheduler's HTTP server on any free port.
        return distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )

    cluster = await asyncio.to_thread(start)
    try:
        address = cluster.scheduler_address.split("://", 1)[1]
        result = await batch.run(
            caller_types=["typical", "hurried"],
            repeat=2,
            route="text",
            output_dir=tmp_path,
            executor=f"dask://{address}",
            batch_id="dask1",
            progress=False,
        )
        # A distributed.Client works as the executor too.
        client = await asyncio.to_thread(distributed.Client, cluster)
        try:
            with_client = await batch.run(
                caller_types=["elderly"],
                repeat=2,
                route="text",
                output_dir=tmp_path,
                executor=client,
                batch_id="dask2",
                progress=False,
            )
        finally:
            await asyncio.to_thread(client.close)
    finally:
        await asyncio.to_thread(cluster.close)
    assert with_client.status == "completed" and with_client.errors == 0
    assert list(with_client.calls["status"]) == ["completed", "completed"]
    doc = manifest(tmp_path / "dask1")
    assert doc["status"] == "completed" and doc["executor"].startswith("dask://")
    assert doc["parallel"] == 2  # the cluster's threads
    assert [c["status"] for c in doc["calls"]] == ["completed"] * 4
    pids = {c["worker_pid"] for c in doc["calls"]}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # ran in the worker processes
    for entry in doc["calls"]:
        meta = metadata(tmp_path / "dask1" / entry["path"])
        assert meta["status"] == "completed" and meta["seed"] == entry["seed"]
    assert list(result.summary["n"]) == [2, 2]


async def test_cancelling_a_dask_batch_marks_the_manifest_and_submits_nothing_more(tmp_path):
    distributed = pytest.importorskip("distributed")

    def start() -> distributed.LocalCluster:
        return distributed.LocalCluster(
            n_workers=1,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        )

    cluster = await asyncio.to_thread(start)
    batch_dir = tmp_path / "dstop"
    try:
        address = cluster.scheduler_address.split("://", 1)[1]
        task = asyncio.create_task(
            batch.run(
                caller_types=["typical"],
                repeat=3,
                parallel=1,
                route="audio",  # a real-speech call takes long enough to be cancelled mid-call
                output_dir=tmp_path,
                executor=f"dask://{address}",
                batch_id="dstop",
                progress=False,
            )
        )
        async with asyncio.timeout(120):  # until the worker has started the first call
            while not (batch_dir / "typical-000" / "call_metadata.json").exists():
                await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await asyncio.to_thread(cluster.close)
    doc = manifest(batch_dir)
    assert doc["status"] == "interrupted"
    assert {c["call_id"]: c["status"] for c in doc["calls"]} == {
        "typical-000": "interrupted",  # it may finish on the worker; resume re-runs it
        "typical-001": "pending",
        "typical-002": "pending",
    }
    assert not (batch_dir / "typical-001").exists()
    assert (batch_dir / "summary.csv").exists()


# ------------------------------------------------------------------------------ scale


async def test_hundred_text_calls_at_parallel_16(tmp_path, local_server):
    result = await batch.run(
        caller_types=["typical", "frustrated", "elderly", "hurried"],
        repeat=25,
        parallel=16,
        route="text",
        output_dir=tmp_path,
        batch_id="big",
        progress=False,
        local_server=local_server,
    )
    assert len(result.calls) == 100 and result.errors == 0
    assert (result.calls["status"] == "completed").all()
    assert list(result.summary["n"]) == [25, 25, 25, 25]
    assert len([p for p in (tmp_path / "big").iterdir() if p.is_dir()]) == 100


# ------------------------------------------------------------------------------ retries

HOSTED_KEY = "sk-test-batch-retry-0000"


async def test_a_call_that_hit_a_rate_limit_is_retried_and_the_manifest_says_so(
    tmp_path, local_server, monkeypatch
):
    from tests.fake_openai import FakeOpenAIRealtime

    pauses: list[float] = []

    async def pause(seconds: float) -> None:  # counted, not waited
        pauses.append(seconds)

    monkeypatch.setattr(runner, "_pause", pause)
    monkeypatch.setenv("OPENAI_API_KEY", HOSTED_KEY)
    async with (
        FakeOpenAIRealtime(
            local_server.url, api_key=HOSTED_KEY, fault="rate_limit", fault_after=1
        ) as limited,
        FakeOpenAIRealtime(local_server.url, api_key=HOSTED_KEY) as fine,
    ):
        services = iter([limited.url, fine.url])  # the first attempt hits the rate limit

        async def simulate(*args, **kwargs):
            monkeypatch.setenv("DUALAGENT_OPENAI_URL", next(services))
            return await REAL_SIMULATE(*args, **kwargs)

        monkeypatch.setattr(runner, "simulate", simulate)
        result = await batch.run(
            caller_types=["typical"],
            backend="openai",
            pace="fast",
            route="text",
            max_turns=2,
            retries=2,
            output_dir=tmp_path,
            batch_id="retried",
            progress=False,
            local_server=local_server,
        )
    assert result.errors == 0
    data = manifest(tmp_path / "retried")
    assert data["retries"] == 2 and data["config"]["retries"] == 2
    [call] = data["calls"]
    assert (call["status"], call["attempts"]) == ("completed", 2)
    [failed] = call["retried"]
    assert failed["end_reason"] == "service_error" and "rate_limit_exceeded" in failed["error"]
    assert len(pauses) == 1 and 0 <= pauses[0] <= runner.CALL_RETRY.base_delay_s


async def test_a_call_refused_for_its_key_is_not_retried(tmp_path, local_server, monkeypatch):
    from tests.fake_openai import FakeOpenAIRealtime

    pauses: list[float] = []

    async def pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(runner, "_pause", pause)
    async with FakeOpenAIRealtime(local_server.url, api_key=HOSTED_KEY) as fake:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-wrong-key-1111")
        monkeypatch.setenv("DUALAGENT_OPENAI_URL", fake.url)
        result = await batch.run(
            caller_types=["typical"],
            backend="openai",
            route="text",
            retries=3,
            output_dir=tmp_path,
            batch_id="refused",
            progress=False,
            local_server=local_server,
        )
    assert result.errors == 1
    [call] = manifest(tmp_path / "refused")["calls"]
    assert (call["end_reason"], call["attempts"]) == ("connection_failed", 1)
    assert "retried" not in call and pauses == []
    assert fake.handshakes == 2  # once per agent: a 401 is final, for the connect and the batch


_SMALL_TEXT_BATCH = """
import asyncio, json, sys
import psutil
from dualagent import batch
asyncio.run(batch.run(caller_types=["typical", "hurried"], route="text",
                      output_dir=sys.argv[1], progress=False, batch_id="small"))
print(json.dumps({
    "voice_loaded": "onnxruntime" in sys.modules,
    "workers": len(psutil.Process().children(recursive=True)),
}))
"""


def test_a_small_text_batch_runs_without_loading_the_speech_engines(tmp_path) -> None:
    """Text calls have no audio: no voice model (~90 MB) or recognition worker to start."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _SMALL_TEXT_BATCH, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["voice_loaded"] is False and report["workers"] == 0
    metadata = sorted((tmp_path / "small").glob("*/call_metadata.json"))
    calls = [load_call(path.parent) for path in metadata]
    assert len(calls) == 2 and all(call.status == "completed" for call in calls)
