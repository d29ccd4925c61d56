"""What runs on the Ray workers: the decode task and the model actor (one runtime each), and
the actor's check, before its first batch, that it runs what the driver resolved."""

from __future__ import annotations

import os
import platform
import socket
from collections.abc import Iterator

import numpy as np

from ..config import ModelConfig, for_this_node
from ..inputs.datasets import dataset_sources
from ..inputs.decode import DecodeOptions, ImageError, thumbnail
from ..inputs.source import Source
from ..model.spec import FEATURES
from .local import Skipped, decode_source

# Decode status per row.
OK, FAILED, SKIPPED = 0, 1, 2


# Settings the driver's environment gives the workers explicitly (a cluster's workers inherit
# `ray start`'s environment, not the command's), besides every RESNET_CLI_* variable.
WORKER_SETTINGS = ("KERAS_BACKEND", "KERAS_HOME", "XDG_CACHE_HOME", "ORT_DISABLE_TELEMETRY")


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

    return {
        "resnet-cli": version("resnet-cli"),
        "Ray": ray.__version__,
        "Python": ".".join(platform.python_version_tuple()[:2]),
    }


def check_worker(config: ModelConfig, settings: dict[str, str], driver_versions: dict[str, str]) -> None:
    """Run in each model actor before its first batch: the same versions as the driver, the
    driver's settings arrived, the named weights file readable here with the driver's md5 —
    else the run stops with one line naming this node (never a silent download or a guess)."""
    import ray

    node = f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"
    mine = versions()
    for name, wanted in driver_versions.items():
        if mine.get(name) != wanted:
            raise WorkerSetupError(
                f"node {node} runs {name} {mine.get(name)}, the driver {wanted}: install the same resnet-cli, Ray "
                "and Python on every node (one container image; see the README's Dockerfile)"
            )
    for key, wanted in settings.items():
        if os.environ.get(key) != wanted:
            raise WorkerSetupError(f"node {node}: the driver's {key} did not reach the worker")
    if config.weights is not None:
        from ..storage import file_md5

        if not os.path.isfile(config.weights):
            raise WorkerSetupError(
                f"node {node} cannot read the weights file {config.weights}: --weights (or $RESNET_CLI_WEIGHTS) "
                "must name a file every node sees at that path (a shared volume)"
            )
        if (md5 := file_md5(config.weights)) != config.weights_md5:
            raise WorkerSetupError(
                f"node {node}: {config.weights} has md5 {md5}, the driver's has {config.weights_md5}"
            )


def decode_unit(unit: dict, decode_options: DecodeOptions, thumbnails: bool = False) -> Iterator[dict]:
    """Ray task, a streaming generator (one function, so Ray queues every unit first in, first
    out): a block of inputs the driver listed → one decoded block; a tar shard or a Parquet row
    group → its decoded blocks, read here."""
    if "part" in unit:
        yield from read_dataset(unit["part"], decode_options, thumbnails)
    else:
        yield decode_batch(unit, decode_options, thumbnails)


def decode_batch(block: dict, decode_options: DecodeOptions, thumbnails: bool = False) -> dict:
    """A block's locations → uint8 images plus a status and an error message per row (the
    paths stay with the driver; what discovery already knows is wrong stays the reason)."""
    locations = block["location"]
    held = block.get("data") or [None] * len(locations)
    sources = list(map(Source, locations, block["explicit"], block["known_error"], held))
    return decoded_rows(sources, decode_options, thumbnails)


def read_dataset(part: dict, decode_options: DecodeOptions, thumbnails: bool = False) -> Iterator[dict]:
    """One tar shard, or one row group of a Parquet file, read where this task runs — one
    sequential GET, never one per photo — and decoded ``rows`` at a time. Each block carries its
    records' paths (the driver never lists the members) and the members skipped as no image;
    members a resumed run recorded (``done``) are left out."""
    members = dataset_sources(
        part["location"], part["columns"], part["timeout"], name=part["name"], row_group=part["row_group"]
    )
    done = part["done"]
    block: list[Source] = []
    skipped: list[str] = []
    for member in members:
        if member.path in done:
            continue
        if member.skip:
            skipped.append(member.path)
        else:
            block.append(member)
        if len(block) >= part["rows"]:
            yield _block(block, skipped, decode_options, thumbnails)
            block, skipped = [], []
    if block or skipped:
        yield _block(block, skipped, decode_options, thumbnails)


def _block(block: list[Source], skipped: list[str], decode_options: DecodeOptions, thumbnails: bool) -> dict:
    return {"path": [s.path for s in block], "skipped": skipped, **decoded_rows(block, decode_options, thumbnails)}


def decoded_rows(sources: list[Source], decode_options: DecodeOptions, thumbnails: bool = False) -> dict:
    """Each source's uint8 image (zeros where it failed), its status (OK, FAILED, SKIPPED) and
    error message: what the model actor (and a Serve replica) scores."""
    size = decode_options.size
    images = np.zeros((len(sources), size, size, 3), dtype=np.uint8)
    status = np.full(len(sources), OK, dtype=np.int8)
    errors = [""] * len(sources)
    for row, source in enumerate(sources):
        item = decode_source(source, decode_options)
        if item is Skipped:
            status[row] = SKIPPED
        elif isinstance(item, ImageError):
            status[row], errors[row] = FAILED, str(item)
        else:
            images[row] = item
    decoded = {"status": status, "error": errors, "image": images}
    if thumbnails:
        decoded["thumbnail"] = [thumbnail(image) if ok == OK else None for image, ok in zip(images, status)]
    return decoded


class Predictor:
    """Ray actor: one runtime (ONNX or Keras), opened once, scoring decoded blocks (in fixed
    batches of the run's batch size): top-k classes, or (a config without top: embed, train)
    the pooled feature vectors."""

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        top_k: int,
        settings: dict | None = None,
        driver_versions: dict | None = None,
    ):
        from ..runtimes.factory import open_runtime

        check_worker(config, settings or {}, driver_versions or {})
        self.runtime = open_runtime(for_this_node(config), batch_size=batch_size)
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

    def __call__(self, batch: dict, top_k: int | None = None) -> dict:
        """``top_k``: this batch's classes per row, in place of the actor's."""
        from ..model.imagenet import top_k as best

        k = min(top_k, self.classes) if top_k else self.top_k
        good = batch["status"] == OK
        rows = {key: batch[key] for key in ("status", "error", "thumbnail", "path", "skipped") if key in batch}
        if not self.include_top:
            vectors = np.zeros((len(good), FEATURES), dtype=np.float32)
            if good.any():
                vectors[good] = self.runtime.predict(batch["image"][good])
            return {**rows, "vector": vectors}
        indices = np.zeros((len(good), k), dtype=np.int64)
        scores = np.zeros((len(good), k), dtype=np.float32)
        if good.any():
            indices[good], scores[good] = best(self.runtime.predict(batch["image"][good]), k, self.classes)
        return {**rows, "index": indices, "score": scores}
