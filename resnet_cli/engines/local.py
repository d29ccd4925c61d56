"""The local engine: sources → decoded uint8 batches → runtime → records, streaming with
bounded memory.

Decoding runs in a thread pool (Pillow releases the GIL): a few batches ahead of the model,
or in turns with it on every core (OpenVINO on the CPU: see plan.decode_ahead); at most three
batches of inputs are ever held.
Records come out in input order, one per source (skipped non-images give none).
"""

from __future__ import annotations

import itertools
import sys
import threading
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from ..inputs.decode import DecodeOptions, ImageError, NotAnImage, decode, decode_held, thumbnail
from ..inputs.source import Source, without_skips
from ..records import Record

if TYPE_CHECKING:
    from ..plan import RunPlan


class Skipped:
    """Marker for a folder entry that is not an image."""


def decode_source(source: Source, options: DecodeOptions):
    """A uint8 array, an ImageError (the record's reason) or Skipped. An exception of any
    other kind is a bug of ours, not a bad file: the run goes on, the record says "internal
    error", and the first such traceback is printed on stderr so it can be reported."""
    if source.error is not None:
        return ImageError(source.error)
    try:
        if source.data is not None:
            return decode_held(source.data, options, source.path, source.explicit)
        return decode(source.path, options, explicit=source.explicit)
    except NotAnImage:
        return Skipped
    except ImageError as error:
        return error
    except Exception as error:  # noqa: BLE001 - no file may crash a run
        _report_internal_error()
        return ImageError(
            f"internal error ({type(error).__name__}: {error}); please report it with the traceback above"
        )


_internal_error_reported = threading.Event()


def _report_internal_error() -> None:
    """Print the current traceback on stderr, once per process."""
    if not _internal_error_reported.is_set():
        _internal_error_reported.set()
        traceback.print_exc(file=sys.stderr)


def chunks(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def decoded_batches(
    sources: Iterable[Source], options: DecodeOptions, batch_size: int, workers: int, ahead: bool = True
) -> Iterator[tuple[list[Source], list]]:
    """(sources, decoded) per chunk of ``batch_size`` inputs, decoded in threads.

    ``ahead``: the next two chunks decode while the consumer works on this one (at most three
    chunks held) — what a GPU, spare cores or slow (web) reads need. Without it each chunk
    decodes, on every worker, only once the consumer asks for it: for an engine whose threads
    fill every core and wait for each other, decoders beside them make stragglers of them;
    in turns the bound is 1 / (1 + decode time × bare rate / cores).
    Each decoded entry is a uint8 array, an ``ImageError`` or ``Skipped``.
    """
    source_chunks = chunks(sources, batch_size)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
        pending: deque = deque()

        def submit_next() -> None:
            chunk = next(source_chunks, None)
            if chunk is not None:
                pending.append((chunk, [pool.submit(decode_source, s, options) for s in chunk]))

        for _ in range(3 if ahead else 1):
            submit_next()
        try:
            while pending:
                chunk, futures = pending.popleft()
                if ahead:
                    submit_next()
                decoded = [f.result() for f in futures]
                yield chunk, decoded
                if not ahead:
                    submit_next()
        finally:
            for _, futures in pending:
                for future in futures:
                    future.cancel()


def run(
    sources: Iterable[Source],
    predict: Callable[[np.ndarray], np.ndarray],
    to_records: Callable[[list[Source], np.ndarray], list[Record]],
    options: DecodeOptions,
    batch_size: int,
    workers: int,
    on_skip: Callable[[Source], None] = lambda source: None,
    thumbnails: bool = False,
    decode_ahead: bool = True,
) -> Iterator[Record]:
    """The streaming loop shared by classify, embed and evaluate; ``thumbnails``: each record
    also carries a small JPEG of its pixels (for -f html); ``decode_ahead``: see
    ``decoded_batches``."""
    for chunk, decoded in decoded_batches(sources, options, batch_size, workers, decode_ahead):
        good = [i for i, d in enumerate(decoded) if isinstance(d, np.ndarray)]
        results = {}  # by position in the chunk: two inputs may share a path (in-memory ones do)
        if good:
            outputs = predict(np.stack([decoded[i] for i in good]))
            for i, record in zip(good, to_records([chunk[i] for i in good], outputs)):
                if thumbnails:
                    record.thumbnail = thumbnail(decoded[i])
                results[i] = record
        for i, (source, item) in enumerate(zip(chunk, decoded)):
            if item is Skipped:
                on_skip(source)
            elif isinstance(item, ImageError):
                yield Record(source.path, error=str(item))
            else:
                yield results[i]


def prediction_records(top_k: int, labels=None) -> Callable[[list[Source], np.ndarray], list[Record]]:
    """Scores → records of the ``top_k`` best classes; ``labels``: (wnid, label) per class."""
    from ..model.imagenet import decode_top_k

    def to_records(sources: list[Source], probabilities: np.ndarray) -> list[Record]:
        return [Record(s.path, predictions=p) for s, p in zip(sources, decode_top_k(probabilities, top_k, labels))]

    return to_records


def vector_records(sources: list[Source], vectors: np.ndarray) -> list[Record]:
    return [Record(s.path, vector=v) for s, v in zip(sources, vectors)]


class LocalEngine:
    """The plan's runtime in this process, opened at the first ``records`` call (or by
    ``start``): a run over fewer inputs than a batch opens it at that batch (one photo: batch
    1), later calls reuse it. Thread-safe: calls from several threads decode side by side and
    take turns at the model (one runtime, its threads already fill the cores)."""

    def __init__(self, plan: RunPlan):
        self.plan = plan
        self.runtime = None
        self.ran_on = ""
        self.started = 0.0
        self._model_turn = threading.Lock()

    def start(self, batch_size: int | None = None) -> None:
        """Open the runtime now, at ``batch_size`` (default: the plan's), unless it is open."""
        with self._model_turn:
            if self.runtime is None:
                self._open(batch_size or self.plan.batch_size)

    def records(
        self, sources: Iterable[Source], on_skip: Callable[[Source], None] | None = None, top_k: int | None = None
    ) -> Iterator[Record]:
        plan, config = self.plan, self.plan.config
        on_skip = on_skip or (lambda source: None)
        sources = without_skips(sources, on_skip)
        if self.runtime is None:
            head = list(itertools.islice(sources, plan.batch_size + 1))
            sources = itertools.chain(head, sources)
            self.start(plan.batch_size if plan.variable_batch else max(1, min(plan.batch_size, len(head))))
        to_records = prediction_records(top_k or plan.top_k, config.labels) if config.include_top else vector_records
        predict = plan.per_batch(self._predict) if plan.per_batch else self._predict
        yield from run(
            sources,
            predict,
            to_records,
            config.decode,
            self.runtime.batch_size,
            plan.decode_workers,
            on_skip,
            thumbnails=plan.thumbnails,
            decode_ahead=plan.decode_ahead,
        )

    def _predict(self, images: np.ndarray) -> np.ndarray:
        with self._model_turn:
            return self.runtime.predict(images)

    def _open(self, batch_size: int) -> None:
        import time

        from ..config import precision_shown
        from ..runtimes.factory import open_runtime

        config = self.plan.config
        runtime = open_runtime(config, batch_size=batch_size, quiet=self.plan.quiet)
        runtime.pad = not self.plan.variable_batch
        reason = f"; {config.runtime_reason}" if config.runtime_reason else ""
        self.ran_on = f"{_device_name(config)} ({config.runtime} {precision_shown(config)}{reason})"
        self.started = time.perf_counter()
        self.runtime = runtime

    def close(self) -> None:
        self.runtime = None

    def __enter__(self) -> LocalEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _device_name(config) -> str:
    """ "cpu", or the GPU's name where the keras runtime runs on one."""
    if config.device != "gpu":
        return "cpu"
    if config.runtime != "keras":
        return "gpu"
    from ..backend import gpu_name, import_keras

    return f"gpu {gpu_name(import_keras())}"
