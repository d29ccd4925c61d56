"""Ctrl-C and SIGTERM while records are written: stop after the record in hand, so every
record already made is whole — and within GRACE seconds whatever the run waits on."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable

GRACE = 1.5  # seconds the record in hand may take after the first Ctrl-C or SIGTERM


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM. Once records flow, the first asks the run to stop after the
    record in hand (records stay whole, the summary is printed); a second one interrupts at
    once, and so does the first after GRACE seconds if the record in hand has not come (a
    download that drips, a Ray call): ``on_force`` runs first (it ends the waits it knows of,
    downloads in progress). Before the first record (the model loading, a lock, stdin still
    empty) it interrupts at once: nothing is half-written yet."""

    def __init__(self, on_force: Callable[[], None] = lambda: None, grace: float = GRACE):
        self.requested = False
        self.terminated = False
        self.writing = False
        self.done = False
        self.on_force, self.grace = on_force, grace

    def __call__(self, signum, frame):
        self.terminated = self.terminated or signum == signal.SIGTERM
        if self.requested or not self.writing:
            self.requested = True
            self.on_force()
            raise KeyboardInterrupt
        self.requested = True
        timer = threading.Timer(self.grace, self._force)
        timer.daemon = True
        timer.start()

    def _force(self) -> None:
        """The record in hand did not come within the grace: interrupt the main thread (a real
        signal: it wakes a wait a flag would not)."""
        if not self.done:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


@contextlib.contextmanager
def graceful_stop(on_force: Callable[[], None] = lambda: None):
    """A StopFlag as the SIGINT and SIGTERM handler meanwhile (in the main thread only)."""
    flag = StopFlag(on_force)
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        flag.done = True
        for sig, handler in previous.items():
            signal.signal(sig, handler)
