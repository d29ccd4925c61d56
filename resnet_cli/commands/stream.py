"""What every command that runs the model shares: the inputs (less what a resumed run has),
and the Report that counts the records an engine gives for them."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..console import stderr_line
from ..inputs.datasets import Columns, is_dataset
from ..inputs.discover import discover
from ..inputs.source import Source
from ..records import Record, path_display
from ..request import InputOptions

if TYPE_CHECKING:
    from ..engines import Engine
    from ..outputs.pathset import PathSet
    from ..outputs.report import Report


def sources(inputs: InputOptions, skip: PathSet | None = None, open_datasets: bool = True, whole: bool = False):
    """The inputs as Sources, lazily, without those ``skip`` holds; tar shards and Parquet
    files as their images (unless ``open_datasets`` is False), or ``whole``: each as one Source
    that the engine's workers read (with ``skip``, to leave out its members already recorded)."""
    columns = Columns(inputs.image_column, inputs.key_column)
    found = discover(
        inputs.inputs,
        recursive=inputs.recursive,
        include_hidden=inputs.include_hidden,
        null=inputs.null,
        columns=columns,
        open_datasets=open_datasets and not whole,
    )
    if whole:
        found = (
            Source(s.path, s.explicit, dataset=columns, done=skip) if s.error is None and is_dataset(s.path) else s
            for s in found
        )
    return skip.without(found, lambda source: source.path) if skip else found


def count_in_background(inputs: InputOptions, progress, task, skip: PathSet | None = None) -> None:
    """Folders make the total unknown up front; count them on the side for the ETA (without
    the inputs a resumed run skips)."""
    if "-" in inputs.inputs:
        return

    def count():
        total = 0
        for source in sources(inputs, skip, open_datasets=False):
            if is_dataset(source.path):
                return  # its images are counted only by reading it: the total stays unknown
            total += 1
        progress.update(task, total=total)

    threading.Thread(target=count, daemon=True, name="count").start()


def counted(engine: Engine, records: Iterator[Record], report: Report, echo_errors: bool = True) -> Iterator[Record]:
    """``records`` counted in ``report`` (each error also a line on stderr unless the output
    shows it), with the engine's device and start-up once it has them."""
    try:
        for record in records:
            report.ran_on, report.started = engine.ran_on, engine.started or report.started
            report.add(record)
            if record.error is not None and echo_errors:
                stderr_line(f"error: {path_display(record.path)}: {record.error}")
            yield record
    finally:
        report.ran_on, report.started = engine.ran_on or report.ran_on, engine.started or report.started


def skipper(inputs: InputOptions, report: Report):
    """Counts a folder's non-image file as skipped; with --verbose, names it on stderr."""

    def skip(source) -> None:
        report.skip(source)
        if inputs.verbose:
            stderr_line(f"skipped: {path_display(source.path)} (not an image)")

    return skip


def normalized(records: Iterator[Record]) -> Iterator[Record]:
    """Feature records with each vector scaled to unit length (L2)."""
    import numpy as np

    for record in records:
        if record.vector is not None:
            vector = np.asarray(record.vector, dtype=np.float32)
            record.vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
        yield record
