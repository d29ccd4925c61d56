"""What each subcommand does, given a resolved ``Options``; returns the exit code.

The CLI only parses into Options and calls these. User errors become one stderr line and an
exit code here, never a traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import threading
import time

from .images import discover
from .options import Options
from .output import EXIT_SOME_FAILED, Report, make_sink, recorded_paths, stderr_line


class UserError(Exception):
    """Something the user can fix; the message is printed as is (exit 1)."""


class _StopFlag:
    """First Ctrl-C asks the run to stop after the batch in hand (records stay whole);
    a second one interrupts at once."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def _graceful_sigint():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, flag)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(options: Options, total: int | None):
    """A rich progress bar on stderr when it is a terminal (transient: gone when done)."""
    show = options.progress if options.progress is not None else sys.stderr.isatty()
    if options.quiet or not show:
        return contextlib.nullcontext(None)
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


def _sources(options: Options, skip: set[str] = frozenset()):
    sources = discover(options.inputs, recursive=options.recursive, include_hidden=options.include_hidden)
    return (s for s in sources if s.path not in skip)


def _peek_batch_size(sources, batch_size: int):
    """A run over fewer inputs than a batch uses a batch that size: one photo, batch 1."""
    head = list(itertools.islice(sources, batch_size + 1))
    size = max(1, min(batch_size, len(head)))
    return size, itertools.chain(head, sources)


def _count_in_background(options: Options, progress, task) -> None:
    """Folders make the total unknown up front; count them on the side for the ETA."""
    if "-" in options.inputs:
        return

    def count():
        total = sum(1 for _ in _sources(options))
        progress.update(task, total=total)

    threading.Thread(target=count, daemon=True, name="count").start()


def classify(options: Options) -> int:
    from .pipeline import prediction_records, run
    from .runtimes.factory import open_runtime

    report = Report()
    done: set[str] = set()
    if options.resume:
        if not options.output:
            raise UserError("--resume needs --output FILE (the file to continue).")
        try:
            done = recorded_paths(options.output, options.format)
        except ValueError as error:
            raise UserError(str(error)) from None
        report.resumed = len(done)

    batch_size, sources = _peek_batch_size(_sources(options, done), options.batch_size)
    runtime = open_runtime(options, batch_size=batch_size)

    stream = (
        open(options.output, "a" if options.resume else "w", encoding="utf-8", newline="")
        if options.output
        else sys.stdout
    )
    sink = make_sink(options.format, stream, appending=options.resume and stream.tell() > 0)
    echo_errors = options.format != "table" or options.output is not None
    try:
        with _graceful_sigint() as stop, _progress(options, None) as progress:
            task = progress.add_task("classify", total=None, rate=0.0) if progress else None
            if progress:
                _count_in_background(options, progress, task)
            records = run(
                sources,
                runtime.predict,
                prediction_records(options.top_k),
                options.decode,
                batch_size,
                options.decode_workers(),
                on_skip=report.skip,
            )
            try:
                for record in records:
                    sink.write(record)
                    report.add(record)
                    if record.error is not None and echo_errors:
                        stderr_line(f"error: {record.path}: {record.error}")
                    if progress:
                        elapsed = max(1e-9, time.perf_counter() - report.started)
                        progress.update(task, advance=1, rate=report.classified / elapsed)
                    if stop.requested:
                        report.interrupted = True
                        break
            except KeyboardInterrupt:
                report.interrupted = True
            finally:
                records.close()
    finally:
        sink.close()
        if stream is not sys.stdout:
            stream.close()
    if not options.quiet or report.interrupted:
        stderr_line(report.summary())
    return report.exit_code


def summary(options: Options) -> int:
    """Print the model summary, as the original walkthrough did (no weights needed)."""
    from .runtimes.keras_runtime import import_keras

    import_keras(options.device)
    from .model import resnet50

    from .weights import DEFAULT

    model = resnet50(
        pool1_padding=options.pool1_padding or DEFAULT.pool1_padding,
        bn_epsilon=options.bn_epsilon or DEFAULT.bn_epsilon,
    )
    model.summary(print_fn=lambda line, **_: print(line))
    return 0


__all__ = ["UserError", "classify", "summary", "EXIT_SOME_FAILED"]
