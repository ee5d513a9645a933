"""A batch's worker process: ``python -m dualagent.batch.worker`` (see :mod:`.processes`).

Reads calls (pickled ``simulate()`` keyword arguments, length-prefixed) on stdin, runs each on
its own embedded backend and answers with the call's figures on stdout, until end of input.
Ctrl-C and SIGTERM are ignored: the batch's process decides when to stop, and does so by
closing stdin (a worker whose batch process died also reads the end of its input, after its
call): a running call always finishes with a complete recording.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import sys

from dualagent.batch.processes import _HEADER, pack, run_call_here


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the whole group
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # so may a service manager's stop
    # The protocol owns the real stdout; anything printed by a call goes to stderr instead.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    # A text call makes ~100,000 short-lived objects: the collector's default pace (every 700
    # allocations, the imported modules scanned again and again) cost ~4 % of a call's CPU.
    gc.freeze()
    gc.set_threshold(20_000, 20, 100)
    while True:
        header = requests.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return 0
        (size,) = _HEADER.unpack(header)
        payload = requests.read(size)
        if len(payload) < size:
            return 0
        replies.write(pack(run_call_here(pickle.loads(payload))))
        replies.flush()


if __name__ == "__main__":
    sys.exit(main())
