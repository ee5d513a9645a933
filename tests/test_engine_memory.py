"""Memory savings in the speech engines that must not change what they produce."""

import os
import struct
from pathlib import Path

import pytest

from dualagent.realtime.local import asr_worker
from dualagent.realtime.local.asr_worker import DECODER_SETTINGS
from dualagent.realtime.local.engine_cache import configure_caches
from dualagent.realtime.local.engines import get_tts
from dualagent.realtime.protocol import SAMPLE_RATE_HZ, float_to_pcm16, pcm16_to_float


def _full_dictionary_decoder():
    from pocketsphinx import Decoder

    return Decoder(**DECODER_SETTINGS, loglevel="FATAL")


def _default_paths() -> tuple[str, str]:
    from pocketsphinx import Config

    config = Config(**DECODER_SETTINGS)
    return config["dict"], config["lm"]


def test_the_smaller_dictionary_keeps_every_entry_of_a_word_the_lm_knows_in_order() -> None:
    dictionary, lm = _default_paths()
    vocabulary = asr_worker._words_in_lm(lm)
    assert vocabulary is not None and b"<s>" in vocabulary and b"replacement" in vocabulary
    full = Path(dictionary).read_bytes().splitlines(keepends=True)
    fd = asr_worker._dictionary_of_lm_words()
    assert fd is not None
    try:
        kept = Path(f"/proc/self/fd/{fd}").read_bytes().splitlines(keepends=True)
    finally:
        os.close(fd)
    assert kept == [line for line in full if asr_worker._entry_word(line) in vocabulary]
    assert 0 < len(kept) < len(full)
    assert asr_worker._entry_word(b"read(2) R EH D\n") == b"read"


def test_a_file_that_is_not_a_binary_lm_means_the_full_dictionary(tmp_path: Path) -> None:
    arpa = tmp_path / "lm.arpa"
    arpa.write_text("\\data\\\nngram 1=2\n")
    assert asr_worker._words_in_lm(str(arpa)) is None
    _, lm = _default_paths()
    truncated = tmp_path / "truncated.lm.bin"
    truncated.write_bytes(Path(lm).read_bytes()[:4096])
    assert asr_worker._words_in_lm(str(truncated)) is None
    wrong_count = tmp_path / "wrong.lm.bin"
    words = b"a\0b\0"
    wrong_count.write_bytes(
        b"Trie Language Model" + bytes([1]) + struct.pack("<I", 2) + struct.pack("<i", 5) + words
    )
    assert asr_worker._words_in_lm(str(wrong_count)) is None
    right = tmp_path / "right.lm.bin"
    right.write_bytes(
        b"Trie Language Model" + bytes([1]) + struct.pack("<I", 2) + struct.pack("<i", 4) + words
    )
    assert asr_worker._words_in_lm(str(right)) == {b"a", b"b"}


@pytest.mark.slow
def test_the_decoder_with_lm_words_only_hears_what_the_full_dictionary_hears() -> None:
    configure_caches(enabled=False)
    try:
        texts = [
            ("Thank you for calling First Bank, this is Alex.", "alloy"),
            ("I lost my gold card and I need a replacement, please.", "coral"),
            ("Your replacement card has been ordered and will arrive in five days.", "ash"),
            ("Yes.", "shimmer"),
        ]
        utterances = [b"".join(get_tts().synthesize(t, voice=v, speed=1.0)) for t, v in texts]
    finally:
        configure_caches()
    import soxr

    smaller, full = asr_worker.new_decoder(), _full_dictionary_decoder()
    heard = []
    for pcm in utterances:
        audio = float_to_pcm16(
            soxr.resample(pcm16_to_float(pcm), SAMPLE_RATE_HZ, asr_worker.ASR_RATE_HZ)
        )
        heard.append(asr_worker.decode(smaller, audio))
        assert heard[-1] == asr_worker.decode(full, audio)
    assert "replacement" in heard[1]
