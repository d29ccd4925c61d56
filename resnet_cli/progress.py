"""Progress on stderr: a rich bar on a terminal, a log line every LOG_INTERVAL seconds for
jobs whose stderr is a file, or nothing."""

from __future__ import annotations

import contextlib
import sys
import threading
import time

from .console import stderr_line
from .request import InputOptions

LOG_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal


class LogProgress:
    """Progress for jobs whose stderr is a log, not a terminal: a line every ``interval``
    seconds from launch — start-up included (a cluster's can take a minute) — with done/total,
    rate and ETA (the rich Progress calls classify makes)."""

    def __init__(self, launched: float):
        self.interval, self.launched, self.first = LOG_INTERVAL, launched, None
        self.done, self.total = 0, None
        self.ticking = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True, name="progress")

    def __enter__(self):
        self.ticker.start()
        return self

    def __exit__(self, *exc_info):
        self.ticking.set()
        self.ticker.join()  # a tick already under way lands before the summary, never after the run
        return None

    def add_task(self, *args, total=None, **fields):
        self.total = total
        return 0

    def update(self, task, advance: int = 0, total=None, **fields):
        if advance and self.first is None:
            self.first = time.perf_counter()
        self.done += advance
        self.total = total if total is not None else self.total

    def _tick(self) -> None:
        """A line at launch + 10 s, + 20 s, … (a late start skips the ticks already past)."""
        tick = int((time.perf_counter() - self.launched) // self.interval) + 1
        while not self.ticking.wait(max(0.0, self.launched + tick * self.interval - time.perf_counter())):
            stderr_line(self.line(time.perf_counter()))
            tick = max(tick + 1, int((time.perf_counter() - self.launched) // self.interval) + 1)

    def line(self, now: float) -> str:
        of = f"/{self.total}" if self.total else ""
        if self.first is None:
            return f"progress: 0{of} done, starting ({now - self.launched:.0f} s since launch)"
        rate = self.done / max(now - self.first, 1e-9)
        eta = f", ETA {(self.total - self.done) / rate:.0f} s" if self.total and rate > 0 else ""
        return f"progress: {self.done}{of} done, {rate:.1f} images/s{eta} ({now - self.launched:.0f} s since launch)"


def progress_display(inputs: InputOptions, launched: float):
    """auto: a rich bar on a terminal (transient: gone when done), else a log line every
    LOG_INTERVAL seconds; bar, log or none as asked."""
    mode = inputs.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "log"
    if inputs.quiet or mode == "none":
        return contextlib.nullcontext(None)
    if mode == "log":
        return LogProgress(launched)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("classifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} img/s"),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )
