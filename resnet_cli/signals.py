"""Ctrl-C and SIGTERM while records are written: stop after the record in hand, so every
record already made is whole."""

from __future__ import annotations

import contextlib
import signal
import threading


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM. Once records flow, the first asks the run to stop after the
    record in hand (records stay whole, the summary is printed); a second one interrupts at
    once. Before the first record (the model loading, stdin still empty) it interrupts at once:
    nothing is half-written yet."""

    def __init__(self):
        self.requested = False
        self.terminated = False
        self.writing = False

    def __call__(self, signum, frame):
        self.terminated = self.terminated or signum == signal.SIGTERM
        if self.requested or not self.writing:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def graceful_stop():
    """A StopFlag as the SIGINT and SIGTERM handler meanwhile (in the main thread only)."""
    flag = StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
