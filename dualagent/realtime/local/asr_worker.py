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
"""

from __future__ import annotations

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


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    decoder = new_decoder()
    decode(decoder, bytes(ASR_RATE_HZ))  # warm (half a second of silence) before the first ask
    while (pcm := read_message(requests)) is not None:
        write_message(replies, decode(decoder, pcm).encode())


def main() -> None:
    # Replies own the pipe; anything else written to stdout (by Python or C) goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
