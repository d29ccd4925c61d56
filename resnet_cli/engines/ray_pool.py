"""The ray engine: the local engine's records, computed on a Ray cluster (Ray Core).

Plan: the driver lists the inputs (the project's own discovery: folders, ``-``, and URIs that
pyarrow.fs reads) a block at a time → a CPU task per block reads and decodes it with the
project's own decoder (so pixels and error messages are the local engine's) → one pool of model
actors, started once for the whole input, one runtime each → top-k rows back to the driver in
input order, which writes every record whole through the same sinks as the local engine. A tar
shard or a Parquet row group is one task: it reads the shard where it runs (one GET) and gives
back its decoded blocks with their paths, so the driver lists shards, never their photos.

Flat driver memory: the driver holds a bounded window of blocks in flight, whatever the input
count, and turns off Ray's per-task event records for these tasks (observability data the
driver buffers natively: ~70 MiB before it levels off, which the window alone cannot bound).

Exactly once: records are written only by the driver, in input order, from the window's
results. A decode task whose worker dies is retried by Ray; a model actor that dies is
restarted and its pending batches re-run; a driver that dies is picked up by ``--resume``.

Files are read in the decode tasks (pyarrow.fs for URIs), not by Ray's file readers, because
one unreadable file must become one error record, not fail the run.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ..config import ModelConfig
from ..errors import UserError
from ..inputs.datasets import row_groups
from ..inputs.fetch import STDIN
from ..inputs.source import Source, without_skips
from ..plan import RunPlan
from ..records import Record
from ..storage import is_uri
from .ray_cluster import Watchdog, connect, import_ray
from .ray_plan import ACTOR_MEMORY, DECODE_MEMORY, ROWS_PER_TASK, Plan, blocks_of, for_cluster
from .ray_worker import FAILED, SKIPPED, Predictor, WorkerSetupError, decode_unit, versions, worker_settings

# A batch that has killed its actor this many times more fails the run (a poison input must
# not restart actors for ever); the actor itself is restarted as often as it dies.
BATCH_RETRIES = 3


# Every task and actor call of the engine: no per-task event records in the driver (above).
QUIET_TASKS = {"enable_task_events": False}


def records(
    plan: RunPlan,
    sources: Iterable[Source],
    on_skip: Callable[[Source], None] = lambda source: None,
    predictor: type = Predictor,
) -> Iterator[Record]:
    """The ray engine's records for ``sources``, in input order (as ``engines.local.run``'s).
    The resolved config travels to the actors whole (absolute weights path and md5 included).
    The actors' batch is the plan's, unless the cluster's GPUs decide it (no -b given)."""
    connected_here = not import_ray().is_initialized()
    ray = connect(plan.ray_address, quiet=plan.quiet)
    try:
        config, cluster = for_cluster(ray, plan)
        with Watchdog(ray) as watchdog:
            yield from _records(
                ray, config, sources, cluster, plan.top_k, on_skip, predictor, watchdog, plan.thumbnails
            )
    finally:
        if connected_here:
            # Ray prints the errors it is told of (a killed actor's pending call, say) to
            # sys.stdout from a thread of its own: end it while the caller still keeps fd 1 off
            # the records' stdout, not at exit, when stdout is the records' again.
            ray.shutdown()


class RayEngine:
    """The plan's records computed on a Ray cluster: connected, sized and its actors started
    by each ``records`` call; ready (``started``) with its first result."""

    def __init__(self, plan: RunPlan):
        from ..config import precision_shown

        self.plan = plan
        config = plan.config
        self.ran_on = f"Ray ({config.runtime} {precision_shown(config)}, device {config.device})"
        self.started = 0.0

    def start(self, batch_size: int | None = None) -> None:
        """Nothing to open ahead: each ``records`` call connects and starts its actors."""

    def records(
        self, sources: Iterable[Source], on_skip: Callable[[Source], None] | None = None, top_k: int | None = None
    ) -> Iterator[Record]:
        import time

        import_ray()  # "how to install" before anything else
        plan = dataclasses.replace(self.plan, top_k=top_k) if top_k else self.plan
        on_skip = on_skip or (lambda source: None)
        results = records(plan, without_skips(sources, on_skip), on_skip)
        for record in results:  # start-up ends with the first result (Ray, actors, their model)
            self.started = time.perf_counter()
            yield record
            break
        yield from results

    def close(self) -> None:
        pass

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _records(
    ray, config: ModelConfig, sources, plan: Plan, top_k: int, on_skip, predictor: type, watchdog: Watchdog, thumbnails
) -> Iterator[Record]:
    """One actor pool for the whole input, a window of blocks in flight (``ActorPool``):
    records keep the input order and the driver holds ``plan.window`` blocks, whatever the
    input count. A tar shard or Parquet row group is one task that reads it where it runs."""
    from ..model.imagenet import predictions

    pool = ActorPool(ray, _start_actors(ray, config, plan, top_k, predictor))
    decode = ray.remote(decode_unit).options(
        num_cpus=1, memory=DECODE_MEMORY, _generator_backpressure_num_objects=ActorPool.QUEUE, **QUIET_TASKS
    )

    def oldest_records() -> Iterator[Record]:
        oldest = pool.next_scored()
        if oldest is None:
            return
        unit, scored = oldest
        watchdog.beat()
        block = unit.sources
        if block is None:  # a dataset's block: its paths came with it
            for path in scored["skipped"]:
                on_skip(Source(path, explicit=False))
            block = [Source(path, explicit=False) for path in scored["path"]]
        outcomes = (
            predictions(scored["index"], scored["score"], config.labels) if config.include_top else scored["vector"]
        )
        pictures = scored.get("thumbnail") or [None] * len(block)
        for source, status, error, outcome, picture in zip(
            block, scored["status"], scored["error"], outcomes, pictures
        ):
            if unit.done is not None and source.path in unit.done:
                continue  # a keyed Parquet row a resumed run has (its worker could not tell)
            if status == SKIPPED:
                on_skip(Source(source.path, explicit=False))
            elif status == FAILED:
                yield Record(source.path, error=error)
            elif config.include_top:
                yield Record(source.path, predictions=outcome, thumbnail=picture)
            else:
                yield Record(source.path, vector=outcome)

    def units(sources) -> Iterator[tuple[list[Source] | None, dict, object]]:
        for block in blocks_of(sources, plan):
            if isinstance(block, Source):
                yield from ((None, {"part": part}, block.done) for part in _parts(block, plan))
                continue
            # Workers may run in another folder (or on another node with the same mounts): they
            # read absolute paths, while records keep the path as the user gave it, as locally.
            rows = {
                "location": [_absolute(s.path) for s in block],
                "explicit": [s.explicit for s in block],
                "known_error": [_known_error(s) for s in block],
                "data": [s.data for s in block],  # bytes in memory (the Python API's inputs)
            }
            yield block, rows, None

    try:
        for block, unit, done in units(sources):
            pool.add(block, decode.remote(unit, config.decode, thumbnails), done)
            while len(pool) >= plan.window:
                yield from oldest_records()
        while len(pool):
            yield from oldest_records()
    finally:
        pool.kill()


def _parts(dataset: Source, plan: Plan) -> Iterator[dict]:
    """A tar shard whole, a Parquet file a row group at a time (its footer read here), each
    with the members of it a resumed run has recorded."""
    location = _absolute(dataset.path)
    done = dataset.done.members(dataset.path) if dataset.done is not None else frozenset()
    for row_group in row_groups(location) or [None]:
        yield {
            "location": location,
            "name": dataset.path,
            "columns": dataset.dataset,
            "timeout": 30.0,
            "row_group": row_group,
            "done": done,
            "rows": max(plan.batch_size, ROWS_PER_TASK),
        }


class ActorPool:
    """The model actors and the units in flight, oldest first: a decode task each (a Ray
    streaming generator: one block for a block of listed inputs, a block at a time for a
    dataset). Each decoded block goes, oldest first, to a ready actor with fewer than two blocks
    pending (one scored, one waiting), the least busy first: an actor still starting — or one the
    cluster cannot place yet (an autoscaler adding nodes) — holds no block, and a slow one holds
    at most two. A unit holds at most two decoded blocks not yet given back (the task waits for
    them: Ray's generator backpressure). Results leave oldest first."""

    QUEUE = 2

    def __init__(self, ray, actors: list):
        self.ray, self.actors = ray, actors
        self.starting = {actor.ready.remote(): index for index, actor in enumerate(actors)}
        self.ready: list[int] = []
        self.pending = [0] * len(actors)
        self.running: dict = {}  # result → actor, for results not yet seen finished
        self.units: collections.deque[_Unit] = collections.deque()  # oldest first

    def __len__(self) -> int:
        """Blocks in flight: a unit's decoded ones, or one for a unit still decoding its first."""
        return sum(max(len(unit.blocks), 0 if unit.finished else 1) for unit in self.units)

    def add(self, sources: list[Source] | None, generator, done=None) -> None:
        self.units.append(_Unit(sources, generator, done))
        self._pull()
        self._assign()

    def next_scored(self) -> tuple[_Unit, dict] | None:
        """The oldest block's unit and scores, waiting for them (and handing out blocks to
        actors as they become ready or free while it waits); None when the units still in
        flight end without another block (a task's end can be seen after its last block)."""
        while True:
            self._poll()
            self._pull()
            self._assign()
            if not self.units:
                return None
            head = self.units[0]
            if head.blocks and head.blocks[0].result is not None and head.blocks[0].result not in self.running:
                return head, _result(self.ray, head.blocks.popleft().result)
            decoding = [unit for unit in self.units if not unit.finished and len(unit.blocks) < self.QUEUE]
            waiting = [*self.starting, *self.running]
            for unit in decoding:
                waiting += [unit.generator, unit.generator.completed()]
            self.ray.wait(waiting, num_returns=1, timeout=1.0)

    def kill(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)

    def _poll(self) -> None:
        watched = [*self.starting, *self.running]
        if not watched:
            return
        done, _ = self.ray.wait(watched, num_returns=len(watched), timeout=0)
        for ref in done:
            if ref in self.starting:
                _result(self.ray, ref)  # an actor that cannot start ends the run, in one line
                self.ready.append(self.starting.pop(ref))
            else:
                self.pending[self.running.pop(ref)] -= 1

    def _pull(self) -> None:
        """Decoded blocks out of the units' tasks, up to two per unit; units done and given back
        leave."""
        for unit in self.units:
            while not unit.finished and len(unit.blocks) < self.QUEUE:
                if unit.generator.next_ready():  # at the stream's end too, at times: next() says which
                    decoded = next(unit.generator, None)
                    if decoded is None:
                        unit.finished = True
                    else:
                        unit.blocks.append(_InFlight(decoded))
                elif unit.generator.is_finished():
                    unit.finished = True
                else:
                    break
        while self.units and self.units[0].finished and not self.units[0].blocks:
            self.units.popleft()

    def _assign(self) -> None:
        for unit in self.units:
            for block in unit.blocks:
                if block.result is not None:
                    continue
                free = [index for index in self.ready if self.pending[index] < self.QUEUE]
                if not free:
                    return
                index = min(free, key=self.pending.__getitem__)
                block.result = self.actors[index].score.remote(block.decoded)
                self.running[block.result] = index
                self.pending[index] += 1


@dataclass
class _InFlight:
    """One decoded block (a ref to it), and the actor call scoring it once the pool has given it
    to an actor."""

    decoded: object
    result: object = None


@dataclass
class _Unit:
    """One decode task in flight: the sources it decodes (kept on the driver; None for a
    dataset, whose blocks name their own), its generator, its decoded blocks not yet given back,
    and a resumed run's recorded paths (a dataset's)."""

    sources: list[Source] | None
    generator: object
    done: object = None
    blocks: collections.deque = dataclasses.field(default_factory=collections.deque)
    finished: bool = False


def _start_actors(ray, config: ModelConfig, plan: Plan, top_k: int, predictor: type) -> list:
    """The model actors, started at once (they load while the first blocks decode). They get
    the driver's settings (``worker_settings``) and check them on arrival. One that dies is
    restarted and its pending batches re-run; a batch that kills it BATCH_RETRIES more times
    fails the run."""
    settings = worker_settings()
    actor_class = ray.remote(predictor).options(
        num_cpus=plan.cpus_per_actor,
        num_gpus=plan.gpus_per_actor,
        memory=ACTOR_MEMORY,
        runtime_env={"env_vars": settings},
        max_restarts=-1,
        max_task_retries=BATCH_RETRIES,
        **QUIET_TASKS,
    )
    arguments = {
        "config": dataclasses.replace(config, threads=plan.threads),
        "batch_size": plan.batch_size,
        "top_k": top_k,
        "settings": settings,
        "driver_versions": versions(),
    }
    return [actor_class.remote(**arguments) for _ in range(plan.actors)]


def _known_error(source: Source) -> str | None:
    if source.path == STDIN and source.error is None:  # its bytes are in this process only
        return "image bytes on stdin are read by the local engine (--engine local)"
    return source.error


def _absolute(path: str) -> str:
    return path if is_uri(path) else os.path.abspath(path)


def _result(ray, result) -> dict:
    """One block's scores; a failure Ray gave up on is one line naming its cause."""
    try:
        return ray.get(result)
    except ray.exceptions.RayError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        last = lines[-1] if lines else type(error).__name__
        setup = re.match(rf"(?:[\w.]+\.)?{WorkerSetupError.__name__}: (.*)", last)
        raise UserError(setup.group(1) if setup else f"the ray engine failed: {last}") from None
