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
import logging
import os
import platform
import re
import socket
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from .config import ModelConfig
from .console import stderr_line
from .errors import ClusterUnreachable, UsageProblem, UserError
from .images import DecodeOptions, ImageError, Source, is_uri
from .options import InputOptions
from .pipeline import Skipped, chunks, decode_source
from .records import Record
from .spec import FEATURES

INSTALL_HINT = 'the ray engine needs Ray: pip install "resnet-cli[ray]"'

# Decode status per row.
OK, FAILED, SKIPPED = 0, 1, 2

# Memory reserved per decode task (a block of camera photos in flight) and per model actor
# (weights, session, buffers; peak RSS measured 306-493 MiB). Ray schedules by them.
DECODE_MEMORY = 256 * 2**20
ACTOR_MEMORY = 1024 * 2**20
# Rows per block (one decode task, one actor call): a second or so of decoding, so the driver
# submits a few tasks per second per actor core.
ROWS_PER_TASK = 256
# A batch that has killed its actor this many times more fails the run (a poison input must
# not restart actors for ever); the actor itself is restarted as often as it dies.
BATCH_RETRIES = 3
# Every task and actor call of the engine: no per-task event records in the driver (above).
QUIET_TASKS = {"enable_task_events": False}


# Settings the driver's environment gives the workers explicitly (a cluster's workers inherit
# `ray start`'s environment, not the command's), besides every RESNET_CLI_* variable.
WORKER_SETTINGS = ("KERAS_BACKEND", "KERAS_HOME", "XDG_CACHE_HOME")


class WorkerSetupError(RuntimeError):
    """A worker that cannot run what the driver resolved (other versions, a setting that did
    not arrive, weights it cannot see): the message names the node and is the whole story."""


def worker_settings() -> dict[str, str]:
    """The variables each model actor gets through Ray's runtime_env, checked on arrival."""
    return {key: value for key, value in os.environ.items() if key.startswith("RESNET_CLI_") or key in WORKER_SETTINGS}


def versions() -> dict[str, str]:
    """What driver and workers must share: a pickled config and Ray's wire format depend on them."""
    from importlib.metadata import version

    import ray

    return {"resnet-cli": version("resnet-cli"), "Ray": ray.__version__, "Python": ".".join(platform.python_version_tuple()[:2])}


def check_worker(config: ModelConfig, settings: dict[str, str], driver_versions: dict[str, str]) -> None:
    """Run in each model actor before its first batch: the same versions as the driver, the
    driver's settings arrived, the named weights file readable here with the driver's md5 —
    else the run stops with one line naming this node (never a silent download or a guess)."""
    import ray

    node = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
    mine = versions()
    for name, wanted in driver_versions.items():
        if mine.get(name) != wanted:
            raise WorkerSetupError(f"node {node} runs {name} {mine.get(name)}, the driver {wanted}: install the same resnet-cli, Ray and Python on every node (one container image; see the README's Dockerfile)")
    for key, wanted in settings.items():
        if os.environ.get(key) != wanted:
            raise WorkerSetupError(f"node {node}: the driver's {key} did not reach the worker")
    if config.weights is not None:
        from .weights import file_md5

        if not os.path.isfile(config.weights):
            raise WorkerSetupError(f"node {node} cannot read the weights file {config.weights}: --weights (or $RESNET_CLI_WEIGHTS) must name a file every node sees at that path (a shared volume)")
        if (md5 := file_md5(config.weights)) != config.weights_md5:
            raise WorkerSetupError(f"node {node}: {config.weights} has md5 {md5}, the driver's has {config.weights_md5}")


def import_ray():
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def connect(address: str | None, quiet: bool = False):
    """Join the cluster at ``address`` (else ``$RAY_ADDRESS``), or start a new local Ray sized to
    this machine — never a cluster Ray happens to find running — and say which on stderr."""
    ray = import_ray()
    if not ray.is_initialized():
        target = address or os.environ.get("RAY_ADDRESS") or "local"
        _check_reachable(target)
        _check_token(target)
        try:
            context = ray.init(address=target, include_dashboard=False if target == "local" else None, log_to_driver=False, logging_level=logging.ERROR)
        except ConnectionError as error:
            raise ClusterUnreachable(f"cannot reach the Ray cluster at {target}: {error}") from None
        if not quiet:
            stderr_line(joined(ray, target, getattr(context, "dashboard_url", "")))
    return ray


def joined(ray, target: str, dashboard: str | None) -> str:
    """"started a local Ray: 1 node, 2 CPUs" / "joined the Ray cluster at …: 3 nodes, 48 CPUs; dashboard …"."""
    resources = ray.cluster_resources()
    nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
    size = f"{nodes} node{'s' if nodes != 1 else ''}, {resources.get('CPU', 0):g} CPUs" + (f", {resources['GPU']:g} GPUs" if resources.get("GPU") else "")
    where = "started a local Ray" if target == "local" else f"joined the Ray cluster at {target}"
    return f"{where}: {size}" + (f"; dashboard http://{dashboard}" if dashboard else "")


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


def _check_token(address: str, timeout: float = 10.0) -> None:
    """Ray 2.60's ``ray start`` turns token authentication on; a missing or wrong token makes
    ray.init retry for 20 s and call the cluster unreachable. Ask the cluster once, with the
    token Ray would send, and say which it is in one line. (Ray's own pieces; if they move in
    another Ray release the check is skipped and ray.init decides.)"""
    if address in ("local", "auto") or "://" in address:
        return
    try:
        import grpc
        from ray._private.authentication.grpc_authentication_client_interceptor import _get_authentication_metadata_tuple
        from ray.core.generated import gcs_service_pb2, gcs_service_pb2_grpc

        metadata = _get_authentication_metadata_tuple()
    except Exception:  # noqa: BLE001 — Ray's private API moved or failed: let ray.init decide
        return
    with grpc.insecure_channel(address if ":" in address else f"{address}:6379") as channel:
        try:
            gcs_service_pb2_grpc.NodeInfoGcsServiceStub(channel).GetClusterId(gcs_service_pb2.GetClusterIdRequest(), timeout=timeout, metadata=metadata)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                return  # not ours to judge: ray.init says what it finds
            if not metadata:
                raise UserError(
                    f"the Ray cluster at {address} uses token authentication and this machine sent no token: "
                    "set RAY_AUTH_MODE=token and give it the cluster's token (~/.ray/auth_token, $RAY_AUTH_TOKEN or $RAY_AUTH_TOKEN_PATH; `ray get-auth-token` prints it on the head node)"
                ) from None
            raise UserError(f"the Ray cluster at {address} rejected this machine's token: use that cluster's token (`ray get-auth-token` on its head node) in $RAY_AUTH_TOKEN, $RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token") from None


def decode_batch(block: dict, decode_options: DecodeOptions) -> dict:
    """Ray task: a block's locations → uint8 images plus a status and an error message per row
    (the paths stay with the driver; what discovery already knows is wrong stays the reason)."""
    locations = block["location"]
    size = decode_options.size
    images = np.zeros((len(locations), size, size, 3), dtype=np.uint8)
    status = np.full(len(locations), OK, dtype=np.int8)
    errors = [""] * len(locations)
    for row, source in enumerate(map(Source, locations, block["explicit"], block["known_error"])):
        item = decode_source(source, decode_options)
        if item is Skipped:
            status[row] = SKIPPED
        elif isinstance(item, ImageError):
            status[row], errors[row] = FAILED, str(item)
        else:
            images[row] = item
    return {"status": status, "error": errors, "image": images}


class Predictor:
    """Ray actor: one runtime (ONNX or Keras), opened once, scoring decoded blocks (in fixed
    batches of the run's batch size): top-k classes, or (a config without top: embed, train)
    the pooled feature vectors."""

    def __init__(self, config: ModelConfig, batch_size: int, top_k: int, settings: dict | None = None, driver_versions: dict | None = None):
        from .runtimes.factory import open_runtime

        check_worker(config, settings or {}, driver_versions or {})
        self.runtime = open_runtime(config, batch_size=batch_size)
        self.include_top = config.include_top
        self.classes = len(config.labels)
        self.top_k = min(top_k, self.classes)

    def ready(self) -> bool:
        """Answers once the constructor has run: the pool hands this actor blocks from then on."""
        return True

    def score(self, block: dict) -> dict:
        """The method the engine calls on each actor: ``self(block)``, a plain call as on the
        local side (tests change ``__call__`` to make an actor die)."""
        return self(block)

    def __call__(self, batch: dict) -> dict:
        from .imagenet import top_k

        good = batch["status"] == OK
        rows = {"status": batch["status"], "error": batch["error"]}
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
    def for_cluster(cls, node_cpus: list[int], batch_size: int, actors: int | None = None, threads: int = 0, gpus: int = 0) -> "Plan":
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
    connected_here = not import_ray().is_initialized()
    ray = connect(inputs.ray_address, quiet=inputs.quiet)
    try:
        node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
        gpus = 0 if config.device == "cpu" else int(ray.cluster_resources().get("GPU", 0))
        if config.device == "gpu" and not gpus:
            raise UserError("--device gpu: the Ray cluster has no GPUs.")
        plan = Plan.for_cluster(node_cpus, inputs.batch_for("gpu" if gpus else "cpu"), inputs.ray_actors, config.threads, gpus)
        plan = fit(plan, ray.cluster_resources(), sum(node_cpus), asked=inputs.ray_actors is not None)
        with Watchdog(ray) as watchdog:
            yield from _records(ray, config, sources, plan, top_k, on_skip, predictor, watchdog)
    finally:
        if connected_here:
            # Ray prints the errors it is told of (a killed actor's pending call, say) to
            # sys.stdout from a thread of its own: end it while the caller still keeps fd 1 off
            # the records' stdout, not at exit, when stdout is the records' again.
            ray.shutdown()


def fit(plan: Plan, resources: dict, cpus: int, asked: bool) -> Plan:
    """The plan the cluster can place. An asked-for pool it cannot place (Ray would wait for
    ever) is a usage error naming what the cluster has; a pool of our own choosing shrinks to
    fit; more actors than CPUs share them, with one warning."""
    gpus, memory = resources.get("GPU", 0), resources.get("memory", 0)
    fits = min(plan.actors, int(memory // ACTOR_MEMORY) if memory else plan.actors, int(gpus) if plan.gpus_per_actor else plan.actors)
    if asked and fits < plan.actors:
        has = f"{gpus:g} GPU{'s' if gpus != 1 else ''} (one actor each)" if plan.gpus_per_actor and plan.actors > gpus else f"{memory / 2**30:.1f} GiB of memory for tasks ({ACTOR_MEMORY / 2**30:g} GiB per actor)"
        raise UsageProblem(f"--ray-actors {plan.actors}: the cluster has {has}, room for {fits}. Received: --ray-actors {plan.actors}")
    if fits < 1:
        raise UsageProblem(f"the Ray cluster has no room for a model actor ({ACTOR_MEMORY / 2**30:g} GiB of memory each; it has {memory / 2**30:.1f} GiB).")
    if not float(plan.cpus_per_actor).is_integer():
        stderr_line(f"warning: --ray-actors {plan.actors} on a cluster of {cpus} CPUs: {plan.cpus_per_actor:g} CPU each, so decoding keeps a CPU")
    return dataclasses.replace(plan, actors=fits)


STALL_SECONDS = 60.0  # no result for this long: say on stderr what the cluster has free


class Watchdog:
    """Says, once per stall, why a run makes no progress: what the cluster has free (actors and
    tasks waiting for resources Ray cannot find wait silently, for ever)."""

    def __init__(self, ray, seconds: float = STALL_SECONDS):
        import threading

        self.ray, self.seconds, self.last, self.any = ray, seconds, time.monotonic(), False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True, name="ray-watchdog")

    def beat(self) -> None:
        self.last, self.any = time.monotonic(), True

    def _watch(self) -> None:
        warned = None
        while not self.stop.wait(min(5.0, self.seconds / 4)):
            quiet_for, last = time.monotonic() - self.last, self.last
            if quiet_for >= self.seconds and warned != last:
                warned = last
                stderr_line(self.message(quiet_for))

    def message(self, quiet_for: float) -> str:
        try:
            free, total = self.ray.available_resources(), self.ray.cluster_resources()
        except Exception as error:  # the cluster went away: say that
            return f"warning: no results for {quiet_for:.0f} s and the Ray cluster does not answer ({type(error).__name__})"
        have = ", ".join(f"{free.get(key, 0):g} of {total[key]:g} {name} free" for key, name in (("CPU", "CPUs"), ("GPU", "GPUs")) if key in total)
        what = "results" if self.any else "the first results (starting actors, loading the model)"
        return f"warning: still waiting for {what} after {quiet_for:.0f} s; the cluster has {have}; `ray status` shows what waits for resources"

    def __enter__(self) -> "Watchdog":
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()


def _records(ray, config: ModelConfig, sources, plan: Plan, top_k: int, on_skip, predictor: type, watchdog: Watchdog) -> Iterator[Record]:
    """One actor pool for the whole input, a window of blocks in flight (``ActorPool``):
    records keep the input order and the driver holds ``plan.window`` blocks, whatever the
    input count."""
    from .imagenet import predictions

    pool = ActorPool(ray, _start_actors(ray, config, plan, top_k, predictor))
    decode = ray.remote(decode_batch).options(num_cpus=1, memory=DECODE_MEMORY, **QUIET_TASKS)

    def oldest_records() -> Iterator[Record]:
        block, scored = pool.next_scored()
        watchdog.beat()
        outcomes = predictions(scored["index"], scored["score"], config.labels) if config.include_top else scored["vector"]
        for source, status, error, outcome in zip(block, scored["status"], scored["error"], outcomes):
            if status == SKIPPED:
                on_skip(Source(source.path, explicit=False))
            elif status == FAILED:
                yield Record(source.path, error=error)
            elif config.include_top:
                yield Record(source.path, predictions=outcome)
            else:
                yield Record(source.path, vector=outcome)

    try:
        for block in _blocks(sources, plan):
            # Workers may run in another folder (or on another node with the same mounts): they
            # read absolute paths, while records keep the path as the user gave it, as locally.
            rows = {"location": [_absolute(s.path) for s in block], "explicit": [s.explicit for s in block], "known_error": [s.error for s in block]}
            pool.add(block, decode.remote(rows, config.decode))
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


def _blocks(sources: Iterable[Source], plan: Plan) -> Iterator[list[Source]]:
    """The inputs a block at a time, read a window ahead (the last window split finer)."""
    for ahead in chunks(sources, plan.window * ROWS_PER_TASK):
        yield from chunks(ahead, -(-len(ahead) // plan.blocks(len(ahead))))


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
