"""The ray engine: the local engine's records, computed on a Ray cluster with Ray Data.

Plan: the driver lists the inputs (the project's own discovery: folders, ``-``, and URIs that
pyarrow.fs reads) → CPU tasks read and decode them with the project's own decoder (so pixels
and error messages are the local engine's) → an autoscaling pool of actors, one runtime each,
loaded once → top-k rows streamed back to the driver in input order, which writes every record
whole through the same sinks as the local engine.

Exactly once: records are written only by the driver, from Ray Data's output stream. A task or
an actor that dies is retried by Ray (actors restart, their tasks are re-run) and the stream
still holds each input once; a driver that dies is picked up by ``--resume``.

Files are read in the decode tasks (pyarrow.fs for URIs), not by Ray's file readers, because
one unreadable file must become one error record, not fail the whole dataset.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .config import ModelConfig
from .console import stderr_line
from .errors import ClusterUnreachable, UserError
from .images import DecodeOptions, ImageError, Source, is_uri
from .options import InputOptions
from .pipeline import Skipped, chunks, decode_source
from .records import Record
from .spec import FEATURES

INSTALL_HINT = 'the ray engine needs Ray Data: pip install "resnet-cli[ray]"'

# Decode status per row.
OK, FAILED, SKIPPED = 0, 1, 2

# Memory reserved per decode task (a batch of camera photos in flight) and per model actor
# (weights, session, buffers; peak RSS measured 306-493 MiB). Ray schedules by them; that the
# two differ also keeps Ray Data from fusing decoding into the actors, so decode overlaps
# inference. A dead actor is restarted and its batch re-run (Ray Data's default for actor
# pools): exactly-once rests on that.
DECODE_MEMORY = 256 * 2**20
ACTOR_MEMORY = 1024 * 2**20
# Inputs per Ray Data run: the driver holds one run's paths (~45 MB per 100,000), and each run
# starts its actors anew (seconds), so a run gives every actor ~20,000 photos (minutes of work)
# and holds 100,000 to 1,000,000 paths: the driver's memory follows the cluster's size, never
# the input count.
ROWS_PER_RUN, ROWS_PER_ACTOR, ROWS_PER_RUN_MAX = 100_000, 20_000, 1_000_000


def import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def connect(address: str | None):
    """Join the cluster at ``address``, or start a local Ray sized to this machine; quietly."""
    ray = import_ray()
    if not ray.is_initialized():
        _check_reachable(address)
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        except ConnectionError as error:
            raise ClusterUnreachable(f"cannot reach the Ray cluster at {address}: {error}") from None
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours runs on the records, on a terminal only
    context.execution_options.preserve_order = True  # same order as the local engine
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    return ray


def _check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """A wrong address fails in seconds with one line, instead of Ray's minutes of retries."""
    if address in (None, "", "auto", "local"):
        return
    target = address.split("://", 1)[-1]
    host, colon, port = target.rpartition(":")
    if not colon:  # Ray's default ports: 6379 (GCS), 10001 (ray:// client)
        host, port = target, "10001" if address.startswith("ray://") else "6379"
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as error:
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address} ({error or type(error).__name__})") from None


def decode_batch(batch: dict, decode_options: DecodeOptions) -> dict:
    """Ray task: paths → uint8 images plus a status and an error message per row."""
    paths, locations, explicit = batch["path"], batch["location"], batch["explicit"]
    size = decode_options.size
    images = np.zeros((len(paths), size, size, 3), dtype=np.uint8)
    status = np.full(len(paths), OK, dtype=np.int8)
    errors = [""] * len(paths)
    for row, (location, named) in enumerate(zip(locations, explicit)):
        item = decode_source(Source(str(location), bool(named)), decode_options)
        if item is Skipped:
            status[row] = SKIPPED
        elif isinstance(item, ImageError):
            status[row], errors[row] = FAILED, str(item)
        else:
            images[row] = item
    return {"path": paths, "status": status, "error": np.array(errors, dtype=object), "image": images}


class Predictor:
    """Ray actor: one runtime (ONNX or Keras), opened once, scoring the decoded rows: top-k
    classes, or (a config without top: embed, train) the pooled feature vectors."""

    def __init__(self, config: ModelConfig, batch_size: int, top_k: int):
        from .runtimes.factory import open_runtime

        self.runtime = open_runtime(config, batch_size=batch_size)
        self.include_top = config.include_top
        self.classes = len(config.labels)
        self.top_k = min(top_k, self.classes)

    def __call__(self, batch: dict) -> dict:
        from .imagenet import top_k

        good = batch["status"] == OK
        rows = {"path": batch["path"], "status": batch["status"], "error": batch["error"]}
        if not self.include_top:
            vectors = np.zeros((len(good), FEATURES), dtype=np.float32)
            if good.any():
                vectors[good] = self.runtime.predict(batch["image"][good])
            return {**rows, "vector": vectors}
        indices = np.zeros((len(good), self.top_k), dtype=np.int64)
        scores = np.zeros((len(good), self.top_k), dtype=np.float32)
        if good.any():
            indices[good], scores[good] = top_k(self.runtime.predict(batch["image"][good]), self.top_k, self.classes)
        return {**rows, "index": indices, "score": scores}


@dataclass(frozen=True)
class Plan:
    """How the work is spread: rows per block, the actor pool's bounds, CPUs Ray reserves per
    actor and the inference threads each actor runs."""

    batch_size: int
    min_actors: int = 1
    max_actors: int = 1
    cpus_per_actor: float = 1
    threads: int = 1
    gpus_per_actor: int = 0

    @property
    def rows_per_run(self) -> int:
        return min(ROWS_PER_RUN_MAX, max(ROWS_PER_RUN, self.max_actors * ROWS_PER_ACTOR))

    @classmethod
    def for_cluster(cls, node_cpus: list[int], batch_size: int, actors: int | None = None, threads: int = 0, gpus: int = 0) -> "Plan":
        """GPUs (when the run may use them): one actor per GPU, every CPU left to decoding.
        Big CPU nodes: actors of 4 CPUs (ONNX Runtime scales well to 4 threads, then flattens).
        Small nodes: one actor per node using every core, decode tasks in between (decoding
        is ~10 % of inference per photo). A fifth of the CPUs stays free for decoding."""
        largest, total = max(node_cpus, default=1), max(1, sum(node_cpus))
        if gpus:
            return cls(batch_size, actors or 1, actors or gpus, 1, threads or 1, 1)
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
        return cls(batch_size, actors or 1, most, cpus_per_actor, threads or default_threads)


def records(
    config: ModelConfig,
    inputs: InputOptions,
    sources: Iterable[Source],
    top_k: int,
    on_skip: Callable[[Source], None] = lambda source: None,
    predictor: type = Predictor,
) -> Iterator[Record]:
    """The ray engine's records for ``sources``, in input order (as ``pipeline.run``'s).
    The resolved config travels to the actors whole (absolute weights path and md5 included)."""
    from .imagenet import predictions

    ray = connect(inputs.ray_address)
    node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    gpus = 0 if config.device == "cpu" else int(ray.cluster_resources().get("GPU", 0))
    if config.device == "gpu" and not gpus:
        raise UserError("--device gpu: the Ray cluster has no GPUs.")
    plan = Plan.for_cluster(node_cpus, inputs.batch_for("gpu" if gpus else "cpu"), inputs.ray_actors, config.threads, gpus)
    if not float(plan.cpus_per_actor).is_integer():
        stderr_line(f"warning: --ray-actors {plan.max_actors} on a cluster of {sum(node_cpus)} CPUs: {plan.cpus_per_actor:g} CPU each, so decoding keeps a CPU")
    for chunk in chunks(sources, plan.rows_per_run):
        # Workers may run in another folder (or on another node with the same mounts): they
        # read absolute paths, while records keep the path as the user gave it, as locally.
        rows = [{"path": s.path, "location": _absolute(s.path), "explicit": s.explicit} for s in chunk]
        for batch in _batches(ray, _dataset(ray, rows, config, plan, top_k, predictor)):
            outcomes = predictions(batch["index"], batch["score"], config.labels) if config.include_top else batch["vector"]
            for path, status, error, outcome in zip(batch["path"], batch["status"], batch["error"], outcomes):
                path = str(path)
                if status == SKIPPED:
                    on_skip(Source(path, explicit=False))
                elif status == FAILED:
                    yield Record(path, error=str(error))
                elif config.include_top:
                    yield Record(path, predictions=outcome)
                else:
                    yield Record(path, vector=outcome)


def _dataset(ray, rows: list[dict], config: ModelConfig, plan: Plan, top_k: int, predictor: type):
    """paths → decode tasks → model actors → top-k (or feature) rows (lazy: runs when iterated)."""
    return (
        ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // plan.batch_size)))
        .map_batches(decode_batch, fn_kwargs={"decode_options": config.decode}, batch_size=plan.batch_size, batch_format="numpy", num_cpus=1, memory=DECODE_MEMORY)
        .map_batches(
            predictor,
            fn_constructor_kwargs={"config": dataclasses.replace(config, threads=plan.threads), "batch_size": plan.batch_size, "top_k": top_k},
            batch_size=plan.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=plan.min_actors, max_size=plan.max_actors),
            num_cpus=plan.cpus_per_actor,
            num_gpus=plan.gpus_per_actor,
            memory=ACTOR_MEMORY,
        )
    )


def _absolute(path: str) -> str:
    return path if is_uri(path) else os.path.abspath(path)


def _batches(ray, dataset) -> Iterator[dict]:
    """The dataset's output; a failure Ray gave up on is one line naming its cause."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise UserError(f"the ray engine failed: {lines[-1].strip() if lines else type(error).__name__}") from None
