"""The Report: counts what happened to a run's inputs, says it on stderr in one summary line,
and turns it into the ExitStatus (black's Report). Light: the CLI marks the launch with it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ExitStatus

if TYPE_CHECKING:
    from ..records import Record

_launched: list[float] = []


def mark_launch() -> None:
    """The CLI calls this first thing: the summary and the progress count from here, so a run's
    start-up (Ray, actors, the model) is in its time."""
    _launched[:] = [time.perf_counter()]


def launched_at() -> float:
    return _launched[0] if _launched else time.perf_counter()


@dataclass
class Report:
    """Counts what happened; says it on stderr; gives the exit code."""

    classified: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0
    retried: int = 0  # earlier error records dropped for their inputs to run again (--resume)
    settings: dict | None = None  # what the records are made with (outputs.settings), for a page
    interrupted: bool = False
    terminated: bool = False  # stopped by SIGTERM (a job scheduler), not by Ctrl-C
    launched: float = field(default_factory=lambda: launched_at())  # the process's start
    started: float = field(default_factory=time.perf_counter)  # the runtime's: engines set it when ready
    ran_on: str = ""  # the device and runtime that ran, for the summary line
    verb: str = "classified"  # what was done to each input: "embedded" for features
    model: str = ""  # the network and its classes, for the HTML report

    def add(self, record: Record) -> None:
        if record.ok:
            self.classified += 1
        else:
            self.failed += 1

    def skip(self, _source=None) -> None:
        self.skipped += 1

    @property
    def exit_status(self) -> ExitStatus:
        if self.terminated:
            return ExitStatus.TERMINATED
        if self.interrupted:
            return ExitStatus.INTERRUPTED
        if self.failed or (self.classified + self.resumed == 0):
            return ExitStatus.SOME_FAILED
        return ExitStatus.OK

    def summary(self) -> str:
        """Counts, the time since launch, the rate once the runtime was ready, the start-up."""
        now = time.perf_counter()
        seconds, startup = now - self.launched, max(0.0, self.started - self.launched)
        steady = now - self.started  # under a second (one Ray block, one batch): the whole run's rate
        rate = self.classified / (steady if steady >= 1.0 else max(seconds, 1e-9))
        parts = [f"{self.classified} {self.verb}", f"{self.failed} failed", f"{self.skipped} skipped"]
        if self.resumed:
            parts.append(f"{self.resumed} already done")
        if self.retried:
            parts.append(f"{self.retried} earlier errors retried")
        head = "terminated: " if self.terminated else "interrupted: " if self.interrupted else ""
        if self.classified + self.failed + self.resumed == 0 and not (self.interrupted or self.terminated):
            head = "no images found: "
        where = f" on {self.ran_on}" if self.ran_on else ""
        speed = f"{rate:.1f} images/s after start-up"
        return f"{head}{', '.join(parts)} in {seconds:.1f} s ({speed}){where}; start-up {startup:.1f} s"
