"""The HTML report and the ``dualagent analyze | report | compare`` commands."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import pytest_asyncio

import dualagent
from dualagent import cli
from dualagent.analysis.report import build_report


@pytest.fixture
def main():
    """``dualagent.cli.main``: the command as a user runs it."""
    return cli.main


@pytest_asyncio.fixture(scope="module")
async def results(local_server, tmp_path_factory):
    """Three text-route calls under root/calls plus one hand-made call that crashed."""
    root = tmp_path_factory.mktemp("report")
    done = [
        await dualagent.simulate(
            caller_type,
            route="text",
            seed=seed,
            output_dir=root / "calls",
            audio_format="flac",
            local_server=local_server,
        )
        for caller_type, seed in [("typical", 0), ("elderly", 1), ("hurried", 2)]
    ]
    crashed = root / "calls" / "crashed-call"
    crashed.mkdir()
    (crashed / "call_metadata.json").write_text(
        json.dumps(
            {
                "conversation_id": "crashed-call",
                "caller_type": "typical",
                "status": "error",
                "end_reason": "error",
                "error": "server went away <unexpectedly>",
            }
        )
    )
    return root, done


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Collect()
    parser.feed(page)
    return parser.tags


def shown_text(page: str) -> str:
    """The text a browser shows (markup gone, character references decoded)."""
    parser = _Collect()
    parser.feed(page)
    parser.close()
    return "".join(parser.text)


# ------------------------------------------------------------------------------ report


def test_report_contains_every_call_with_transcript_audio_and_plots(results, tmp_path):
    root, done = results
    path = build_report(root, tmp_path / "out" / "report.html")
    page = path.read_text()
    tags = parse(page)
    sections = {a["id"] for t, a in tags if t == "section"}
    assert sections == {r.conversation_id for r in done} | {"crashed-call"}
    for result in done:
        assert result.turns[1]["text"] in shown_text(page)  # transcripts, shown as said
    assert "server went away &lt;unexpectedly&gt;" in page and "<unexpectedly>" not in page
    images = [a["src"] for t, a in tags if t == "img"]
    assert len(images) >= 1 + 3 + 3  # comparison, per-type timelines, per-call timelines
    assert all(src.startswith("data:image/png;base64,") for src in images)
    base64.b64decode(images[0].split(",", 1)[1], validate=True)
    audio = [a["src"] for t, a in tags if t == "audio"]
    assert len(audio) == 3 and all(
        src.startswith("data:audio/flac;base64,") for src in audio
    )  # small: embedded
    links = [a["href"] for t, a in tags if t == "a" and a["href"].endswith(".flac")]
    for link, result in zip(links, done, strict=True):
        assert (
            path.parent / link
        ).resolve() == result.audio_path().resolve()  # relative link works
    assert "Summary by caller type" in page
    assert re.search(r"(success|completion) rate \[95% CI\]", page)
    # The caller's mood: per type, by final patience, and its three figures.
    assert "Caller mood" in page and "Outcome by final patience" in page
    assert "Mood through the call" in page and "Where patience ran out" in page
    assert {"caller mood trajectories", "where patience ran out", "outcome by final mood"} <= {
        a["alt"] for t, a in tags if t == "img"
    }


def test_markup_in_a_recording_is_shown_as_text(results, tmp_path):
    """A transcript is what a model said; the report shows it, it never runs it."""
    _, done = results
    folder = tmp_path / "calls" / "hostile-call"
    shutil.copytree(done[0].path, folder)
    transcript = json.loads((folder / "transcript.json").read_text())
    transcript["turns"][1]["text"] = "My card <script>alert(1)</script> is gone"
    transcript["turns"][2]["heard"] = "<script>alert(1)</script>"
    (folder / "transcript.json").write_text(json.dumps(transcript))
    meta = json.loads((folder / "call_metadata.json").read_text())
    meta["conversation_id"] = 'hostile"><script>alert(1)</script>'
    (folder / "call_metadata.json").write_text(json.dumps(meta))

    page = build_report(tmp_path / "calls", tmp_path / "report.html", timelines=False).read_text()
    assert "<script>alert(1)</script>" not in page and "<script" not in page
    assert "My card &lt;script&gt;alert(1)&lt;/script&gt; is gone" in page
    assert "heard: &lt;script&gt;alert(1)&lt;/script&gt;" in page
    sections = [a for t, a in parse(page) if t == "section"]
    assert [a["id"] for a in sections] == [meta["conversation_id"]]  # an attribute, intact


def test_large_recordings_are_linked_not_embedded(results, tmp_path):
    root, _ = results
    path = build_report(root, tmp_path / "report.html", embed_audio_max_bytes=0, timelines=False)
    tags = parse(path.read_text())
    audio = [a["src"] for t, a in tags if t == "audio"]
    assert len(audio) == 3 and not any(src.startswith("data:") for src in audio)
    assert all((path.parent / src).is_file() for src in audio)
    # comparison + 3 caller types + the caller mood's 3 figures, no per-call
    assert len([t for t, _ in tags if t == "img"]) == 1 + 3 + 3


# ------------------------------------------------------------------------------ CLI


def test_analyze_prints_a_readable_summary(results, main, capsys):
    _, done = results
    result = done[0]
    assert main(["analyze", str(result.path)]) == 0
    out = capsys.readouterr().out
    assert f"conversation: {result.conversation_id}" in out
    assert f"status:       completed ({result.end_reason})" in out
    seconds = r"[\d.]+ m?s"
    assert re.search(
        rf"latency: +mean {seconds} +median {seconds} +p95 {seconds} +max {seconds}", out
    )
    outcome = result.metadata.get("outcome")
    if outcome:  # evaluated calls show the outcome and each success criterion
        assert f"outcome:      {outcome['result']}" in out
        for criterion in outcome["criteria"]:
            assert f"criterion: {criterion['name']}" in out
    assert f"tool calls:   {result.metadata['tool_call_count']}" in out
    assert "verify_customer(full_name='Nancy Wilson'" in out
    assert "AGENT : Thank you for calling First Bank" in out

    assert (
        main(
            [
                "analyze",
                "--conversation-id",
                result.conversation_id,
                "--output-dir",
                str(result.path.parent),
            ]
        )
        == 0
    )
    assert f"conversation: {result.conversation_id}" in capsys.readouterr().out


def test_analyze_shows_a_crashed_call(results, main, capsys):
    root, _ = results
    assert main(["analyze", str(root / "calls" / "crashed-call")]) == 0
    out = capsys.readouterr().out
    assert "status:       error (error)" in out and "error:        server went away" in out
    assert "(no turns recorded)" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["analyze", "{missing}"], "conversation folder not found"),
        (["analyze"], "give a CONVERSATION_DIR or --conversation-id"),
        (["analyze", "{root}", "--conversation-id", "x"], "not both"),
        (
            ["analyze", "--conversation-id", "nope", "--output-dir", "{root}"],
            "conversation 'nope' not found",
        ),
        (["analyze", "{root}"], "not a recorded call (no call_metadata.json)"),
        (["report", "--input-dir", "{missing}"], "input folder not found"),
        (["report", "--input-dir", "{empty}"], "no calls found in"),
        (["compare", "--input-dir", "{empty}", "--output-dir", "{out}"], "no calls found in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(results, main, capsys, tmp_path, argv, message):
    root, _ = results
    (tmp_path / "empty").mkdir()
    paths = {
        "missing": tmp_path / "missing",
        "root": root,
        "empty": tmp_path / "empty",
        "out": tmp_path / "out",
    }
    assert main([a.format(**paths) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dualagent: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_report_command_writes_the_html(results, main, capsys, tmp_path):
    root, done = results
    output = tmp_path / "report.html"
    assert main(["report", "--input-dir", str(root), "--output", str(output)]) == 0
    assert f"report: {output} (4 calls)" in capsys.readouterr().out
    page = output.read_text()
    assert all(r.conversation_id in page for r in done)


def test_compare_command_writes_tables_and_plots(results, main, capsys, tmp_path):
    root, done = results
    out = tmp_path / "compare"
    assert main(["compare", "--input-dir", str(root), "--output-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "compared 4 calls" in printed
    calls = pd.read_csv(out / "calls.csv")
    assert len(calls) == 4 and set(calls["status"]) == {"completed", "error"}
    by_type = pd.read_csv(out / "by_caller_type.csv").set_index("caller_type")
    assert by_type.loc["typical", "calls"] == 2 and by_type.loc["typical", "completed"] == 1
    assert len(pd.read_csv(out / "turns.csv")) == sum(len(r.turns) for r in done)
    assert len(pd.read_csv(out / "tool_calls.csv")) == sum(
        r.metadata["tool_call_count"] for r in done
    )
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [
        "compare_caller_types.png",
        "timelines_elderly.png",
        "timelines_hurried.png",
        "timelines_typical.png",
    ]
    for name in pngs:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
        assert str(out / name) in printed


def test_commands_are_listed_in_help(main, capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = capsys.readouterr().out
    assert all(name in help_text for name in ("analyze", "report", "compare"))


def test_report_default_output_is_in_the_input_folder(results, tmp_path):
    root, _ = results
    path = build_report(root, timelines=False)
    try:
        assert path == Path(root) / "report.html" and path.is_file()
    finally:
        path.unlink()
