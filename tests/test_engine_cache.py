"""The engine caches: a cached answer is the answer, byte for byte, and the bounds hold."""

from __future__ import annotations

import logging
import time
import types
from pathlib import Path

import pytest

import dualagent
from dualagent.call import bridge
from dualagent.realtime.local import engines
from dualagent.realtime.local.engine_cache import (
    EngineCache,
    cache_key,
    cache_stats,
    configure_caches,
)


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts with empty caches from the (cleared) environment, and leaves them so."""
    configure_caches()
    yield
    configure_caches()


# ------------------------------------------------------------------------------ the store


def test_the_memory_store_is_least_recently_used_and_bounded_in_bytes() -> None:
    key = [cache_key("k", i) for i in range(4)]
    entry = 1000 + len(key[0])  # a value's bytes plus its key's
    cache = EngineCache("tts", max_bytes=2 * entry)
    cache.put(key[0], b"a" * 1000)
    cache.put(key[1], b"b" * 1000)
    assert cache.get(key[0]) == b"a" * 1000  # key 0 is now the most recently used
    cache.put(key[2], b"c" * 1000)  # over the bound: key 1 goes
    assert cache.get(key[1]) is None
    assert cache.get(key[0]) == b"a" * 1000 and cache.get(key[2]) == b"c" * 1000
    cache.put(key[3], b"d" * 10_000)  # larger than the whole bound: not kept, nothing evicted
    assert cache.get(key[3]) is None
    stats = cache.stats()
    assert stats["bytes"] == 2 * entry <= stats["max_bytes"]
    assert (stats["hits"], stats["misses"], stats["evictions"]) == (3, 2, 1)
    assert stats["hit_rate"] == 0.6


def test_keys_differ_for_any_difference_in_their_parts() -> None:
    base = cache_key("piper", "v1", "Hello.", 1.0, 0.0)
    assert base == cache_key("piper", "v1", "Hello.", 1.0, 0.0)
    assert len({base, *(cache_key(*p) for p in _variants())}) == 1 + len(_variants())


def _variants() -> list[tuple[object, ...]]:
    return [
        ("piper", "v2", "Hello.", 1.0, 0.0),
        ("piper", "v1", "Hello!", 1.0, 0.0),
        ("piper", "v1", "Hello.", 1.1, 0.0),
        ("piper", "v1", "Hello.", 1.0, 0.667),
        ("piper", "v1", "Hello.", 1.0),
    ]


def test_the_disk_store_serves_another_process_and_ignores_a_damaged_file(
    tmp_path: Path, caplog
) -> None:
    key = cache_key("asr", "some audio")
    EngineCache("asr", 2**20, tmp_path).put(key, b"hello there")
    later = EngineCache("asr", 2**20, tmp_path)  # a new process: nothing in memory
    assert later.get(key) == b"hello there"
    assert later.stats()["disk_hits"] == 1
    [stored] = [p for p in (tmp_path / "asr").rglob("*") if p.is_file()]
    stored.write_bytes(stored.read_bytes()[:-1] + b"X")  # one byte damaged
    with caplog.at_level(logging.WARNING):
        assert EngineCache("asr", 2**20, tmp_path).get(key) is None  # a miss, not wrong text
    assert "damaged" in caplog.text


def test_an_unwritable_folder_leaves_the_memory_cache_working(tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    cache = EngineCache("tts", 2**20, blocked)
    with caplog.at_level(logging.WARNING):
        cache.put(cache_key("x"), b"pcm")
    assert cache.get(cache_key("x")) == b"pcm"
    assert "cannot write" in caplog.text and cache.folder is None


def test_caches_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DUALAGENT_ENGINE_CACHE_MB", "3")
    monkeypatch.setenv("DUALAGENT_ENGINE_CACHE_DIR", str(tmp_path))
    stats = configure_caches().stats()
    assert stats["enabled"] and stats["tts"]["max_bytes"] == 3 * 2**20
    assert stats["tts"]["folder"] == str(tmp_path / "tts")
    assert stats["asr"]["folder"] == str(tmp_path / "asr")
    monkeypatch.setenv("DUALAGENT_ENGINE_CACHE", "0")
    off = configure_caches().stats()
    assert not off["enabled"] and off["tts"]["max_bytes"] == 0 and off["tts"]["folder"] is None


# ------------------------------------------------------------------------------ the engines


def speech(text: str, voice: str = "coral", speed: float = 1.0) -> bytes:
    return b"".join(engines.get_tts().synthesize(text, voice=voice, speed=speed))


SENTENCES = "Your replacement card has been ordered. It will arrive in five to seven days."


def test_cached_speech_is_the_synthesized_speech_byte_for_byte(tmp_path: Path) -> None:
    configure_caches(enabled=False)
    uncached = speech(SENTENCES)
    configure_caches(enabled=True, folder=tmp_path)
    cold = speech(SENTENCES)
    warm = speech(SENTENCES)
    configure_caches(enabled=True, folder=tmp_path)  # memory empty: from the folder
    from_disk = speech(SENTENCES)
    assert uncached == cold == warm == from_disk
    tts = cache_stats()["tts"]
    assert tts["disk_hits"] == 2 and tts["misses"] == 0  # one entry per sentence
    # Another voice or speed is another entry, never the cached audio.
    assert speech(SENTENCES, voice="ash") != uncached
    assert speech(SENTENCES, speed=1.2) != uncached
    assert cache_stats()["tts"]["misses"] == 4


def test_varied_speech_is_never_cached(monkeypatch) -> None:
    monkeypatch.setenv("DUALAGENT_TTS_VARIATION", "1")
    speech("Hello there.")
    speech("Hello there.")
    tts = cache_stats()["tts"]
    assert tts["hits"] == tts["misses"] == tts["entries"] == 0


def test_cached_recognition_is_the_decoded_text(tmp_path: Path) -> None:
    audio = speech("I lost my gold card yesterday and I need a replacement.", voice="ash")
    configure_caches(enabled=False)
    uncached = engines.get_asr().transcribe(audio)
    configure_caches(enabled=True, folder=tmp_path)
    assert engines.get_asr().transcribe(audio) == uncached  # decoded, stored
    assert engines.get_asr().transcribe(audio) == uncached  # from memory
    assert "lost" in uncached
    # The key is the exact audio: one sample changed is another utterance.
    changed = audio[:1000] + bytes([audio[1000] ^ 1]) + audio[1001:]
    engines.get_asr().transcribe(changed)
    asr = cache_stats()["asr"]
    assert (asr["hits"], asr["misses"]) == (1, 2)


# ------------------------------------------------------------------------------ a whole call


@pytest.mark.slow
async def test_a_cached_call_is_the_same_call_byte_for_byte(
    local_server, tmp_path: Path, monkeypatch
) -> None:
    """Same seed with the caches off, on and cold, on and warm, and warm from a folder only:
    the same recorded audio, byte for byte, and the same transcript and tool calls.

    The bridge's clock is frozen so that each utterance starts where the last one ended: the
    measured engine latencies (which are all that differs between runs, and which the caches
    shorten) would otherwise move the audio on the timeline."""
    frozen = types.SimpleNamespace(
        perf_counter=lambda: 0.0, thread_time=time.thread_time, time=time.time
    )
    monkeypatch.setattr(bridge, "time", frozen)
    runs = {}
    for name, setup in [
        ("off", {"enabled": False}),
        ("cold", {"enabled": True, "folder": tmp_path / "cache"}),
        ("warm", None),
        ("disk", {"enabled": True, "folder": tmp_path / "cache"}),
    ]:
        if setup is not None:
            configure_caches(**setup)
        result = await dualagent.simulate(
            "hurried",
            seed=5,
            max_turns=8,
            output_dir=tmp_path,
            conversation_id=f"cache_{name}",
            local_server=local_server,
        )
        stats = cache_stats()
        audio = {f.name: f.read_bytes() for f in sorted(result.path.glob("*.wav"))}
        said = [(t["speaker"], t["text"], t["heard"], t["start_s"]) for t in result.turns]
        tools = [(c["name"], c["arguments"]) for c in result.function_calls]
        runs[name] = (audio, said, tools, stats, sum(t["interrupted"] for t in result.turns))
    reference = runs["off"][:3]
    assert len(reference[0]) == 3 and all(len(b) > 44 for b in reference[0].values())
    for name in ("cold", "warm", "disk"):
        assert runs[name][:3] == reference, name
    off, cold, warm, disk = (runs[n][3] for n in ("off", "cold", "warm", "disk"))
    assert runs["off"][4] > 0  # the caller cut in: a cut utterance is heard the same way too
    assert off["tts"]["hits"] == off["tts"]["entries"] == 0
    assert cold["tts"]["misses"] > 0 and cold["asr"]["misses"] > 0
    # Nothing new to recognise, nor to say, except what a faster agent got to synthesize
    # before a barge-in's cancel reached it (never heard nor recorded: see planned_text).
    cut = runs["off"][4]
    assert warm["asr"]["misses"] == cold["asr"]["misses"]
    assert warm["tts"]["hits"] > cold["tts"]["hits"]
    assert warm["tts"]["misses"] - cold["tts"]["misses"] <= cut
    assert disk["tts"]["disk_hits"] > 0 and disk["asr"]["disk_hits"] > 0
    assert disk["asr"]["misses"] == 0 and disk["tts"]["misses"] <= cut
