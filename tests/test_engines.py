"""The speech engines themselves: same input, same output, whatever came before or where."""

import asyncio
import contextlib
import threading
import time

import numpy as np
import pytest

from dualagent.realtime.local import engines
from dualagent.realtime.local.engines import PocketSphinxASR, engine_pool, get_tts

TIMEOUT_S = 60
REPLACEMENT = (
    "Your replacement card has been ordered and will arrive in five to seven business days "
    "at 12 Oak Street,"
)


def speech(text: str, voice: str) -> bytes:
    return b"".join(get_tts().synthesize(text, voice=voice, speed=1.0))


def cut(audio: bytes, fraction: float) -> bytes:
    """The start of an utterance, cut off mid-word as a barge-in does."""
    return audio[: int(len(audio) * fraction) // 2 * 2]


@contextlib.contextmanager
def recogniser(processes: int):
    asr = PocketSphinxASR(processes=processes)
    try:
        yield asr
    finally:
        asr.close()


@pytest.mark.slow
@pytest.mark.parametrize("processes", [0, 1], ids=["in-thread", "worker-process"])
def test_recognition_does_not_depend_on_the_utterance_before(processes: int) -> None:
    """Decoders are shared, so any utterance may come after any other."""
    target = cut(speech(REPLACEMENT, "ash"), 1 / 3)
    before = [
        cut(speech(REPLACEMENT, "alloy"), 1 / 3),
        cut(speech(REPLACEMENT, "ash"), 1 / 3),
        cut(speech("Thank you for calling First Bank, this is Alex.", "ash"), 1 / 3),
        speech("Yes, yes. go on, go on.", "ash"),
    ]
    with recogniser(processes) as fresh:
        heard_alone = fresh.transcribe(target)  # a new decoder
    assert "replacement" in heard_alone
    with recogniser(processes) as asr:
        for previous in before:
            asr.transcribe(previous)
            assert asr.transcribe(target) == heard_alone


@pytest.mark.slow
def test_worker_processes_hear_what_in_thread_decoding_hears() -> None:
    utterances = [
        speech("I lost my gold card yesterday and I need a replacement.", "ash"),
        speech("Can you confirm your full name and date of birth?", "coral"),
        cut(speech(REPLACEMENT, "coral"), 1 / 2),
    ]
    with recogniser(0) as in_thread, recogniser(2) as in_workers:
        assert [in_workers.transcribe(u) for u in utterances] == [
            in_thread.transcribe(u) for u in utterances
        ]
        assert len(in_workers._workers) >= 1 and not in_thread._workers


async def test_decoding_leaves_the_event_loop_free() -> None:
    """PocketSphinx holds the GIL while it decodes; in a worker process that costs the event
    loop nothing. (In a thread, the loop stood still for most of the decode.)"""
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 3000, 24_000 * 6).astype("<i2").tobytes()  # 6 s: a slow decode
    with recogniser(1) as asr:
        asr.warm_up()
        gaps: list[float] = []
        done = False

        async def tick() -> None:
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.005)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        ticker = asyncio.create_task(tick())
        started = time.perf_counter()
        await asyncio.get_running_loop().run_in_executor(engine_pool(), asr.transcribe, noise)
        decode_s = time.perf_counter() - started
        done = True
        await ticker
    assert max(gaps) < decode_s / 2, (max(gaps), decode_s)


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced_and_after_two_in_a_row_decoding_moves_in_thread(
    monkeypatch,
) -> None:
    hello = speech("Hello, I would like to order a new card.", "ash")
    with recogniser(1) as asr:
        expected = asr.transcribe(hello)
        [first] = asr._workers
        first.process.kill()
        first.process.wait()
        assert asr.transcribe(hello) == expected  # a new worker answered
        [second] = asr._workers
        assert second.process.pid != first.process.pid and asr.in_processes

        class Broken(engines._AsrProcess):  # every new worker dies before it answers
            def receive(self) -> str:
                self.process.kill()
                return super().receive()

        monkeypatch.setattr(engines, "_AsrProcess", Broken)
        second.process.kill()
        second.process.wait()
        assert asr.transcribe(hello) == expected  # decoded in this thread instead
        assert not asr.in_processes and not asr._workers


@pytest.mark.slow
def test_a_thread_waiting_for_a_worker_that_dies_gets_a_new_one() -> None:
    hello = speech("Hello, I would like to order a new card.", "ash")
    with recogniser(1) as asr:
        expected = asr.transcribe(hello)
        held = asr._acquire()  # the only worker is busy elsewhere
        result: dict[str, str] = {}
        waiting = threading.Thread(target=lambda: result.update(text=asr.transcribe(hello)))
        waiting.start()
        waiting.join(timeout=0.3)
        assert waiting.is_alive()  # it waits for the only worker
        asr._discard(held)  # which dies
        waiting.join(timeout=TIMEOUT_S)
        assert not waiting.is_alive() and result["text"] == expected


def test_the_engine_pool_starts_on_first_use_and_again_after_a_shutdown() -> None:
    pool = engine_pool()
    assert engine_pool() is pool
    assert pool.submit(lambda: 6 * 7).result(timeout=TIMEOUT_S) == 42
    engines.shutdown_engines()
    with pytest.raises(RuntimeError):  # queued speech work is not taken any more
        pool.submit(lambda: None)
    again = engine_pool()
    assert again is not pool
    assert again.submit(lambda: "ok").result(timeout=TIMEOUT_S) == "ok"
    assert engines.ENGINE_POOL is again  # the old module attribute still works, lazily
