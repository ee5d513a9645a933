"""PocketSphinx decoding, in a process of its own: ``python -P path/to/asr_worker.py [R,W ...]``.

PocketSphinx keeps the GIL for the whole of an utterance's decoding (about a tenth of a second
per second of speech, more for noise). Run in a thread, it would freeze the event loop that
routes every call's audio for that long. The embedded server therefore decodes in worker
processes that speak this protocol on stdin/stdout, one request at a time:

    request:  4-byte big-endian length, then that many bytes of 16 kHz mono PCM16
    reply:    4-byte big-endian length, then the hypothesis as UTF-8

End of input ends the process. Run as a script it imports nothing but pocketsphinx, so a worker
starts in a fraction of a second; :func:`decode` is also what in-thread decoding uses, so both
give the same text for the same audio.

**Copies.** Each argument ``R,W`` names two pipe ends the parent made for one more worker. A
request whose length field has its top bit set (``FORK | k``, no payload) asks this process to
fork a copy of itself that serves the ``k``-th of those pipes (requests from ``R``, replies on
``W``); the reply is the copy's process id. A copy shares the loaded model's pages with this
process (they are only read), so N workers cost one model and N working sets, not N models.
The fork is safe: this process has no threads, and it forks only between two requests.
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
FORK = 0x8000_0000  # a request header with this bit: fork a copy (the low bits: which pipes)
_HEADER = struct.Struct(">I")


def new_decoder() -> Any:
    """A PocketSphinx decoder with the en-US model its wheel ships.

    It loads only the dictionary entries of words its language model knows
    (:func:`_dictionary_of_lm_words`): ~11 MB less per decoder, same hypotheses.
    """
    from pocketsphinx import Decoder

    fd = _dictionary_of_lm_words()
    try:
        extra = {} if fd is None else {"dict": f"/proc/self/fd/{fd}"}
        return Decoder(**DECODER_SETTINGS, **extra, loglevel="FATAL")
    finally:
        if fd is not None:
            os.close(fd)


_TRIE_MAGIC = b"Trie Language Model"


def _words_in_lm(path: str) -> set[bytes] | None:
    """The vocabulary of a binary (trie) language model; None if the file is not one.

    Such a file ends with its words: a little-endian int32 byte count, then that many bytes
    of NUL-terminated words, one per unigram (the header's first count).
    """
    with open(path, "rb") as lm:
        header = lm.read(len(_TRIE_MAGIC) + 5)
        if len(header) < len(_TRIE_MAGIC) + 5 or not header.startswith(_TRIE_MAGIC):
            return None
        (n_words,) = struct.unpack_from("<I", header, len(_TRIE_MAGIC) + 1)
        size = lm.seek(0, os.SEEK_END)
        tail_size = min(size, 64 * (n_words + 1) + 4)
        lm.seek(size - tail_size)
        tail = lm.read(tail_size)
    words = tail.split(b"\0")
    if n_words == 0 or words[-1] != b"" or len(words) < n_words + 1:
        return None
    words = words[-n_words - 1 : -1]
    length = sum(len(word) + 1 for word in words)
    if length + 4 > len(tail):
        return None
    (stored,) = struct.unpack_from("<i", tail, len(tail) - length - 4)
    return set(words) if stored == length else None


def _dictionary_of_lm_words() -> int | None:
    """A file descriptor of a copy of the default dictionary holding only the words the
    default language model knows; None (use the full dictionary) if that cannot be made.

    PocketSphinx's n-gram search leaves out every dictionary word that is not in the language
    model (from its search tree, its flat pass and its lattice), so those entries only take
    memory: about 55,000 of the en-US dictionary's 135,000 entries, 13 MB. The entries
    kept stay in their order, so the search sees the same words in the same order and hears
    the same text. The copy is a memfd, only in memory (the caller closes it once loaded).
    """
    try:
        from pocketsphinx import Config

        config = Config(**DECODER_SETTINGS)
        dictionary, lm_path = config["dict"], config["lm"]
        vocabulary = _words_in_lm(lm_path) if dictionary and lm_path else None
        if vocabulary is None:
            return None
        with open(dictionary, "rb") as source:
            kept = [line for line in source if _entry_word(line) in vocabulary]
        fd = os.memfd_create("dualagent-asr-dict")
    except (OSError, AttributeError, KeyError, ValueError, struct.error):
        return None
    try:
        with open(fd, "wb", closefd=False) as copy:
            copy.writelines(kept)
    except OSError:
        os.close(fd)
        return None
    return fd


def _entry_word(line: bytes) -> bytes:
    """The word a dictionary line is for (``read(2)`` is a second way to say ``read``)."""
    word = line.split(None, 1)[0] if line.strip() else b""
    return word.split(b"(", 1)[0] if word.endswith(b")") else word


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


def write_fork_request(stream: BinaryIO, index: int) -> None:
    stream.write(_HEADER.pack(FORK | index))
    stream.flush()


def read_request(stream: BinaryIO) -> bytes | int | None:
    """One request: audio (bytes), a fork request (the pipes' index), or None at end of input."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    if size & FORK:
        return size & ~FORK
    payload = stream.read(size)
    if len(payload) < size:
        return None
    return payload


def read_message(stream: BinaryIO) -> bytes | None:
    """One length-prefixed message, or None at end of input."""
    message = read_request(stream)
    return message if isinstance(message, bytes) else None


class _Server:
    """Answers requests on one pair of pipes; forks copies onto the others on request."""

    def __init__(
        self, requests: BinaryIO, replies: BinaryIO, decoder: Any, spare: dict[int, list[int]]
    ) -> None:
        self.requests, self.replies, self.decoder = requests, replies, decoder
        self.spare = spare  # pipes for copies not forked yet: index -> [request fd, reply fd]

    def serve(self) -> None:
        while (request := read_request(self.requests)) is not None:
            if isinstance(request, int):
                write_message(self.replies, str(self._fork(request)).encode())
            else:
                write_message(self.replies, decode(self.decoder, request).encode())

    def _fork(self, index: int) -> int:
        """Fork a copy serving the pipes ``index``; its pid (-1: no such pipes, or no fork)."""
        fds = self.spare.pop(index, None)
        if fds is None:
            return -1
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:  # the copy: only its own pipes stay open, so EOF means what it should
            try:
                for fd in [self.requests.fileno(), self.replies.fileno()] + [
                    fd for other in self.spare.values() for fd in other
                ]:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                import signal

                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                with os.fdopen(fds[0], "rb") as requests, os.fdopen(fds[1], "wb") as replies:
                    _Server(requests, replies, self.decoder, {}).serve()
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        return pid


def serve(requests: BinaryIO, replies: BinaryIO, decoder: Any = None) -> None:
    _Server(requests, replies, decoder if decoder is not None else new_decoder(), {}).serve()


def main() -> None:
    import signal

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # copies that end are reaped by the kernel
    spare = {i: [int(fd) for fd in arg.split(",")] for i, arg in enumerate(sys.argv[1:])}
    # Replies own the pipe; anything else written to stdout (by Python or C) goes to stderr.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    decoder = new_decoder()
    decode(decoder, bytes(ASR_RATE_HZ))  # warm (half a second of silence) before the first ask
    _Server(sys.stdin.buffer, replies, decoder, spare).serve()


if __name__ == "__main__":
    main()
