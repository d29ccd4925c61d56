"""Dynamic batching: the images of concurrent requests gathered into the engine's batches.

Each image waits in one bounded queue; a batch takes what is queued (up to the batch size),
waiting at most ``max_wait`` for more — and, while both batches in flight are busy, what comes
until one is done — and runs ``engine.records`` in a thread: decoding and the model stay off
the event loop. Two batches are in flight, so one decodes while the other
is at the model (the engine gives the model to one at a time).
"""

from __future__ import annotations

import asyncio
import dataclasses
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..records import Record

if TYPE_CHECKING:
    from ..engines import Engine
    from ..inputs.discover import Source

IN_FLIGHT = 2


class QueueFull(Exception):
    """More images waiting than the queue holds: the client should come back later."""


@dataclasses.dataclass
class _Waiting:
    source: Source
    top_k: int
    answer: asyncio.Future


class Batcher:
    def __init__(self, engine: Engine, batch_size: int, max_wait: float, max_queue: int, on_batch=None):
        self.engine, self.batch_size, self.max_wait, self.max_queue = engine, batch_size, max_wait, max_queue
        self.on_batch = on_batch or (lambda size: None)  # the metrics' batch-size histogram
        self.waiting = 0  # images queued or in a batch not yet answered
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._threads = ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="batch")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._gather())

    async def stop(self) -> None:
        """After the server stopped taking requests and answered those in flight."""
        if self._task is not None:
            self._task.cancel()
        self._threads.shutdown(wait=True)

    async def records(self, sources: list[Source], top_k: int) -> list[Record]:
        """A record per source, in order; QueueFull (before any is queued) when they do not fit."""
        if self.waiting + len(sources) > self.max_queue:
            raise QueueFull
        loop = asyncio.get_running_loop()
        entries = [_Waiting(source, top_k, loop.create_future()) for source in sources]
        self.waiting += len(entries)
        for entry in entries:
            self._queue.put_nowait(entry)
        try:
            return list(await asyncio.gather(*(entry.answer for entry in entries)))
        finally:
            self.waiting -= len(entries)

    async def _gather(self) -> None:
        slots = asyncio.Semaphore(IN_FLIGHT)
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), left))
                except asyncio.TimeoutError:
                    break
            await slots.acquire()
            # What came while both batches in flight held their slots joins this one.
            while len(batch) < self.batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            loop.create_task(self._run(batch, slots))

    async def _run(self, batch: list[_Waiting], slots: asyncio.Semaphore) -> None:
        try:
            top_k = max(entry.top_k for entry in batch)
            self.on_batch(len(batch))
            records = await asyncio.get_running_loop().run_in_executor(
                self._threads, lambda: list(self.engine.records([entry.source for entry in batch], top_k=top_k))
            )
            for entry, record in zip(batch, records):
                if not entry.answer.done():
                    # ranked best first, ties by index: the first k of a top-K list are the top k
                    entry.answer.set_result(dataclasses.replace(record, predictions=record.predictions[: entry.top_k]))
        except Exception as error:  # noqa: BLE001 - a bug of ours: each waiting request answers 500
            for entry in batch:
                if not entry.answer.done():
                    entry.answer.set_exception(error)
        finally:
            slots.release()
