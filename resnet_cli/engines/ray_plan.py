"""How a Ray run is spread over a cluster: the actor pool (size, CPUs and threads each, GPUs),
the window of blocks in flight, the block sizes, and a pool the cluster can place."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ..config import ModelConfig
from ..console import stderr_line
from ..errors import UsageProblem, UserError
from ..inputs.source import Source
from ..plan import RunPlan, batch_size
from .local import chunks

# Memory reserved per decode task (a block of camera photos in flight) and per model actor
# (weights, session, buffers; peak RSS measured 306-493 MiB). Ray schedules by them.
DECODE_MEMORY = 256 * 2**20
ACTOR_MEMORY = 1024 * 2**20
# Rows per block (one decode task, one actor call): a second or so of decoding, so the driver
# submits a few tasks per second per actor core.
ROWS_PER_TASK = 256


@dataclass(frozen=True)
class Plan:
    """How the work is spread: the actor pool (its size, the CPUs Ray reserves per actor, the
    inference threads each runs, GPUs), the batch, and the cluster's CPUs (the rest decode)."""

    batch_size: int
    actors: int = 1
    cpus_per_actor: float = 1
    threads: int = 1
    gpus_per_actor: int = 0
    cpus: float = 2

    @property
    def window(self) -> int:
        """Blocks in flight: two per actor (one scored, one decoded and waiting) and one per CPU
        left to decoding. It bounds what the driver and the object store hold."""
        return 2 * self.actors + max(1, int(self.cpus - self.actors * self.cpus_per_actor))

    def blocks(self, rows: int) -> int:
        """Blocks (one decode task each) for ``rows`` inputs read ahead: ROWS_PER_TASK rows each,
        or, when that would leave actors idle (a small input, its tail), four per actor of at
        least a batch."""
        big_blocks, batches = -(-rows // max(self.batch_size, ROWS_PER_TASK)), -(-rows // self.batch_size)
        return max(1, big_blocks, min(batches, 4 * self.actors))

    @classmethod
    def for_cluster(
        cls, node_cpus: list[int], batch_size: int, actors: int | None = None, threads: int = 0, gpus: int = 0
    ) -> Plan:
        """GPUs (when the run may use them): one actor per GPU, every CPU left to decoding.
        Big CPU nodes: actors of 4 CPUs (ONNX Runtime scales well to 4 threads, then flattens).
        Small nodes: one actor per node using every core, decode tasks in between (decoding
        is ~10 % of inference per photo). A fifth of the CPUs stays free for decoding."""
        largest, total = max(node_cpus, default=1), max(1, sum(node_cpus))
        if gpus:
            return cls(batch_size, actors or gpus, 1, threads or 1, 1, total)
        if largest >= 8:
            cpus_per_actor, default_threads = 4, 4
        else:
            cpus_per_actor, default_threads = max(1, largest - 1), largest
        if actors and actors * cpus_per_actor > total - 1:
            # Asked for more actors than fit beside one decoding CPU: each gets a share (Ray
            # takes fractions), so decode tasks still run; a full pool would wait for ever.
            cpus_per_actor = max(total - 1, total / 2) / actors
            default_threads = max(1, int(cpus_per_actor))
        most = actors or max(1, int(total * 0.8) // cpus_per_actor)
        return cls(batch_size, most, cpus_per_actor, threads or default_threads, 0, total)


def fit(plan: Plan, resources: dict, cpus: int, asked: bool) -> Plan:
    """The plan the cluster can place. An asked-for pool it cannot place (Ray would wait for
    ever) is a usage error naming what the cluster has; a pool of our own choosing shrinks to
    fit; more actors than CPUs share them, with one warning."""
    gpus, memory = resources.get("GPU", 0), resources.get("memory", 0)
    fits = min(
        plan.actors,
        int(memory // ACTOR_MEMORY) if memory else plan.actors,
        int(gpus) if plan.gpus_per_actor else plan.actors,
    )
    if asked and fits < plan.actors:
        has = (
            f"{gpus:g} GPU{'s' if gpus != 1 else ''} (one actor each)"
            if plan.gpus_per_actor and plan.actors > gpus
            else f"{memory / 2**30:.1f} GiB of memory for tasks ({ACTOR_MEMORY / 2**30:g} GiB per actor)"
        )
        raise UsageProblem(
            f"--ray-actors {plan.actors}: the cluster has {has}, room for {fits}. Received: --ray-actors {plan.actors}"
        )
    if fits < 1:
        raise UsageProblem(
            f"the Ray cluster has no room for a model actor ({ACTOR_MEMORY / 2**30:g} GiB of memory each; it has "
            f"{memory / 2**30:.1f} GiB)."
        )
    if not float(plan.cpus_per_actor).is_integer():
        stderr_line(
            f"warning: --ray-actors {plan.actors} on a cluster of {cpus} CPUs: {plan.cpus_per_actor:g} CPU each, "
            "so decoding keeps a CPU"
        )
    return dataclasses.replace(plan, actors=fits)


def for_cluster(ray, run: RunPlan) -> tuple[ModelConfig, Plan]:
    """The run's config with the cluster's device settled once (its GPUs, unless --device cpu),
    and the pool the cluster can place; the actors' batch is the run's, unless the cluster's GPUs
    decide it (no -b given)."""
    config = run.config
    node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    gpus = 0 if config.device == "cpu" else int(ray.cluster_resources().get("GPU", 0))
    if config.device == "gpu" and not gpus:
        raise UserError("--device gpu: the Ray cluster has no GPUs.")
    config = dataclasses.replace(config, device="gpu" if gpus else "cpu")
    batch = run.batch_size if run.batch_asked else batch_size(None, "gpu" if gpus else "cpu")
    cluster = Plan.for_cluster(node_cpus, batch, run.ray_actors, config.threads, gpus)
    return config, fit(cluster, ray.cluster_resources(), sum(node_cpus), asked=run.ray_actors is not None)


def blocks_of(sources: Iterable[Source], plan: Plan) -> Iterator[list[Source] | Source]:
    """The inputs a block at a time, read a window ahead (the last window split finer); a tar
    shard or Parquet file left whole (``Source.dataset``) as itself: a task of its own reads it."""
    for whole, run in itertools.groupby(sources, key=lambda source: source.dataset is not None):
        if whole:
            yield from run
            continue
        for ahead in chunks(run, plan.window * ROWS_PER_TASK):
            yield from chunks(ahead, -(-len(ahead) // plan.blocks(len(ahead))))
