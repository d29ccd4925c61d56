"""classify: inputs → records → a sink (stdout, a file, a shard folder), resumable; Ctrl-C and
SIGTERM end it with every record whole."""

from __future__ import annotations

import contextlib
import itertools
import sys
import time

from ..config import resolve
from ..console import records_only_stdout, stderr_line
from ..errors import ExitStatus
from ..outputs.destination import open_sink, prepare_output
from ..outputs.report import Report
from ..outputs.resume import recorded_paths
from ..request import InputOptions, ModelRequest, OutputOptions
from .progress import progress_display
from .signals import graceful_stop
from .stream import count_in_background, records


def classify(request: ModelRequest, inputs: InputOptions, output: OutputOptions) -> ExitStatus:
    report = Report()
    if output.output:
        prepare_output(output.output)
    done = recorded_paths(output.output, output.format) if output.resume else None
    if done is not None:
        report.resumed = len(done)
    # A table on a terminal shows the error in its row; anywhere else stdout may be a file or
    # jq, so the terminal gets each error line on stderr.
    echo_errors = output.format != "table" or output.output is not None or not sys.stdout.isatty()
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(graceful_stop())
        # Ray and its workers print (to fd 1) from threads and native code: keep stdout for records.
        ray_to_stdout = inputs.engine == "ray" and output.output is None
        records_stdout = stack.enter_context(records_only_stdout()) if ray_to_stdout else None
        first, results = [], iter(())
        progress = stack.enter_context(progress_display(inputs, report.launched))  # from launch: start-up shows
        task = progress.add_task("classify", total=None, rate=0.0) if progress else None
        if progress:
            count_in_background(inputs, progress, task, skip=done)
        try:
            config = resolve(request, local=inputs.engine != "ray")
            results = records(config, inputs, report, skip=done, echo_errors=echo_errors, top_k=output.top_k)
            stack.callback(results.close)
            first = [next(results)]  # opens the runtime: model errors surface before any output
        except StopIteration:
            pass
        except KeyboardInterrupt:  # before any record: the sink still writes a whole (empty) document
            report.interrupted = True
        sink = stack.enter_context(
            open_sink(output.format, output.output, appending=output.resume, stdout=records_stdout)
        )
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
    return report.exit_status
