"""One frozen object with everything a run needs, resolved CLI → weights spec → defaults."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("table", "json", "jsonl", "csv")
DEVICES = ("auto", "cpu", "gpu")
PRECISIONS = ("fp32", "int8", "bf16")
ENGINES = ("local", "ray")


@dataclass(frozen=True)
class DecodeOptions:
    size: int = 224
    resize: str = "stretch"
    interpolation: str = "nearest"
    fast_jpeg: bool = False


@dataclass(frozen=True)
class Options:
    inputs: tuple[str, ...] = ()
    recursive: bool = False
    include_hidden: bool = False
    top_k: int = 5
    format: str = "table"
    batch_size: int = 32
    workers: int = 0  # decode threads; 0 = one per core (at least 2)
    threads: int = 0  # inference threads; 0 = one per core
    weights: str | None = None
    offline: bool = False
    device: str = "auto"
    runtime: str = "auto"
    precision: str = "fp32"
    calibration: str | None = None
    pool1_padding: str | None = None  # None: what the weights were trained with
    bn_epsilon: float | None = None
    decode: DecodeOptions = DecodeOptions()
    output: str | None = None
    resume: bool = False
    quiet: bool = False
    labels: str | None = None  # evaluate: CSV of file,class_index|wnid
    normalize: bool = False  # embed: L2-normalise the vectors
    target_class: str | None = None  # explain: class to explain (index, wnid or label)
    raw: str | None = None  # explain: also save the bare map as .npy here
    progress: bool | None = None  # None: only when stderr is a terminal
    engine: str = "local"  # local: this process; ray: Ray Data on a cluster (or a local Ray)
    ray_address: str | None = None  # None: start a local Ray sized to this machine
    ray_actors: int | None = None  # model actors; None: ray_engine.Plan sizes the pool to the cluster

    def decode_workers(self) -> int:
        import os

        return self.workers or max(2, os.cpu_count() or 2)
