"""PocketSphinx decoding, in a process of its own: ``python -P path/to/asr_worker.py``.

PocketSphinx keeps the GIL for the whole of an utterance's decoding (about a tenth of a second
per second of speech, more for noise). Run in a thread, it would freeze the event loop that
routes every call's audio for that long. The embedded server therefore decodes in worker
processes that speak this protocol on stdin/stdout, one request at a time:

    request:  4-byte big-endian length, then that many bytes of 16 kHz mono PCM16
    reply:    4-byte big-endian length, then the hypothesis as UTF-8

End of input ends the process. Run as a script it imports nothing but pocketsphinx, so a worker
starts in a fraction of a second; :func:`decode` is also what in-thread decoding uses, so both
give the same text for the same audio.

**Copies.** Each argument ``R,W,P`` names three pipe ends the parent made for one more worker:
once its model is loaded this process forks a copy per argument, which decodes requests from
``R``, replies on ``W`` and writes its process id (as text) to ``P``. A copy shares the model's
pages with this process (they are only read), so N workers cost one model and N working sets
instead of N models. The fork is safe: this process has no threads.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from typing import Any, BinaryIO

ASR_RATE_HZ = 16_000
# Everything we set on the decoder that changes what it hears (part of the cache key).
DECODER_SETTINGS: dict[str, Any] = {"samprate": ASR_RATE_HZ}
_HEADER = struct.Struct(">I")


def new_decoder() -> Any:
    """A PocketSphinx decoder with the en-US model its wheel ships."""
    from pocketsphinx import Decoder

    return Decoder(**DECODER_SETTINGS, loglevel="FATAL")


def decode(decoder: Any, pcm16_16k: bytes) -> str:
    """The words in one utterance of 16 kHz PCM16."""
    # The feature front end carries state from one utterance to the next (an utterance cut
    # off mid-word changes how the next one is heard), and which decoder gets which utterance
    # is down to scheduling. A fresh front end (0.1 ms) makes every result the one a new
    # decoder would give: the same audio is heard the same way.
    decoder.reinit_feat()
    decoder.start_utt()
    decoder.process_raw(pcm16_16k, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr.strip() if hypothesis is not None else ""


def write_message(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def read_message(stream: BinaryIO) -> bytes | None:
    """One length-prefixed message, or None at end of input."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def serve(requests: BinaryIO, replies: BinaryIO, decoder: Any = None) -> None:
    decoder = decoder if decoder is not None else new_decoder()
    while (pcm := read_message(requests)) is not None:
        write_message(replies, decode(decoder, pcm).encode())


def _fork_copies(copies: list[tuple[int, int, int]], own: list[int], decoder: Any) -> None:
    """Fork one serving copy per ``(request, reply, pid)`` fd triple; return in this process."""
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # copies that end are reaped by the kernel
    for index, (request, reply, pid_fd) in enumerate(copies):
        if os.fork() == 0:  # the copy: keep only its own pipes, so EOF means what it should
            # (the copies before this one had their fds closed here before this fork)
            for fd in own + [fd for later in copies[index + 1 :] for fd in later]:
                with contextlib.suppress(OSError):
                    os.close(fd)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            os.write(pid_fd, str(os.getpid()).encode())
            os.close(pid_fd)
            try:
                with os.fdopen(request, "rb") as requests, os.fdopen(reply, "wb") as replies:
                    serve(requests, replies, decoder)
            finally:
                os._exit(0)
        for fd in (request, reply, pid_fd):
            os.close(fd)


def main() -> None:
    copies = [tuple(int(fd) for fd in arg.split(",")) for arg in sys.argv[1:]]
    # Replies own the pipe; anything else written to stdout (by Python or C) goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    decoder = new_decoder()
    decode(decoder, bytes(ASR_RATE_HZ))  # warm (half a second of silence) before the first ask
    if copies:
        _fork_copies(copies, [0, replies.fileno()], decoder)  # type: ignore[arg-type]
    serve(sys.stdin.buffer, replies, decoder)


if __name__ == "__main__":
    main()
