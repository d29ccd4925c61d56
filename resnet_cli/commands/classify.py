"""classify: inputs → records → a sink (stdout, a file, a shard folder), resumable; Ctrl-C and
SIGTERM end it with every record whole."""

from __future__ import annotations

import contextlib
import itertools
import sys
import time

from .. import engines
from ..config import resolve
from ..console import records_only_stdout, stderr_line
from ..errors import ExitStatus, user_file
from ..inputs.datasets import dataset_of
from ..inputs.fetch import abort_downloads
from ..model.spec import architecture
from ..outputs.destination import Destination, settle
from ..outputs.report import Report
from ..outputs.resume import drop_errors, recorded_paths
from ..outputs.settings import describe
from ..plan import make_plan
from ..progress import progress_display
from ..request import EngineOptions, InputOptions, ModelRequest, OutputOptions
from ..signals import graceful_stop
from .stream import count_in_background, counted, normalized, skipper, sources


def classify(request: ModelRequest, inputs: InputOptions, asked: EngineOptions, output: OutputOptions) -> ExitStatus:
    return write_records(request, inputs, asked, output)


def write_records(
    request: ModelRequest,
    inputs: InputOptions,
    asked: EngineOptions,
    output: OutputOptions,
    features: bool = False,
    normalize: bool = False,
) -> ExitStatus:
    """The inputs' records into the output. ``features``: pooled feature vectors instead of
    classes (``embed -o vectors.parquet``; ``normalize``: L2-normalised), with every promise
    about the output the same."""
    destination = settle(output.output, output.format, output.resume, output.overwrite)
    completed = False
    try:
        report = _classify(request, inputs, asked, output, destination, features, normalize)
        completed = not report.interrupted
    finally:
        note = destination.finish(completed)
    if note:
        stderr_line(note)
    return report.exit_status


def _classify(
    request: ModelRequest,
    inputs: InputOptions,
    asked: EngineOptions,
    output: OutputOptions,
    destination: Destination,
    features: bool = False,
    normalize: bool = False,
) -> Report:
    report = Report(verb="embedded" if features else "classified")
    config = resolve(
        request, include_top=not features, pooling="avg" if features else None, local=asked.engine != "ray"
    )
    report.settings = describe(config, None, normalize) if features else describe(config, output.top_k)
    destination.adopt(report.settings)  # --resume on records made otherwise: exit 2
    report.model = f"{architecture(config.model).title}, {len(config.labels)} classes" + (
        f" of the head {config.head.path}" if config.head else " (ImageNet)"
    )
    done = None
    if destination.resume:
        with user_file(destination.output):
            if output.retry_errors:
                report.retried = drop_errors(destination.output, destination.format, destination.shard_folder)
            # The Ray engine's workers read a shard whole: they skip its members by this grouping.
            group = dataset_of if asked.engine == "ray" else None
            done = recorded_paths(destination.output, destination.format, destination.shard_folder, group)
    if done is not None:
        report.resumed = len(done)
    # A table on a terminal shows the error in its row; anywhere else stdout may be a file or
    # jq, so the terminal gets each error line on stderr.
    echo_errors = destination.format != "table" or destination.output is not None or not sys.stdout.isatty()
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(graceful_stop(on_force=abort_downloads))
        # Ray and its workers print (to fd 1) from threads and native code: keep stdout for records.
        ray_to_stdout = asked.engine == "ray" and destination.output is None
        records_stdout = stack.enter_context(records_only_stdout()) if ray_to_stdout else None
        first, results = [], iter(())
        progress = stack.enter_context(progress_display(inputs, report.launched))  # from launch: start-up shows
        task = progress.add_task("classify", total=None, rate=0.0) if progress else None
        if progress:
            count_in_background(inputs, progress, task, skip=done)
        try:
            plan = make_plan(config, inputs, asked, top_k=output.top_k, thumbnails=destination.format == "html")
            engine = stack.enter_context(engines.open(plan))
            found = engine.records(sources(inputs, done, whole=plan.engine == "ray"), skipper(inputs, report))
            results = counted(engine, normalized(found) if normalize else found, report, echo_errors)
            stack.callback(results.close)
            first = [next(results)]  # opens the runtime: model errors surface before any output
        except StopIteration:
            pass
        except KeyboardInterrupt:  # before any record: the sink still writes a whole (empty) document
            report.interrupted = True
        sink = stack.enter_context(destination.open_sink(stdout=records_stdout, report=report))
        stop.writing = True
        try:
            for record in itertools.chain(first, results) if not report.interrupted else ():
                sink.write(record)
                if progress:
                    elapsed = max(1e-9, time.perf_counter() - report.started)
                    progress.update(task, advance=1, rate=report.classified / elapsed)
                if stop.requested:
                    report.interrupted = True
                    break
        except KeyboardInterrupt:
            report.interrupted = True
        report.terminated = stop.terminated
    if not inputs.quiet or report.interrupted:
        stderr_line(report.summary())
    return report
