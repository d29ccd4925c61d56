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
import platform
import re
import socket
import time
import warnings
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
ROWS_PER_TASK = 256


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
        import ray.data  # noqa: F401
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
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # ours runs on the records, on a terminal only
    context.execution_options.preserve_order = True  # same order as the local engine
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"ray\.data")  # advice for Ray Data's own users
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

    def __init__(self, config: ModelConfig, batch_size: int, top_k: int, settings: dict | None = None, driver_versions: dict | None = None):
        from .runtimes.factory import open_runtime

        check_worker(config, settings or {}, driver_versions or {})
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

    def blocks(self, rows: int) -> int:
        """Blocks (one decode task each) for a run of ``rows``: Ray Data spends tens of ms of the
        driver's time per task, so large runs get blocks of ROWS_PER_TASK (a second or so of
        decoding), small ones enough blocks of at least a batch to keep every actor busy."""
        big_blocks, batches = -(-rows // max(self.batch_size, ROWS_PER_TASK)), -(-rows // self.batch_size)
        return max(1, big_blocks, min(batches, 4 * self.max_actors))

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
    ray = connect(inputs.ray_address, quiet=inputs.quiet)
    node_cpus = [int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node.get("Alive")]
    gpus = 0 if config.device == "cpu" else int(ray.cluster_resources().get("GPU", 0))
    if config.device == "gpu" and not gpus:
        raise UserError("--device gpu: the Ray cluster has no GPUs.")
    plan = Plan.for_cluster(node_cpus, inputs.batch_for("gpu" if gpus else "cpu"), inputs.ray_actors, config.threads, gpus)
    plan = fit(plan, ray.cluster_resources(), sum(node_cpus), asked=inputs.ray_actors is not None)
    with Watchdog(ray) as watchdog:
        yield from _records(ray, config, sources, plan, top_k, on_skip, predictor, watchdog)


def fit(plan: Plan, resources: dict, cpus: int, asked: bool) -> Plan:
    """The plan the cluster can place. An asked-for pool it cannot place (Ray would wait for
    ever) is a usage error naming what the cluster has; a pool of our own choosing shrinks to
    fit; more actors than CPUs share them, with one warning."""
    gpus, memory = resources.get("GPU", 0), resources.get("memory", 0)
    fits = min(plan.max_actors, int(memory // ACTOR_MEMORY) if memory else plan.max_actors, int(gpus) if plan.gpus_per_actor else plan.max_actors)
    if asked and fits < plan.max_actors:
        has = f"{gpus:g} GPU{'s' if gpus != 1 else ''} (one actor each)" if plan.gpus_per_actor and plan.max_actors > gpus else f"{memory / 2**30:.1f} GiB of memory for tasks ({ACTOR_MEMORY / 2**30:g} GiB per actor)"
        raise UsageProblem(f"--ray-actors {plan.max_actors}: the cluster has {has}, room for {fits}. Received: --ray-actors {plan.max_actors}")
    if fits < 1:
        raise UsageProblem(f"the Ray cluster has no room for a model actor ({ACTOR_MEMORY / 2**30:g} GiB of memory each; it has {memory / 2**30:.1f} GiB).")
    if not float(plan.cpus_per_actor).is_integer():
        stderr_line(f"warning: --ray-actors {plan.max_actors} on a cluster of {cpus} CPUs: {plan.cpus_per_actor:g} CPU each, so decoding keeps a CPU")
    return dataclasses.replace(plan, max_actors=fits, min_actors=min(plan.min_actors, fits))


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
    from .imagenet import predictions
    for chunk in chunks(sources, plan.rows_per_run):
        # Workers may run in another folder (or on another node with the same mounts): they
        # read absolute paths, while records keep the path as the user gave it, as locally.
        rows = [{"path": s.path, "location": _absolute(s.path), "explicit": s.explicit} for s in chunk]
        for batch in _batches(ray, _dataset(ray, rows, config, plan, top_k, predictor)):
            watchdog.beat()
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
    """paths → decode tasks → model actors → top-k (or feature) rows (lazy: runs when iterated).
    The actors get the driver's settings (``worker_settings``) and check them on arrival."""
    settings = worker_settings()
    return (
        ray.data.from_items(rows, override_num_blocks=plan.blocks(len(rows)))
        .map_batches(decode_batch, fn_kwargs={"decode_options": config.decode}, batch_size=None, batch_format="numpy", num_cpus=1, memory=DECODE_MEMORY)
        .map_batches(
            predictor,
            fn_constructor_kwargs={
                "config": dataclasses.replace(config, threads=plan.threads),
                "batch_size": plan.batch_size,
                "top_k": top_k,
                "settings": settings,
                "driver_versions": versions(),
            },
            batch_size=plan.batch_size,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(min_size=plan.min_actors, max_size=plan.max_actors),
            num_cpus=plan.cpus_per_actor,
            num_gpus=plan.gpus_per_actor,
            memory=ACTOR_MEMORY,
            runtime_env={"env_vars": settings},
        )
    )


def _absolute(path: str) -> str:
    return path if is_uri(path) else os.path.abspath(path)


def _batches(ray, dataset) -> Iterator[dict]:
    """The dataset's output; a failure Ray gave up on is one line naming its cause."""
    try:
        yield from dataset.iter_batches(batch_size=None, batch_format="numpy")
    except ray.exceptions.RayError as error:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        last = lines[-1] if lines else type(error).__name__
        setup = re.match(rf"(?:[\w.]+\.)?{WorkerSetupError.__name__}: (.*)", last)
        raise UserError(setup.group(1) if setup else f"the ray engine failed: {last}") from None
