"""The ray engine: the local engine's records, computed on a Ray cluster (Ray Core).

Plan: the driver lists the inputs (the project's own discovery: folders, ``-``, and URIs that
pyarrow.fs reads) a block at a time → a CPU task per block reads and decodes it with the
project's own decoder (so pixels and error messages are the local engine's) → one pool of model
actors, started once for the whole input, one runtime each → top-k rows back to the driver in
input order, which writes every record whole through the same sinks as the local engine.

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
from ..inputs.fetch import STDIN
from ..inputs.source import Source, without_skips
from ..plan import RunPlan, batch_size
from ..records import Record
from ..storage import is_uri
from .ray_cluster import Watchdog, connect, import_ray
from .ray_plan import ACTOR_MEMORY, DECODE_MEMORY, Plan, blocks_of, fit
from .ray_worker import FAILED, SKIPPED, Predictor, WorkerSetupError, decode_batch, versions, worker_settings

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
    config = plan.config
    connected_here = not import_ray().is_initialized()
    ray = connect(plan.ray_address, quiet=plan.quiet)
    try:
        node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
        gpus = 0 if config.device == "cpu" else int(ray.cluster_resources().get("GPU", 0))
        if config.device == "gpu" and not gpus:
            raise UserError("--device gpu: the Ray cluster has no GPUs.")
        config = dataclasses.replace(config, device="gpu" if gpus else "cpu")  # the cluster's, settled once
        batch = plan.batch_size if plan.batch_asked else batch_size(None, "gpu" if gpus else "cpu")
        cluster = Plan.for_cluster(node_cpus, batch, plan.ray_actors, config.threads, gpus)
        cluster = fit(cluster, ray.cluster_resources(), sum(node_cpus), asked=plan.ray_actors is not None)
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
    input count."""
    from ..model.imagenet import predictions

    pool = ActorPool(ray, _start_actors(ray, config, plan, top_k, predictor))
    decode = ray.remote(decode_batch).options(num_cpus=1, memory=DECODE_MEMORY, **QUIET_TASKS)

    def oldest_records() -> Iterator[Record]:
        block, scored = pool.next_scored()
        watchdog.beat()
        outcomes = (
            predictions(scored["index"], scored["score"], config.labels) if config.include_top else scored["vector"]
        )
        pictures = scored.get("thumbnail") or [None] * len(block)
        for source, status, error, outcome, picture in zip(
            block, scored["status"], scored["error"], outcomes, pictures
        ):
            if status == SKIPPED:
                on_skip(Source(source.path, explicit=False))
            elif status == FAILED:
                yield Record(source.path, error=error)
            elif config.include_top:
                yield Record(source.path, predictions=outcome, thumbnail=picture)
            else:
                yield Record(source.path, vector=outcome)

    try:
        for block in blocks_of(sources, plan):
            # Workers may run in another folder (or on another node with the same mounts): they
            # read absolute paths, while records keep the path as the user gave it, as locally.
            rows = {
                "location": [_absolute(s.path) for s in block],
                "explicit": [s.explicit for s in block],
                "known_error": [_known_error(s) for s in block],
                "data": [s.data for s in block],  # a shard's or a Parquet row's bytes, read by the driver
            }
            pool.add(block, decode.remote(rows, config.decode, thumbnails))
            if len(pool) >= plan.window:
                yield from oldest_records()
        while len(pool):
            yield from oldest_records()
    finally:
        pool.kill()


class ActorPool:
    """The model actors and the blocks in flight. Each block goes, oldest first, to a ready
    actor with fewer than two blocks pending (one scored, one waiting), the least busy first:
    an actor still starting — or one the cluster cannot place yet (an autoscaler adding nodes)
    — holds no block, and a slow one holds at most two. Results leave oldest first."""

    QUEUE = 2

    def __init__(self, ray, actors: list):
        self.ray, self.actors = ray, actors
        self.starting = {actor.ready.remote(): index for index, actor in enumerate(actors)}
        self.ready: list[int] = []
        self.pending = [0] * len(actors)
        self.running: dict = {}  # result → actor, for results not yet seen finished
        self.blocks: collections.deque[_InFlight] = collections.deque()  # oldest first

    def __len__(self) -> int:
        return len(self.blocks)

    def add(self, sources: list[Source], decoded) -> None:
        self.blocks.append(_InFlight(sources, decoded))
        self._assign()

    def next_scored(self) -> tuple[list[Source], dict]:
        """The oldest block's sources and scores, waiting for them (and handing out blocks to
        actors as they become ready or free while it waits)."""
        while True:
            self._poll()
            self._assign()
            oldest = self.blocks[0]
            if oldest.result is not None and oldest.result not in self.running:
                self.blocks.popleft()
                return oldest.sources, _result(self.ray, oldest.result)
            self.ray.wait([*self.starting, *self.running], num_returns=1)

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

    def _assign(self) -> None:
        for block in self.blocks:
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
    """One block in flight: its sources (kept on the driver), the decode task's output, and
    the actor call scoring it once the pool has given it to an actor."""

    sources: list[Source]
    decoded: object
    result: object = None


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
