"""What the user asked for, as parsed by the CLI: frozen requests, no defaults of the model's
own (None means "what the weights were trained with", resolved in config.py). Numpy-free, so
``--help`` stays light; the allowed values are Literal types, their tuples the CLI's choices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from .outputs import formats as output_formats

Format = Literal["table", "json", "jsonl", "csv", "parquet", "html"]
Device = Literal["auto", "cpu", "gpu"]
Runtime = Literal["auto", "keras", "onnx", "openvino"]
Precision = Literal["fp32", "int8", "bf16"]
Engine = Literal["local", "ray"]
Progress = Literal["auto", "bar", "log", "none"]  # auto: a bar on a terminal, else log lines
FORMATS: tuple[str, ...] = get_args(Format)
if FORMATS != output_formats.NAMES:  # the Literal (for type checkers) and the formats' table agree
    raise ImportError(f"request.Format {FORMATS} != outputs.formats.TABLE {output_formats.NAMES}")
DEVICES: tuple[str, ...] = get_args(Device)
RUNTIMES: tuple[str, ...] = get_args(Runtime)
PRECISIONS: tuple[str, ...] = get_args(Precision)
ENGINES: tuple[str, ...] = get_args(Engine)
PROGRESS: tuple[str, ...] = get_args(Progress)
CPU_BATCH, GPU_BATCH = 32, 256


@dataclass(frozen=True)
class ModelRequest:
    """The model options a command was given; resolved once into a ``config.ModelConfig``."""

    model: str | None = None  # None: the head's, else resnet50
    weights: str | None = None
    offline: bool = False
    pool1_padding: str | None = None
    bn_epsilon: float | None = None
    resize: str | None = None
    interpolation: str | None = None
    fast_decode: bool = False
    fetch_timeout: float = 30.0  # seconds, for http(s) inputs
    runtime: Runtime = "auto"
    precision: Precision = "fp32"
    device: Device = "auto"
    threads: int = 0  # inference threads; 0 = one per core
    calibration: str | None = None  # int8: folder of calibration images
    head: str | None = None  # a head file from `train`: the user's classes instead of ImageNet's


def conflicts(request: ModelRequest) -> str | None:
    """The first impossible combination of model options, in Click's words, or None."""
    if request.precision == "int8" and request.runtime == "keras":
        return "--precision int8 runs on the onnx or openvino runtime. Received: --runtime keras"
    if request.precision == "bf16" and request.runtime == "onnx":
        return (
            "--precision bf16 runs on the openvino or keras runtime (ONNX Runtime has no bf16 CPU kernels). "
            "Received: --runtime onnx"
        )
    if request.calibration and request.precision != "int8":
        return f"--calibration is for --precision int8. Received: --precision {request.precision}"
    return None


@dataclass(frozen=True)
class InputOptions:
    """Which inputs, and what the user sees of them going by."""

    inputs: tuple[str, ...] = ()
    recursive: bool = False
    null: bool = False  # paths on stdin separated by NUL (find -print0), not newlines
    include_hidden: bool = False
    quiet: bool = False
    verbose: bool = False  # name each skipped (non-image) file on stderr
    progress: Progress = "auto"
    image_column: str | None = None  # Parquet inputs: the column of images (None: by its type)
    key_column: str | None = None  # Parquet inputs: the column of the records' paths (None: FILE#ROW)


@dataclass(frozen=True)
class EngineOptions:
    """How the inputs stream through an engine, as asked; ``plan.make_plan`` settles them."""

    engine: Engine = "local"  # local: this process; ray: Ray tasks and actors on a cluster (or a local Ray)
    batch_size: int | None = None  # None: the plan's (plan.batch_size)
    workers: int = 0  # decode threads; 0: the plan's (plan.decode_workers)
    ray_address: str | None = None  # None: start a local Ray sized to this machine
    ray_actors: int | None = None  # model actors; None: engines.ray_plan.Plan sizes the pool


@dataclass(frozen=True)
class OutputOptions:
    """Where classify's records go and in what form."""

    format: Format | None = None  # None: from the records already there, -o's extension, else table
    output: str | None = None
    resume: bool = False
    retry_errors: bool = True  # --resume runs the inputs whose record is an error again
    overwrite: bool = False
    top_k: int = 5


@dataclass(frozen=True)
class ServeOptions:
    """How ``serve`` listens and what it accepts."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None  # needed for any bind but loopback
    max_wait_ms: float = 2.0  # how long a batch waits for more requests once it has one
    max_queue: int = 256  # images waiting at once; beyond: 503
    max_body: int = 32 * 2**20  # bytes; beyond: 413
    read_timeout: float = 30.0  # seconds for a whole request body; beyond: 408
    max_connections: int = 512  # concurrent connections and requests; beyond: 503 (uvicorn)
    allow_urls: bool = False  # fetch URLs and URIs named in a JSON body (an SSRF risk)
    allow_dirs: tuple[str, ...] = ()  # server folders a JSON body may name files in
    access_log: bool = False
