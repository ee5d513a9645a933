"""Tests for dualagent.call.recording.CallRecorder: files, timeline, barge-in, memory, JSON records."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dualagent.call.recording import CallRecorder, validate_conversation_id

RATE = 24000


def tone(seconds: float, value: int | None = None, seed: int = 0) -> np.ndarray:
    """PCM16 samples: a constant `value`, or distinct non-zero random samples."""
    n = round(seconds * RATE)
    if value is not None:
        return np.full(n, value, dtype=np.int16)
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 20000, n, dtype=np.int16)
    return x * rng.choice(np.array([-1, 1], dtype=np.int16), n)


def pcm(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def read_int16(path: Path) -> np.ndarray:
    data, rate = sf.read(path, dtype="int16")
    assert rate == RATE
    return data


def test_two_speakers_with_gap_share_one_timeline(tmp_path: Path) -> None:
    caller = tone(1.0, seed=1)
    cs = tone(0.5, seed=2)
    with CallRecorder(tmp_path, "call-1") as rec:
        # Caller 0.0-1.0 s in two consecutive chunks, gap, cs 1.5-2.0 s.
        rec.place_audio("caller", pcm(caller[:12000]), 0.0)
        rec.place_audio("caller", pcm(caller[12000:]), 0.5)
        rec.place_audio("cs", pcm(cs), 1.5)
        assert rec.timeline_s == pytest.approx(2.0)

    left = read_int16(rec.paths["caller_audio"])
    right = read_int16(rec.paths["cs_audio"])
    stereo = read_int16(rec.paths["stereo_recording"])
    assert len(left) == len(right) == len(stereo) == 2 * RATE
    assert stereo.shape == (2 * RATE, 2)
    assert sf.info(rec.paths["caller_audio"]).channels == 1

    # Exact sample values, each speaker only on its own channel, silence in the gap.
    np.testing.assert_array_equal(left[:RATE], caller)
    np.testing.assert_array_equal(right[int(1.5 * RATE) :], cs)
    np.testing.assert_array_equal(stereo[:, 0], left)
    np.testing.assert_array_equal(stereo[:, 1], right)
    assert not right[:RATE].any()
    assert not left[RATE:].any()
    assert not stereo[RATE : int(1.5 * RATE)].any()

    meta = read_json(rec.paths["call_metadata"])
    assert meta["status"] == "completed"
    assert meta["audio"]["duration_s"] == pytest.approx(2.0)
    assert meta["audio"]["format"] == "wav"
    for name in ("caller_audio", "cs_audio", "stereo_recording"):
        assert meta["audio"]["files"][name]["bytes"] == rec.paths[name].stat().st_size


def test_barge_in_overlap(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "barge")
    rec.place_audio("cs", pcm(tone(1.5, value=1000)), 0.0)  # cs speaks 0-1.5 s
    rec.place_audio("caller", pcm(tone(1.0, value=-2000)), 1.0)  # caller barges in at 1 s
    rec.close()

    stereo = read_int16(rec.paths["stereo_recording"])
    assert len(stereo) == 2 * RATE  # the timeline ends with the caller at 2.0 s
    overlap = stereo[RATE : int(1.5 * RATE)]
    assert (overlap[:, 0] == -2000).all() and (overlap[:, 1] == 1000).all()
    assert not stereo[int(1.5 * RATE) :, 1].any()
    assert (stereo[: int(1.5 * RATE), 1] == 1000).all()
    assert len(read_int16(rec.paths["cs_audio"])) == 2 * RATE


def test_flush_keeps_memory_bounded(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "long")
    chunk = pcm(tone(1.0, value=7))
    for second in range(600):  # 10 minutes, cs and caller alternating
        rec.place_audio("caller" if second % 2 else "cs", chunk, float(second))
        rec.flush(second + 1.0)
        # Never more than a few seconds of audio held, however long the call gets.
        assert rec.pending_nbytes <= 10 * RATE * 2 * 2
    assert rec.timeline_s == pytest.approx(600.0)

    # A burst placed far ahead grows the window; once flushed, the memory is given back.
    rec.place_audio("cs", pcm(tone(60.0, value=8)), 600.0)
    assert rec.pending_nbytes >= 60 * RATE * 2 * 2
    rec.flush(660.0)
    assert rec.pending_nbytes <= 10 * RATE * 2 * 2
    rec.close()
    assert sf.info(rec.paths["stereo_recording"]).frames == 660 * RATE
    stereo = read_int16(rec.paths["stereo_recording"])
    assert (stereo[:RATE, 1] == 7).all() and not stereo[:RATE, 0].any()
    assert (stereo[599 * RATE : 600 * RATE, 0] == 7).all()
    assert not stereo[599 * RATE : 600 * RATE, 1].any()
    assert (stereo[600 * RATE :, 1] == 8).all()


def test_flush_pads_silence_and_late_audio_is_clipped_not_corrupting(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rec = CallRecorder(tmp_path, "late")
    rec.place_audio("caller", pcm(tone(0.5, value=3)), 0.0)
    rec.flush(2.0)  # nobody spoke 0.5-2.0 s
    assert rec.timeline_s == pytest.approx(2.0)
    with caplog.at_level("WARNING", logger="dualagent.call.recording"):
        rec.place_audio("cs", pcm(tone(1.0, value=9)), 1.5)  # first 0.5 s is too late
    assert "flushed" in caplog.text
    rec.close()

    stereo = read_int16(rec.paths["stereo_recording"])
    assert len(stereo) == int(2.5 * RATE)
    assert not stereo[: 2 * RATE, 1].any()  # the already-written part was not touched
    assert (stereo[2 * RATE :, 1] == 9).all()
    assert (stereo[: RATE // 2, 0] == 3).all() and not stereo[RATE // 2 :, 0].any()


@pytest.mark.parametrize("fmt", ["flac", "ogg"])
def test_compressed_formats_are_readable_with_right_duration(tmp_path: Path, fmt: str) -> None:
    rec = CallRecorder(tmp_path, f"fmt-{fmt}", audio_format=fmt)
    t = np.arange(round(1.25 * RATE)) / RATE
    speech = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    for i in range(0, len(speech), 2400):  # 100 ms chunks
        rec.place_audio("caller", pcm(speech[i : i + 2400]), i / RATE)
    rec.place_audio("cs", pcm(speech), 1.0)
    rec.close()

    expected = 2.25
    for name in ("caller_audio", "cs_audio", "stereo_recording"):
        path = rec.paths[name]
        assert path.suffix == f".{fmt}"
        info = sf.info(path)
        assert info.samplerate == RATE
        assert info.channels == (2 if name == "stereo_recording" else 1)
        data, _ = sf.read(path)
        tolerance = 0 if fmt == "flac" else round(0.005 * RATE)
        assert abs(len(data) - expected * RATE) <= tolerance
        assert np.abs(data).max() > 0.1  # real audio, not silence
    if fmt == "flac":
        np.testing.assert_array_equal(read_int16(rec.paths["caller_audio"])[: len(speech)], speech)


def test_empty_flac_call_still_has_valid_files(tmp_path: Path) -> None:
    # libsndfile cannot read a FLAC file without frames; the recorder must avoid producing one.
    rec = CallRecorder(tmp_path, "empty", audio_format="flac")
    rec.close()
    lengths = {len(sf.read(rec.paths[n])[0]) for n in ("caller_audio", "cs_audio")}
    assert lengths == {sf.info(rec.paths["stereo_recording"]).frames}


def test_bad_audio_format_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mp3") as err:
        CallRecorder(tmp_path, "x", audio_format="mp3")
    for choice in ("wav", "flac", "ogg"):
        assert choice in str(err.value)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "has space", "x" * 129, "a.b"])
def test_invalid_conversation_ids_are_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="letters, digits") as err:
        CallRecorder(tmp_path / "out", bad)
    assert repr(bad) in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing created outside (or inside) the output dir
    with pytest.raises(ValueError):
        validate_conversation_id(bad)


def test_valid_conversation_id_accepted() -> None:
    assert validate_conversation_id("Call_2024-01-01_abc") == "Call_2024-01-01_abc"
    assert validate_conversation_id("x" * 128) == "x" * 128


def test_existing_conversation_folder_is_not_overwritten(tmp_path: Path) -> None:
    first = CallRecorder(tmp_path, "same")
    first.place_audio("caller", pcm(tone(1.0, value=11)), 0.0)
    first.close()
    before = {p.name: p.read_bytes() for p in first.directory.iterdir()}

    with pytest.raises(FileExistsError, match="same"):
        CallRecorder(tmp_path, "same")
    after = {p.name: p.read_bytes() for p in first.directory.iterdir()}
    assert after == before

    (tmp_path / "empty-ok").mkdir()  # an empty pre-created folder is fine
    CallRecorder(tmp_path, "empty-ok").close()


def test_metadata_says_running_until_close(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "meta", metadata={"persona": "alice", "backend": "local"})
    meta = read_json(rec.paths["call_metadata"])
    assert meta["status"] == "running"
    assert meta["conversation_id"] == "meta"
    assert meta["persona"] == "alice"
    assert meta["started_at"].endswith("+00:00")
    assert meta["ended_at"] is None

    rec.update_metadata(scenario="lost_card")
    assert read_json(rec.paths["call_metadata"])["scenario"] == "lost_card"
    rec.close(end_reason="hangup")
    meta = read_json(rec.paths["call_metadata"])
    assert meta["status"] == "completed" and meta["end_reason"] == "hangup"
    assert meta["persona"] == "alice" and meta["scenario"] == "lost_card"
    assert meta["ended_at"] >= meta["started_at"]
    assert not list(rec.directory.glob("*.tmp"))  # atomic writes leave no temp files


def test_exception_inside_with_leaves_valid_files_and_error_status(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), CallRecorder(tmp_path, "boom") as rec:
        rec.place_audio("cs", pcm(tone(0.75, value=123)), 0.25)
        assert read_json(rec.paths["call_metadata"])["status"] == "running"
        raise RuntimeError("websocket died")

    meta = read_json(rec.paths["call_metadata"])
    assert meta["status"] == "error"
    assert meta["end_reason"] == "error"
    assert "websocket died" in meta["error"]
    for name in ("caller_audio", "cs_audio", "stereo_recording"):
        assert len(read_int16(rec.paths[name])) == RATE
    for name in ("transcript", "function_calls", "session_events"):
        assert read_json(rec.paths[name])["conversation_id"] == "boom"


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), asyncio.CancelledError()])
def test_interrupt_or_cancel_marks_call_interrupted(tmp_path: Path, exc: BaseException) -> None:
    with pytest.raises(type(exc)), CallRecorder(tmp_path, "stop") as rec:
        rec.place_audio("caller", pcm(tone(0.1, value=1)), 0.0)
        raise exc
    meta = read_json(rec.paths["call_metadata"])
    assert meta["status"] == "interrupted" and meta["end_reason"] == "interrupted"
    assert len(read_int16(rec.paths["stereo_recording"])) == RATE // 10


async def test_close_after_task_cancellation(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "cancelled")

    async def call() -> None:
        try:
            rec.place_audio("cs", pcm(tone(0.2, value=4)), 0.0)
            await asyncio.sleep(10)
        finally:
            rec.close(status="interrupted", end_reason="cancelled")

    task = asyncio.create_task(call())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert read_json(rec.paths["call_metadata"])["end_reason"] == "cancelled"
    assert len(read_int16(rec.paths["cs_audio"])) == round(0.2 * RATE)


def test_session_events_have_sizes_not_base64(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "events")
    payloads = [b"\x01\x02" * 2400, b"\x03" * 1000, b"\x04" * 1001]  # 0, 2 and 1 '=' of padding
    encoded = [base64.b64encode(p).decode() for p in payloads]
    append = {"type": "input_audio_buffer.append", "audio": encoded[0]}
    rec.add_event("caller", "sent", append, 0.01)
    rec.add_event(
        "cs",
        "received",
        {"type": "response.output_audio.delta", "delta": encoded[1], "item_id": "i1"},
        0.02,
    )
    rec.add_event("cs", "received", {"type": "response.audio.delta", "delta": encoded[2]}, 0.03)
    text_delta = {"type": "response.output_audio_transcript.delta", "delta": "Hello"}
    rec.add_event("cs", "received", text_delta, 0.04)
    rec.add_event(
        "caller",
        "sent",
        {
            "type": "conversation.item.create",
            "item": {"content": [{"type": "input_audio", "audio": encoded[0]}]},
        },
        0.05,
    )
    assert append["audio"] == encoded[0]  # the caller's dict is not modified
    rec.close()

    raw = rec.paths["session_events"].read_text(encoding="utf-8")
    assert encoded[0] not in raw and encoded[1] not in raw and encoded[2] not in raw
    events = read_json(rec.paths["session_events"])["events"]
    # Padding cases covered: "==" and a single "=".
    assert encoded[1].endswith("==") and encoded[2][-2:-1] != "=" and encoded[2].endswith("=")
    assert [e["event"].get("audio") or e["event"].get("delta") for e in events[:4]] == [
        "<4800 bytes>",
        "<1000 bytes>",
        "<1001 bytes>",
        "Hello",
    ]
    assert events[4]["event"]["item"]["content"][0]["audio"] == "<4800 bytes>"
    assert events[1] == {
        "t_s": 0.02,
        "agent": "cs",
        "direction": "received",
        "type": "response.output_audio.delta",
        "event": {"type": "response.output_audio.delta", "delta": "<1000 bytes>", "item_id": "i1"},
    }


def test_transcript_and_function_calls_written(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "data")
    idx = rec.add_turn({"speaker": "cs", "text": "Thank you for calling", "start_s": 0.0})
    rec.add_turn({"speaker": "caller", "text": "Hi", "start_s": 2.0})
    rec.update_turn(idx, end_s=1.5, heard="thank you for calling", interrupted=False)
    rec.add_function_call({"call_id": "call_1", "agent": "cs", "name": "verify_customer"})
    rec.update_function_call("call_1", output={"ok": True}, ok=True)
    with pytest.raises(KeyError):
        rec.update_turn(99, text="nope")
    rec.close()

    turns = read_json(rec.paths["transcript"])["turns"]
    assert [t["index"] for t in turns] == [0, 1]
    assert turns[0]["heard"] == "thank you for calling" and turns[0]["end_s"] == 1.5
    calls = read_json(rec.paths["function_calls"])
    assert calls["conversation_id"] == "data"
    assert calls["calls"][0]["output"] == {"ok": True} and calls["calls"][0]["ok"] is True


def test_close_twice_is_harmless(tmp_path: Path) -> None:
    rec = CallRecorder(tmp_path, "twice")
    rec.place_audio("caller", pcm(tone(0.5, value=2)), 0.0)
    rec.close(end_reason="hangup")
    first = {p.name: p.read_bytes() for p in rec.directory.iterdir()}
    rec.close(status="error", error="late")  # ignored: the call already ended
    rec.place_audio("cs", pcm(tone(0.5, value=2)), 0.5)  # late chunk ignored, no crash
    assert {p.name: p.read_bytes() for p in rec.directory.iterdir()} == first
    assert read_json(rec.paths["call_metadata"])["status"] == "completed"
