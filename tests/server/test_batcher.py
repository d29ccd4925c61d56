"""The dynamic batcher on its own: concurrent requests share batches, the queue is bounded,
each request gets its own top-k, in order; a failing engine fails the requests it held."""

import asyncio

import pytest

from resnet_cli.inputs.discover import Source
from resnet_cli.records import Prediction, Record
from resnet_cli.server.batcher import Batcher, QueueFull


class CountingEngine:
    """Records whose one score is the source's number; remembers each batch's size and top-k."""

    def __init__(self, fail: bool = False):
        self.batches, self.fail = [], fail

    def records(self, sources, on_skip=None, top_k=None):
        self.batches.append((len(sources), top_k))
        if self.fail:
            raise RuntimeError("the model broke")
        return [
            Record(s.path, predictions=[Prediction(r, r, None, s.path, float(r)) for r in range(1, top_k + 1)])
            for s in sources
        ]


def run(coroutine):
    return asyncio.run(coroutine)


def test_concurrent_requests_are_answered_from_shared_batches():
    engine = CountingEngine()

    async def main():
        batcher = Batcher(engine, batch_size=8, max_wait=0.05, max_queue=100)
        batcher.start()
        answers = await asyncio.gather(
            *(batcher.records([Source(f"{i}-{j}") for j in range(2)], top_k=1 + i % 3) for i in range(6))
        )
        await batcher.stop()
        return answers

    answers = run(main())
    for i, records in enumerate(answers):
        assert [r.path for r in records] == [f"{i}-0", f"{i}-1"]
        assert all(len(r.predictions) == 1 + i % 3 for r in records)  # each its own top-k
    assert sum(size for size, _ in engine.batches) == 12
    assert max(size for size, _ in engine.batches) == 8  # gathered up to the batch size
    assert engine.batches[0][1] == 3  # the batch ran at the largest top-k it held


def test_a_full_queue_refuses_before_queueing():
    engine = CountingEngine()

    async def main():
        batcher = Batcher(engine, batch_size=4, max_wait=0.2, max_queue=3)
        batcher.start()
        first = asyncio.ensure_future(batcher.records([Source("a"), Source("b")], top_k=1))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.records([Source("c"), Source("d")], top_k=1)
        fits = await batcher.records([Source("e")], top_k=1)
        done = await first
        await batcher.stop()
        return done, fits, batcher.waiting

    done, fits, waiting = run(main())
    assert [r.path for r in done] == ["a", "b"] and [r.path for r in fits] == ["e"]
    assert waiting == 0


def test_a_lone_request_waits_at_most_max_wait():
    engine = CountingEngine()

    async def main():
        batcher = Batcher(engine, batch_size=32, max_wait=0.01, max_queue=100)
        batcher.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.records([Source("alone")], top_k=1)
        took = loop.time() - started
        await batcher.stop()
        return took

    assert run(main()) < 1.0
    assert engine.batches == [(1, 1)]


def test_an_engine_failure_fails_its_requests_and_the_batcher_goes_on():
    engine = CountingEngine(fail=True)

    async def main():
        batcher = Batcher(engine, batch_size=4, max_wait=0.0, max_queue=10)
        batcher.start()
        with pytest.raises(RuntimeError, match="the model broke"):
            await batcher.records([Source("x")], top_k=1)
        engine.fail = False
        records = await batcher.records([Source("y")], top_k=1)
        await batcher.stop()
        return records

    assert [r.path for r in run(main())] == ["y"]


def test_requests_that_come_while_the_model_is_busy_join_the_waiting_batch():
    """Two batches hold the model; requests trickling in meanwhile (further apart than the
    wait) run together in the next batch once one is done, not one batch each."""
    import time

    class SlowEngine(CountingEngine):
        def records(self, sources, on_skip=None, top_k=None):
            time.sleep(0.6)
            return super().records(sources, on_skip, top_k)

    engine = SlowEngine()

    async def main():
        batcher = Batcher(engine, batch_size=8, max_wait=0.001, max_queue=100)
        batcher.start()
        busy = []
        for i in range(2):
            busy.append(asyncio.ensure_future(batcher.records([Source(f"busy{i}")], top_k=1)))
            await asyncio.sleep(0.05)
        later = []
        for i in range(5):
            later.append(asyncio.ensure_future(batcher.records([Source(f"later{i}")], top_k=1)))
            await asyncio.sleep(0.03)
        answers = await asyncio.gather(*busy, *later)
        await batcher.stop()
        return answers

    answers = run(main())
    assert [records[0].path for records in answers] == ["busy0", "busy1"] + [f"later{i}" for i in range(5)]
    assert [size for size, _ in engine.batches] == [1, 1, 5]
