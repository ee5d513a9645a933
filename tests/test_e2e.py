"""End-to-end calls on the embedded backend: real Realtime server, real speech, real recordings."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import dualagent
from dualagent.realtime.local.server import LocalRealtimeServer

CALLER_TYPES = ["typical", "frustrated", "elderly", "hurried"]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dualagent", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def speech_mask(channel: np.ndarray) -> np.ndarray:
    return np.abs(channel) > 1e-3


def words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


@pytest.mark.slow
def test_default_cli_run_is_a_real_call(tmp_path: Path) -> None:
    out = tmp_path / "calls"
    proc = run_cli(
        "run", "--output-dir", str(out), "--conversation-id", "e2e_default", "--json", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["status"] == "completed"
    assert summary["end_reason"] in ("caller_hung_up", "max_turns")
    assert "order_replacement_card" in summary["tool_calls"]

    call = out / "e2e_default"
    turns = json.loads((call / "transcript.json").read_text())["turns"]
    assert len(turns) >= 6
    assert {t["speaker"] for t in turns} == {"caller", "cs"}
    # What each side heard came from real speech recognition of the other side's audio:
    # close to what was said, but not a copy of the text.
    heard_turns = [t for t in turns if t["heard"]]
    assert len(heard_turns) >= len(turns) - 1
    overlap = [
        len(words(t["text"]) & words(t["heard"])) / len(words(t["text"])) for t in heard_turns
    ]
    assert np.mean(overlap) > 0.6
    assert any(t["heard"] != t["text"].lower().strip(".") for t in heard_turns)

    metadata = json.loads((call / "call_metadata.json").read_text())
    stereo, rate = sf.read(call / "stereo_recording.wav")
    assert rate == 24000 and stereo.shape[1] == 2
    assert abs(len(stereo) / rate - metadata["timeline_s"]) < 0.01
    for name in ("caller_audio.wav", "cs_audio.wav"):
        assert sf.info(call / name).frames == len(stereo)
    # Caller left, agent right, and they take turns: both speak at once only where the caller
    # barged in, and then only until the agent stops (within its cut-off turn's last moments).
    both = speech_mask(stereo[:, 0]) & speech_mask(stereo[:, 1])
    barge_ends = [t["end_s"] for t in turns if t["interrupted"]]
    for sample in np.flatnonzero(both)[::240]:  # every 10 ms of overlap
        t = sample / rate
        assert any(end - 1.5 <= t <= end + 0.05 for end in barge_ends), f"overlap at {t:.2f}s"
    # Each turn's audio sits where the transcript says it does.
    first_cs = next(t for t in turns if t["speaker"] == "cs")
    mid = int((first_cs["start_s"] + first_cs["end_s"]) / 2 * rate)
    window = stereo[mid - 2400 : mid + 2400]
    assert speech_mask(window[:, 1]).any() and not speech_mask(window[:, 0]).any()

    events = json.loads((call / "session_events.json").read_text())["events"]
    assert any(e["type"] == "input_audio_buffer.append" for e in events)
    assert not any("UklGR" in json.dumps(e) for e in events[:50])  # no base64 audio payloads


@pytest.mark.slow
@pytest.mark.parametrize("caller_type", CALLER_TYPES)
async def test_every_caller_type_has_a_full_audio_call(caller_type, local_server, tmp_path) -> None:
    result = await dualagent.simulate(
        caller_type,
        output_dir=tmp_path,
        conversation_id=f"e2e_{caller_type}",
        local_server=local_server,
    )
    assert result.status == "completed", result.metadata.get("error")
    assert result.end_reason in ("caller_hung_up", "transferred_to_human", "max_turns")
    turns = result.turns
    assert len(turns) >= 6
    assert {t["speaker"] for t in turns} == {"caller", "cs"}
    assert result.metadata["caller_type"] == caller_type
    names = [c["name"] for c in result.function_calls]
    assert "verify_customer" in names
    # Speaking rate follows the persona: an elderly caller talks slower than a hurried one.
    caller_turns = [t for t in turns if t["speaker"] == "caller"]
    assert all(t["end_s"] > t["start_s"] for t in caller_turns)
    # The recording is the call: the stereo file lasts as long as the call's timeline (speed
    # is the benchmark's business, not a test's: `dualagent bench`).
    stereo = sf.info(result.audio_path())
    assert stereo.channels == 2
    assert stereo.duration == pytest.approx(result.metadata["timeline_s"], abs=0.5)


async def test_text_route_call_is_complete_without_audio(local_server, tmp_path) -> None:
    result = await dualagent.simulate(
        "typical", route="text", output_dir=tmp_path, local_server=local_server
    )
    assert result.status == "completed"
    turns = result.turns
    assert len(turns) >= 6
    # In the text route the other side "hears" exactly the text.
    assert all(t["heard"] == t["text"] for t in turns[:-1])
    assert "order_replacement_card" in [c["name"] for c in result.function_calls]
    # No speech was made or recognised: nothing was recorded, nothing streamed.
    assert result.metadata["bridge_stats"]["audio_chunks"] == 0
    assert sf.info(result.path / "stereo_recording.wav").frames == 0
    events = json.loads((result.path / "session_events.json").read_text())["events"]
    assert not any(e["type"] == "input_audio_buffer.append" for e in events)


async def test_same_seed_gives_the_same_call(local_server, tmp_path) -> None:
    runs = [
        await dualagent.simulate(
            "elderly",
            route="text",
            seed=7,
            output_dir=tmp_path,
            conversation_id=f"seed_{i}",
            local_server=local_server,
        )
        for i in range(2)
    ]
    texts = [[(t["speaker"], t["text"]) for t in r.turns] for r in runs]
    assert texts[0] == texts[1]
    assert runs[0].end_reason == runs[1].end_reason


async def test_max_turns_ends_the_call(local_server, tmp_path) -> None:
    result = await dualagent.simulate(
        "typical", route="text", max_turns=3, output_dir=tmp_path, local_server=local_server
    )
    assert result.end_reason == "max_turns"
    assert result.metadata["turn_count"] == 3


async def test_duration_limit_ends_the_call(local_server, tmp_path) -> None:
    result = await dualagent.simulate(
        "typical", duration=8, output_dir=tmp_path, local_server=local_server
    )
    assert result.end_reason == "duration_limit"
    assert 8 <= result.metadata["timeline_s"] < 30


async def test_server_going_away_leaves_a_valid_recording(tmp_path) -> None:
    server = await LocalRealtimeServer().start()
    turns_seen = 0
    closing: list[asyncio.Task] = []

    def on_log(entry) -> None:
        nonlocal turns_seen
        if entry.kind == "turn":
            turns_seen += 1
            if turns_seen == 2:
                closing.append(asyncio.get_running_loop().create_task(server.close()))

    result = await dualagent.simulate(
        "typical",
        output_dir=tmp_path,
        conversation_id="dropped",
        local_server=server,
        on_log=on_log,
    )
    assert result.status == "error"
    assert result.end_reason.endswith("_disconnected")
    metadata = json.loads((tmp_path / "dropped" / "call_metadata.json").read_text())
    assert metadata["status"] == "error" and metadata["error"]
    for name in ("caller_audio.wav", "cs_audio.wav", "stereo_recording.wav"):
        info = sf.info(tmp_path / "dropped" / name)
        assert info.frames > 0
    assert json.loads((tmp_path / "dropped" / "transcript.json").read_text())["turns"]
    await asyncio.gather(*closing)


async def test_cancelling_a_call_finalises_the_recording(local_server, tmp_path) -> None:
    started = asyncio.Event()

    def on_log(entry) -> None:
        if entry.kind == "turn":
            started.set()

    task = asyncio.create_task(
        dualagent.simulate(
            "typical",
            output_dir=tmp_path,
            conversation_id="cancelled",
            local_server=local_server,
            on_log=on_log,
        )
    )
    await asyncio.wait_for(started.wait(), 300)  # a hang guard
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    metadata = json.loads((tmp_path / "cancelled" / "call_metadata.json").read_text())
    assert metadata["status"] == "interrupted"
    assert metadata["end_reason"] == "interrupted"
    stereo, rate = sf.read(tmp_path / "cancelled" / "stereo_recording.wav")
    assert len(stereo) / rate > 1.0


async def test_a_tool_that_raises_gives_the_agent_an_error_and_the_call_goes_on(
    local_server, tmp_path, monkeypatch
) -> None:
    from dualagent.bank import agent as bank_agent

    def broken(*args, **kwargs):
        raise RuntimeError("bank backend exploded")

    monkeypatch.setattr(bank_agent, "execute_tool", broken)
    result = await dualagent.simulate(
        "typical",
        route="text",
        output_dir=tmp_path,
        conversation_id="boom",
        local_server=local_server,
    )
    assert result.status == "completed"
    calls = json.loads((tmp_path / "boom" / "function_calls.json").read_text())["calls"]
    failed = [c for c in calls if c["agent"] == "cs"]
    assert failed and all(not c["ok"] for c in failed)
    assert "bank backend exploded" in failed[0]["output"]["error"]
    assert sf.info(tmp_path / "boom" / "stereo_recording.wav").frames >= 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--caller-type", "angry"], "valid choices: elderly, frustrated, hurried, typical"),
        (["--route", "tcp"], "invalid choice: 'tcp'"),
        (["--conversation-id", "../escape"], "letters, digits"),
        (["--duration", "99999"], "1 to 1800"),
        (["--audio-format", "mp3"], "invalid choice: 'mp3'"),
        (["--backend", "http://x"], "valid choices: local, openai"),
        (["--seed", "abc"], "invalid int value"),
        (["--seed", "-1"], "seed: Input should be greater than or equal to 0"),
    ],
)
def test_bad_cli_input_is_one_clear_line_exit_2_and_writes_nothing(
    args, needle, tmp_path: Path
) -> None:
    out = tmp_path / "calls"
    proc = run_cli("run", "--output-dir", str(out), *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_openai_backend_without_key_fails_fast(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "calls"
    env_proc = subprocess.run(
        [sys.executable, "-m", "dualagent", "run", "--backend", "openai", "--output-dir", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={k: v for k, v in __import__("os").environ.items() if k != "OPENAI_API_KEY"},
        timeout=60,
    )
    assert env_proc.returncode == 2
    assert "OPENAI_API_KEY" in env_proc.stderr
    assert not out.exists()


def test_existing_conversation_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "calls" / "taken").mkdir(parents=True)
    (tmp_path / "calls" / "taken" / "keep.txt").write_text("precious")
    proc = run_cli(
        "run", "--output-dir", str(tmp_path / "calls"), "--conversation-id", "taken", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "already exists" in proc.stderr
    assert (tmp_path / "calls" / "taken" / "keep.txt").read_text() == "precious"


def test_run_refuses_inside_an_event_loop() -> None:
    async def inner() -> None:
        with pytest.raises(RuntimeError, match=r"await dualagent\.simulate"):
            dualagent.run("typical")

    asyncio.run(inner())


@pytest.mark.slow
async def test_same_seed_gives_the_same_audio_call(local_server, tmp_path) -> None:
    """Real speech both ways: same seed, same words said (cut-off turns included), same words
    heard, same tool calls, same outcome. Only times differ: latencies are measured."""
    runs = [
        await dualagent.simulate(
            "hurried",
            seed=5,
            output_dir=tmp_path,
            conversation_id=f"audio_seed_{i}",
            local_server=local_server,
        )
        for i in range(2)
    ]
    # Not planned_text: how much an agent had sent beyond the cut depends on timing.
    said = [[(t["speaker"], t["text"], t["heard"]) for t in r.turns] for r in runs]
    assert said[0] == said[1]
    cut = [t for t in runs[0].turns if t["interrupted"]]
    assert cut  # hurried callers interrupt: what was said is the start of what was meant
    assert all(t["text"] and t["planned_text"].startswith(t["text"]) for t in cut)
    tools = [[(c["name"], c["arguments"]) for c in r.function_calls] for r in runs]
    assert tools[0] == tools[1]
    assert runs[0].metadata["outcome"]["result"] == runs[1].metadata["outcome"]["result"]


@pytest.mark.slow
async def test_barge_in_cancels_truncates_and_overlaps(local_server, tmp_path) -> None:
    """A caller who always interrupts: the agent is cut off, told what was heard, and the
    recording holds both voices at once for a moment."""
    persona = dualagent.load_persona("hurried").model_copy(deep=True)
    persona.personality.tendency_to_interrupt = 1.0
    result = await dualagent.simulate(
        persona,
        seed=1,
        max_turns=8,
        output_dir=tmp_path,
        conversation_id="barge",
        local_server=local_server,
    )
    interrupted = [t for t in result.turns if t["interrupted"]]
    assert interrupted and all(t["speaker"] == "cs" for t in interrupted)
    assert result.metadata["metrics"]["interruptions"] == len(interrupted)
    events = json.loads((result.path / "session_events.json").read_text())["events"]
    sent_to_cs = [e["type"] for e in events if e["agent"] == "cs" and e["direction"] == "sent"]
    assert "response.cancel" in sent_to_cs and "conversation.item.truncate" in sent_to_cs
    # What the agent said is the start of what it meant to say, and short of it at least once
    # (a cut that falls in the last moment of a reply keeps the whole reply).
    for turn in interrupted:
        said, planned = turn["text"].split(), turn["planned_text"].split()
        assert said == planned[: len(said)]
    assert any(len(t["text"]) < len(t["planned_text"]) for t in interrupted)
    # The caller starts talking before the agent stops.
    by_index = {t["index"]: t for t in result.turns}
    for turn in interrupted:
        after = by_index.get(turn["index"] + 1)
        if after is not None:
            assert after["speaker"] == "caller"
            assert after["start_s"] == pytest.approx(turn["end_s"] - 0.4, abs=0.01)
    stereo, rate = sf.read(result.path / "stereo_recording.wav")
    both = speech_mask(stereo[:, 0]) & speech_mask(stereo[:, 1])
    assert both.sum() / rate > 0.1  # real overlap, as on a phone call


async def test_line_conditions_degrade_what_is_heard(local_server, tmp_path) -> None:
    from dualagent.call.line import make_line

    with pytest.raises(ValueError, match="valid choices: clean, telephone, noisy"):
        make_line("satellite")
    clean = await dualagent.simulate(
        "typical",
        max_turns=2,
        seed=2,
        output_dir=tmp_path,
        conversation_id="clean",
        local_server=local_server,
    )
    phone = await dualagent.simulate(
        "typical",
        line="telephone",
        max_turns=2,
        seed=2,
        output_dir=tmp_path,
        conversation_id="phone",
        local_server=local_server,
    )
    assert phone.metadata["line"]["name"] == "telephone"
    # The recording holds what the line let through: no energy above 4 kHz on a phone line.
    import numpy as np

    def high_band_share(path):
        audio, rate = sf.read(path / "cs_audio.wav")
        spectrum = np.abs(np.fft.rfft(audio)) ** 2
        freqs = np.fft.rfftfreq(len(audio), 1 / rate)
        return spectrum[freqs > 4200].sum() / spectrum.sum()

    assert high_band_share(clean.path) > 0.01
    assert high_band_share(phone.path) < 0.001
    assert (
        phone.metadata["metrics"]["wer"]["overall"] >= clean.metadata["metrics"]["wer"]["overall"]
    )


async def test_turn_taking_and_audio_routing_each_have_their_own_logger(
    local_server, tmp_path, caplog
) -> None:
    """``--log-level DEBUG`` shows the core's decisions on dualagent.call.turns and the routed
    audio on dualagent.call.audio, so a user can watch one of them alone."""
    with caplog.at_level(logging.DEBUG, logger="dualagent.call"):
        result = await dualagent.simulate(
            "typical",
            max_turns=2,
            output_dir=tmp_path,
            conversation_id="logged",
            local_server=local_server,
        )
    turns = [r.getMessage() for r in caplog.records if r.name == "dualagent.call.turns"]
    audio = [r.getMessage() for r in caplog.records if r.name == "dualagent.call.audio"]
    assert any(m.startswith("turn 0 by cs at 0.") for m in turns)
    assert f"call ends: completed ({result.end_reason})" in turns
    assert any(m.startswith("to caller: ") and "bytes of audio" in m for m in audio)
    assert not any("bytes of audio" in m for m in turns)
