"""The notebooks: committed clean, and they run top to bottom under papermill as documented."""

from __future__ import annotations

import ast
import json
import shlex
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import nbformat
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOC = ROOT / "docs" / "notebooks.md"
IMAGE = ROOT / "docs" / "images" / "compare_caller_types.png"
PARAMETERS = {
    "01_explore.ipynb": {"caller_type", "duration", "route", "seed", "output_dir"},
    "02_batch.ipynb": {"caller_types", "repeats", "duration", "route", "seed", "output_dir"},
    "03_compare_caller_types.ipynb": {"input_dir", "output_dir"},
}
TIMEOUT_S = 240


def documented_batch_command() -> list[str]:
    """The papermill command line for 02 exactly as docs/notebooks.md shows it."""
    lines = [
        line
        for line in DOC.read_text().splitlines()
        if line.startswith("papermill notebooks/02_batch.ipynb")
    ]
    assert lines, "docs/notebooks.md must show the papermill command for 02_batch.ipynb"
    return shlex.split(lines[0])


def papermill(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``papermill ARGS`` (this interpreter's papermill; kernel "python3") in ``cwd``."""
    cwd.mkdir(parents=True, exist_ok=True)
    log_path = cwd / f"papermill-{Path(args[1]).stem}.log"
    # Output to a file, not a pipe: a pipe nobody reads yet would stall a chatty run.
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "papermill", *args],
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    process.log_path = log_path  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen[str]) -> None:
    process.wait(timeout=TIMEOUT_S)
    output = process.log_path.read_text()  # type: ignore[attr-defined]
    assert process.returncode == 0, f"papermill failed:\n{output[-4000:]}"


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Path]:
    """Run the three notebooks: 01 (short audio call) alongside 02 (the documented command),
    then 03 with its defaults in 02's folder, so it compares 02's results."""
    base = tmp_path_factory.mktemp("notebooks")
    explore = papermill(
        [
            str(NOTEBOOKS / "01_explore.ipynb"),
            "out.ipynb",
            "-p",
            "duration",
            "10",
            "-p",
            "output_dir",
            "calls",
        ],
        base / "01",
    )
    command = documented_batch_command()
    assert command[:3] == ["papermill", "notebooks/02_batch.ipynb", "out.ipynb"]
    batch = papermill([str(NOTEBOOKS / "02_batch.ipynb"), *command[2:]], base / "02")
    demo = None
    try:
        finish(batch)
        nb03 = str(NOTEBOOKS / "03_compare_caller_types.ipynb")
        compare = papermill([nb03, "compare.ipynb"], base / "02")  # defaults: 02's results
        demo = papermill([nb03, "compare.ipynb"], base / "03")  # alone: records a demo batch
        finish(compare)
        finish(demo)
        finish(explore)
    finally:
        for process in (explore, batch, demo):
            if process is not None and process.poll() is None:
                process.kill()
    return {"01": base / "01", "02": base / "02", "03": base / "03"}


def outputs(path: Path) -> list[dict]:
    book = nbformat.read(path, as_version=4)
    return [out for cell in book.cells if cell.cell_type == "code" for out in cell.outputs]


def mime_count(items: list[dict], mime: str) -> int:
    return sum(1 for out in items if mime in out.get("data", {}))


# ------------------------------------------------------------------------------ committed form


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_notebook_is_committed_clean_with_parameters(name):
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(book)
    assert book.nbformat == 4
    assert book.metadata.kernelspec.name == "python3"
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    tagged = [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assigned = {
        t.id for node in ast.parse(tagged[0].source).body for t in getattr(node, "targets", [])
    }
    assert PARAMETERS[name] <= assigned


def test_docs_describe_jupyterlab_and_papermill():
    text = DOC.read_text()
    assert "jupyter lab notebooks/" in text and "01_explore.ipynb" in text
    assert documented_batch_command() == [
        "papermill",
        "notebooks/02_batch.ipynb",
        "out.ipynb",
        "-p",
        "repeats",
        "2",
        "-p",
        "caller_types",
        '["typical","frustrated"]',
    ]


def test_docs_comparison_image_is_a_small_png():
    assert IMAGE.stat().st_size < 300_000
    image = matplotlib.image.imread(IMAGE)
    assert image.shape[1] >= 1000 and image.shape[0] >= 500


# ------------------------------------------------------------------------------ executed


@pytest.mark.slow
def test_01_explore_makes_a_call_and_shows_it(executed):
    folder = executed["01"]
    items = outputs(folder / "out.ipynb")
    assert not [out for out in items if out.output_type == "error"]
    calls = [p for p in (folder / "calls").iterdir() if (p / "call_metadata.json").is_file()]
    assert len(calls) == 1  # the app does not run a call by itself; the deep dive does
    meta = json.loads((calls[0] / "call_metadata.json").read_text())
    assert (
        meta["status"] == "completed"
        and meta["route"] == "audio"
        and meta["duration_limit_s"] == 10
    )
    assert mime_count(items, "application/vnd.jupyter.widget-view+json") == 1  # the app
    audio_players = [out for out in items if "<audio" in out.get("data", {}).get("text/html", "")]
    assert len(audio_players) == 3  # stereo, caller, agent
    assert mime_count(items, "image/png") == 3  # timeline, waveform, overview
    tables = [
        out["data"]["text/html"]
        for out in items
        if "<table" in out.get("data", {}).get("text/html", "")
    ]
    transcript = next(t for t in tables if "heard" in t)
    body = transcript.split("<tbody>", 1)[1]
    assert body.count("<tr") == meta["utterance_count"]  # one row per utterance


@pytest.mark.slow
def test_02_batch_runs_as_documented(executed):
    folder = executed["02"]
    out = folder / "results" / "batch"
    calls = pd.read_csv(out / "calls.csv")
    assert len(calls) == 4
    assert sorted(calls["caller_type"]) == ["frustrated", "frustrated", "typical", "typical"]
    assert sorted(calls["seed"]) == [0, 0, 1, 1]
    assert set(calls["status"]) == {"completed"} and set(calls["route"]) == {"text"}
    assert len(list((out / "calls").iterdir())) == 4
    image = matplotlib.image.imread(out / "compare_caller_types.png")
    assert image.shape[1] >= 1000
    by_type = pd.read_csv(out / "by_caller_type.csv")
    assert list(by_type["caller_type"]) == ["typical", "frustrated"] and list(by_type["calls"]) == [
        2,
        2,
    ]
    book = nbformat.read(folder / "out.ipynb", as_version=4)
    assert any("injected-parameters" in cell.metadata.get("tags", []) for cell in book.cells)
    assert not [o for o in outputs(folder / "out.ipynb") if o.output_type == "error"]


@pytest.mark.slow
def test_03_compares_the_batch_results(executed):
    batch = executed["02"] / "results" / "batch"
    out = executed["02"] / "results" / "compare"
    expected = {
        "calls.csv",
        "turns.csv",
        "tool_calls.csv",
        "by_caller_type.csv",
        "tool_use.csv",
        "compare_caller_types.png",
        "timelines_typical.png",
        "timelines_frustrated.png",
        "report.html",
    }
    assert expected <= {p.name for p in out.iterdir()}
    calls = pd.read_csv(out / "calls.csv")
    assert sorted(calls["conversation_id"]) == sorted(
        pd.read_csv(batch / "calls.csv")["conversation_id"]
    )
    report = (out / "report.html").read_text()
    assert all(cid in report for cid in calls["conversation_id"])
    items = outputs(executed["02"] / "compare.ipynb")
    assert not [o for o in items if o.output_type == "error"]
    # comparison + one timeline figure per caller type + the caller mood's three figures
    assert mime_count(items, "image/png") == 6
    assert {"mood.csv", "mood_by_caller_type.csv", "outcome_by_final_mood.csv"} <= {
        p.name for p in out.iterdir()
    }


@pytest.mark.slow
def test_03_alone_records_a_demo_batch_and_compares_it(executed):
    folder = executed["03"]
    calls = pd.read_csv(folder / "results" / "compare" / "calls.csv")
    assert len(calls) == 20
    assert set(calls["caller_type"]) == {"typical", "frustrated", "elderly", "hurried"}
    batch = (folder / "results" / "batch").resolve()
    assert all((folder / p).resolve().is_relative_to(batch) for p in calls["path"])
    assert (folder / "results" / "compare" / "report.html").is_file()


@pytest.mark.slow
def test_03_shows_who_cuts_in_and_whose_patience_falls_faster(executed):
    """The demo batch (text route, five calls per persona): frustrated and hurried callers cut
    in more than typical and elderly ones, and the frustrated caller's patience falls fastest;
    the notebook's output says so."""
    folder = executed["03"]
    text = "".join(
        out.get("text", "")
        for out in outputs(folder / "compare.ipynb")
        if out.output_type == "stream"
    )
    assert "interruptions per call:" in text and "patience lost per agent utterance:" in text
    by_type = pd.read_csv(folder / "results" / "compare" / "mood_by_caller_type.csv")
    by_type = by_type.set_index("caller_type")
    cut_ins = by_type["interruptions_per_call"]
    assert min(cut_ins["frustrated"], cut_ins["hurried"]) > max(
        cut_ins["typical"], cut_ins["elderly"]
    )
    lost = by_type["patience_lost_per_agent_turn"]
    assert lost["frustrated"] == lost.max() and (lost.drop("frustrated") < lost["frustrated"]).all()
    figures = mime_count(outputs(folder / "compare.ipynb"), "image/png")
    assert figures == 1 + 4 + 3  # comparison, four timelines, the mood's three figures
