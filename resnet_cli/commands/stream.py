"""What every command that runs the model shares: the inputs (less what a resumed run has),
the engine that turns them into records, and the Report that counts them."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..config import ModelConfig, precision_shown
from ..console import stderr_line
from ..inputs.discover import discover
from ..records import Record
from ..request import InputOptions
from ..storage import is_uri

if TYPE_CHECKING:
    from ..outputs.pathset import PathSet
    from ..outputs.report import Report


def sources(inputs: InputOptions, skip: PathSet | None = None):
    """The inputs as Sources, lazily, without those ``skip`` holds."""
    found = discover(inputs.inputs, recursive=inputs.recursive, include_hidden=inputs.include_hidden, null=inputs.null)
    return skip.without(found, lambda source: source.path) if skip else found


def count_in_background(inputs: InputOptions, progress, task, skip: PathSet | None = None) -> None:
    """Folders make the total unknown up front; count them on the side for the ETA (without
    the inputs a resumed run skips)."""
    if "-" in inputs.inputs:
        return

    def count():
        total = sum(1 for _ in sources(inputs, skip))
        progress.update(task, total=total)

    threading.Thread(target=count, daemon=True, name="count").start()


def records(
    config: ModelConfig,
    inputs: InputOptions,
    report: Report,
    skip: PathSet | None = None,
    echo_errors=True,
    top_k=5,
    given=None,
    wrap_predict=None,
    thumbnails: bool = False,
) -> Iterator[Record]:
    """Open the runtime and stream records for the inputs (or the ``given`` sources), counted
    in ``report``. ``wrap_predict`` (local engine) changes what the runtime is asked per batch."""
    found = sources(inputs, skip) if given is None else iter(given)
    if inputs.engine == "ray":
        engine = _ray_records(config, inputs, report, found, top_k, thumbnails)
    else:
        engine = _local_records(config, inputs, report, found, top_k, wrap_predict, thumbnails)
    for record in engine:
        report.add(record)
        if record.error is not None and echo_errors:
            stderr_line(f"error: {record.path}: {record.error}")
        yield record


def _skipper(inputs: InputOptions, report: Report):
    """Counts a folder's non-image file as skipped; with --verbose, names it on stderr."""

    def skip(source) -> None:
        report.skip(source)
        if inputs.verbose:
            stderr_line(f"skipped: {source.path} (not an image)")

    return skip


def _peek_batch_size(found, batch_size: int):
    """A run over fewer inputs than a batch uses a batch that size: one photo, batch 1."""
    head = list(itertools.islice(found, batch_size + 1))
    size = max(1, min(batch_size, len(head)))
    return size, itertools.chain(head, found)


def _local_records(
    config: ModelConfig, inputs: InputOptions, report: Report, found, top_k: int, wrap_predict=None, thumbnails=False
):
    from ..engines.local import prediction_records, run, vector_records
    from ..runtimes.factory import open_runtime

    batch_size, found = _peek_batch_size(found, inputs.batch_for(config.device))
    runtime = open_runtime(config, batch_size=batch_size, quiet=inputs.quiet)
    reason = f"; {config.runtime_reason}" if config.runtime_reason else ""
    report.ran_on = f"{_device_name(config)} ({config.runtime} {precision_shown(config)}{reason})"
    report.started = time.perf_counter()
    to_records = prediction_records(top_k, config.labels) if config.include_top else vector_records
    predict = wrap_predict(runtime.predict) if wrap_predict else runtime.predict
    workers, skip = inputs.decode_workers(), _skipper(inputs, report)
    ahead = _decode_ahead(config, inputs)
    return run(
        found, predict, to_records, config.decode, batch_size, workers, skip, thumbnails=thumbnails, decode_ahead=ahead
    )


def _decode_ahead(config: ModelConfig, inputs: InputOptions) -> bool:
    """Decode ahead of the model, except on OpenVINO on the CPU with every core its own: its
    threads, with decoders beside them, became stragglers (4 interleaved runs each, int8 on 500×375
    JPEGs, medians: 114 img/s ahead, 130 in turns), while ONNX Runtime ran faster overlapped
    (70 against 61). Web reads, object stores and stdin's lists always decode ahead: they wait
    on the network."""
    if any(i == "-" or is_uri(i) for i in inputs.inputs):
        return True
    return config.runtime != "openvino" or 0 < config.threads < (os.cpu_count() or 1)


def _device_name(config: ModelConfig) -> str:
    """ "cpu", or the GPU's name where the keras runtime runs on one."""
    if config.device != "gpu":
        return "cpu"
    if config.runtime != "keras":
        return "gpu"
    from ..backend import gpu_name, import_keras

    return f"gpu {gpu_name(import_keras())}"


def _ray_records(config: ModelConfig, inputs: InputOptions, report: Report, found, top_k: int, thumbnails=False):
    from ..engines.ray_cluster import import_ray
    from ..engines.ray_pool import records as ray_records

    import_ray()  # "how to install" before anything else
    report.ran_on = f"Ray ({config.runtime} {precision_shown(config)}, device {config.device})"
    results = ray_records(config, inputs, found, top_k, on_skip=_skipper(inputs, report), thumbnails=thumbnails)
    for record in results:  # start-up ends with the first result (Ray, actors, their model)
        report.started = time.perf_counter()
        yield record
        break
    yield from results
