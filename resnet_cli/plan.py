"""One frozen RunPlan per run: the resolved ModelConfig and every setting an engine reads —
batch size, decode threads, decoding ahead of the model or in turns with it, top-k, the Ray
cluster — each decided here, once, by a pure function. Engines, and whatever holds one open
(the CLI's commands, an API, a server), only read it."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from .config import ModelConfig
from .request import CPU_BATCH, GPU_BATCH, Engine, EngineOptions, InputOptions
from .storage import is_uri, is_url

LOCAL = EngineOptions()  # the local engine, its settings left to the plan


@dataclass(frozen=True)
class RunPlan:
    config: ModelConfig
    engine: Engine = "local"
    batch_size: int = CPU_BATCH  # local: the model's batch; Ray: the actors', unless the cluster's GPUs decide
    batch_asked: bool = False  # the user gave -b (Ray sizes GPU batches only when not)
    decode_workers: int = 2
    decode_ahead: bool = True
    top_k: int = 5
    thumbnails: bool = False  # each record also carries a small JPEG of what the model saw (-f html)
    per_batch: Callable | None = None  # wraps the runtime's predict (train's augmented features)
    variable_batch: bool = False  # run each batch at its own size, unpadded (a server's, the API's)
    ray_address: str | None = None
    ray_actors: int | None = None
    quiet: bool = False


def make_plan(
    config: ModelConfig,
    inputs: InputOptions,
    asked: EngineOptions = LOCAL,
    top_k: int = 5,
    thumbnails: bool = False,
    per_batch: Callable | None = None,
    cores: int | None = None,
    variable_batch: bool = False,
) -> RunPlan:
    """The plan of a run of ``config`` over ``inputs`` on a machine of ``cores`` cores, the
    engine settings ``asked``."""
    cores = cores or os.cpu_count() or 1
    return RunPlan(
        config=config,
        engine=asked.engine,
        batch_size=batch_size(asked.batch_size, config.device),
        batch_asked=asked.batch_size is not None,
        decode_workers=decode_workers(asked.workers, inputs.inputs, cores),
        decode_ahead=decode_ahead(config, inputs.inputs, cores),
        top_k=top_k,
        thumbnails=thumbnails,
        per_batch=per_batch,
        variable_batch=variable_batch,
        ray_address=asked.ray_address,
        ray_actors=asked.ray_actors,
        quiet=inputs.quiet,
    )


def batch_size(asked: int | None, device: str) -> int:
    """The batch asked for, else one that suits the device: a GPU needs big batches to be
    busy; on a CPU 32 is as fast as larger ones and starts sooner."""
    return asked or (GPU_BATCH if device == "gpu" else CPU_BATCH)


def decode_workers(asked: int, inputs: tuple[str, ...], cores: int) -> int:
    """Decode threads: one per core (at least 2); with web inputs (or stdin, which may list
    them) at least 16, so a slow server holds one thread, not the batch."""
    if asked:
        return asked
    default = max(2, cores)
    return max(default, 16) if any(i == "-" or is_url(i) for i in inputs) else default


def decode_ahead(config: ModelConfig, inputs: tuple[str, ...], cores: int) -> bool:
    """Decode ahead of the model, except on OpenVINO on the CPU with every core its own: its
    threads, with decoders beside them, became stragglers (4 interleaved runs each, int8 on
    500×375 JPEGs, medians: 114 img/s ahead, 130 in turns), while ONNX Runtime ran faster
    overlapped (70 against 61). Web reads, object stores and stdin's lists always decode
    ahead: they wait on the network."""
    if any(i == "-" or is_uri(i) for i in inputs):
        return True
    return config.runtime != "openvino" or config.threads < cores  # threads: settled (config.settle)
