"""One frozen ModelConfig per run, resolved once: CLI overrides → the weights' spec → defaults.

The way timm's ``pretrained_cfg`` + ``resolve_data_config`` work: everything that belongs to
the weights (input size, preprocessing, pool1 padding, BN epsilon, resize, interpolation, crop
ratio, classes) comes from their spec unless the user overrode it; the device, runtime,
precision and threads are settled against what this machine can do. ``resolve`` does the I/O
(locate or download the weights, read the head, probe the ``Machine``) in one place, then
``settle`` — a pure function — decides. The builder, the exporter, the decoder, the runtimes
and the engines only read the result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from .backend import GPU_INSTALL_HINT, cpu_flags
from .console import stderr_line
from .errors import UserError
from .inputs.decode import DecodeOptions
from .machine import Machine, probe
from .model.head import FEATURE_OPTIONS, Head, check_fits, read_head
from .model.imagenet import class_index
from .model.spec import (
    DEFAULT,
    DEFAULT_MODEL,
    Interpolation,
    ModelName,
    Pool1Padding,
    Pooling,
    Preprocessing,
    Resize,
    WeightsSpec,
    architecture,
    default_weights,
)
from .model.weights import ResolvedWeights, locate
from .request import Device, ModelRequest, Precision


@dataclass(frozen=True)
class ModelConfig:
    weights: str | None  # absolute path of the weight file (None: a model without weights)
    weights_md5: str | None
    model: ModelName = DEFAULT_MODEL
    input_size: int = DEFAULT.input_size
    preprocessing: Preprocessing = DEFAULT.preprocessing
    mean_bgr: tuple[float, float, float] = DEFAULT.mean_bgr
    pool1_padding: Pool1Padding = DEFAULT.pool1_padding
    bn_epsilon: float = DEFAULT.bn_epsilon
    resize: Resize = DEFAULT.resize
    interpolation: Interpolation = DEFAULT.interpolation
    crop_ratio: float = DEFAULT.crop_ratio
    fast_decode: bool = False
    fetch_timeout: float = 30.0  # http(s) inputs
    classes: str = DEFAULT.classes
    include_top: bool = True  # False: pooled features (``pooling``) instead of class scores
    pooling: Pooling | None = None
    runtime: Literal["keras", "onnx", "openvino"] = "onnx"  # never "auto" once resolved
    runtime_reason: str = ""  # why --runtime auto took it, for the summary ("" when asked for)
    precision: Precision = "fp32"
    weight_bits: int | None = 8  # int8's weights (int8_weight_bits); None: each Ray node's CPU decides
    device: Device = "auto"  # "cpu" or "gpu" once resolved for this machine; a Ray run leaves it as asked
    threads: int = 0  # inference threads; settled to the core count on this machine (Ray: each actor's plan)
    calibration: str | None = None
    head: Head | None = None  # the user's classes in place of fc1000

    @property
    def decode(self) -> DecodeOptions:
        """How a file becomes the model's input."""
        return DecodeOptions(
            self.input_size, self.resize, self.interpolation, self.crop_ratio, self.fast_decode, self.fetch_timeout
        )

    @property
    def labels(self) -> tuple[tuple[str | None, str], ...]:
        """(wnid, label) per output column: ImageNet's, or the head's classes (no wnid)."""
        if self.head is not None:
            return tuple((None, name) for name in self.head.classes)
        return class_index()

    def features(self, pooling: str = "avg") -> ModelConfig:
        """The same network ending in pooled features instead of fc1000."""
        return dataclasses.replace(self, include_top=False, pooling=pooling)


def _asked(request: ModelRequest) -> dict:
    return {
        "model": request.model,
        "pool1_padding": request.pool1_padding,
        "bn_epsilon": request.bn_epsilon,
        "resize": request.resize,
        "interpolation": request.interpolation,
    }


def _numerics(request: ModelRequest, spec: WeightsSpec, head: Head | None = None) -> dict:
    """Each model option: what the user asked for, else what the head's features were
    computed with, else what these weights were trained with."""
    asked = _asked(request)
    trained = {f.name: getattr(spec, f.name) for f in dataclasses.fields(WeightsSpec)}
    if head is not None:
        trained.update(head.trained_with)
    fields = (*(name for name in FEATURE_OPTIONS if name != "model"), "preprocessing", "classes")
    return {name: trained[name] if asked.get(name) is None else asked[name] for name in fields}


def gpu_questions(request: ModelRequest) -> frozenset[str]:
    """The runtimes whose GPU the device decision needs to know about (asking costs imports:
    ONNX Runtime's, or a Keras backend's)."""
    if request.device == "cpu" or request.runtime == "openvino":
        return frozenset()
    if request.runtime == "onnx" or (request.precision == "int8" and request.runtime == "auto"):
        return frozenset({"onnx"})
    return frozenset({"keras"})


def _device(request: ModelRequest, machine: Machine) -> str:
    """ "cpu" or "gpu". auto: the GPU where one is visible to the runtime that will run
    (Keras on a GPU backend; ONNX Runtime only with its CUDA build), else the CPU. gpu where
    that runtime has none: one line saying what is missing and what to install."""
    asked = gpu_questions(request)
    if request.device == "gpu" and request.runtime == "openvino":
        raise UserError(
            "--device gpu: the openvino runtime runs on the CPU here (for a GPU: --runtime keras, or --runtime "
            "onnx with onnxruntime-gpu)."
        )
    if not asked:
        return "cpu"
    if "onnx" in asked:
        if machine.onnxruntime_cuda:
            return "gpu"
        if request.device == "gpu":
            raise UserError(
                f"--device gpu: {'int8 runs on ONNX Runtime, and ' if request.precision == 'int8' else ''}this "
                "ONNX Runtime build has no CUDA provider "
                "(pip install onnxruntime-gpu in place of onnxruntime, or run fp32/bf16 on the keras runtime)."
            )
        return "cpu"
    if machine.keras_gpu_problem is None:
        return "gpu"
    if request.device == "gpu":
        raise UserError(
            f"--device gpu: {machine.keras_gpu_problem}. For GPU support: {GPU_INSTALL_HINT}, on a machine with an "
            "NVIDIA driver."
        )
    return "cpu"


# The CPUs that multiply uint8 × int8 into 32 bits (VNNI's vpdpbusd, AMX's tiles).
VNNI_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")

# What --runtime auto takes on the CPU for each precision: OpenVINO where the CPU has one of
# these flags, else ONNX Runtime (bf16: Keras). Measured end to end on 500×375 JPEGs (README
# "Runtimes"): fp32 on AVX-512 1.1× ONNX Runtime (Xeon with AMX, Zen 4; v1 graphs only: on the
# v2 ones OpenVINO fp32 ran at 0.83-0.88 of ONNX Runtime); int8, NNCF's graph,
# 1.9× our QDQ graph on ONNX Runtime with AMX; bf16 only OpenVINO has real kernels for. On
# AVX2 alone ONNX Runtime stays (OpenVINO not measured faster there).
OPENVINO_FLAGS = {  # the fastest first: the one the summary names
    "fp32": ("avx512f",),
    "bf16": ("amx_bf16", "avx512_bf16"),
    "int8": VNNI_FLAGS,
}


def int8_weight_bits(flags: frozenset[str] | set[str]) -> int:
    """The int8 graph's weight width for a CPU with ``flags``: 8 with VNNI or AMX; 7 elsewhere.
    Without VNNI both runtimes multiply uint8 × int8 pairs with ``vpmaddubsw``, whose 16-bit
    sum saturates past 32,767 (2·255·127 = 64,770): the results then depend on the CPU (pooled
    cosine down to 0.98 on AVX2). 7-bit weights keep every pair within 2·255·64 = 32,640, so
    the arithmetic is exact there too (ONNX Runtime's ``reduce_range``, NNCF's overflow fix)."""
    return 8 if set(flags) & set(VNNI_FLAGS) else 7


def precision_shown(config: ModelConfig) -> str:
    """The precision as run, for the summary line: int8 with its weight width and why."""
    if config.precision != "int8":
        return config.precision
    if config.weight_bits is None:
        return "int8, weights by each node's CPU"
    return f"int8, {config.weight_bits}-bit weights{': no VNNI' if config.weight_bits == 7 else ''}"


def for_this_node(config: ModelConfig) -> ModelConfig:
    """A Ray actor's copy of the driver's config: int8's weight width for the CPU it runs on
    (a cluster may mix AVX2 and VNNI machines; a graph made for one is not exact on the other)."""
    if config.weight_bits is not None:
        return config
    return dataclasses.replace(config, weight_bits=int8_weight_bits(cpu_flags()))


def _runtime(request: ModelRequest, machine: Machine, precision: str, device: str, model: str) -> tuple[str, str]:
    """(runtime, why). "auto" → keras on a GPU for fp32/bf16 (Keras on JAX was the fastest GPU
    path), int8 on ONNX Runtime there; on the CPU by ``OPENVINO_FLAGS``, else ONNX Runtime when
    it is installed (it starts without TensorFlow), else keras. int8 exists on onnx and openvino
    only."""
    if request.runtime != "auto":
        return request.runtime, ""
    if device == "gpu":
        return ("onnx" if precision == "int8" else "keras"), "auto: the GPU"
    found = [flag for flag in OPENVINO_FLAGS[precision] if flag in machine.cpu_flags]
    if precision == "fp32" and architecture(model).version == 2:
        found = []  # the v2 graphs' pre-activation BNs: OpenVINO fp32 ran at 0.83-0.88 of ONNX Runtime
    if found and machine.openvino:
        return "openvino", f"auto: {precision} on {found[0]}"
    if precision == "int8":
        return "onnx", "auto"
    if precision == "bf16":
        return "keras", "auto: OpenVINO is not installed"
    return ("onnx", "auto") if machine.onnxruntime else ("keras", "auto: ONNX Runtime is not installed")


def _precision(request: ModelRequest, machine: Machine, device: str) -> tuple[str, str | None]:
    """(precision, warning). bf16 where the machine computes in bf16 (a GPU, or an
    AVX512-BF16/AMX CPU); elsewhere it would be emulated (no faster, less exact), so fp32."""
    if request.precision != "bf16" or device == "gpu" or machine.bf16:
        return request.precision, None
    return "fp32", (
        "warning: --precision bf16: no bf16 arithmetic here (needs an AVX512-BF16/AMX CPU or a GPU); running fp32"
    )


def _model(request: ModelRequest, head: Head | None) -> str:
    """The model asked for, else the head's, else ResNet50."""
    return request.model or (head.option("model") if head is not None else DEFAULT_MODEL)


def resolve(
    request: ModelRequest,
    include_top: bool = True,
    pooling: str | None = None,
    with_weights: bool = True,
    local: bool = True,
) -> ModelConfig:
    """The run's one ModelConfig. Its I/O, all here: the head read, the weights located (and
    downloaded where allowed), this machine probed (``local``; a Ray run leaves the device to
    the cluster); then ``settle`` decides and its warnings go to stderr."""
    head = read_head(request.head) if request.head else None
    weights = None
    if with_weights:
        weights = locate(
            request.weights,
            offline=request.offline,
            include_top=include_top,
            timeout=request.fetch_timeout,
            model=_model(request, head),
        )
    machine = probe(gpu_questions(request) if local else frozenset(), request.device)
    config, warnings = settle(request, machine, weights, head, include_top, pooling, local)
    for warning in warnings:
        stderr_line(warning)
    return config


def settle(
    request: ModelRequest,
    machine: Machine,
    weights: ResolvedWeights | None = None,
    head: Head | None = None,
    include_top: bool = True,
    pooling: str | None = None,
    local: bool = True,
) -> tuple[ModelConfig, tuple[str, ...]]:
    """(the ModelConfig, warnings for the user): every option settled, no I/O. ``weights``:
    the located file (None: a model without weights, its spec's defaults). The device first
    (``local``: on ``machine``; a Ray run leaves it as asked), then bf16 (where it falls back
    to fp32, "auto" picks the fp32 runtime), the runtime, int8's form and the threads. A head
    is checked against the weights and options before anything is built."""
    model = _model(request, head)
    spec = weights.spec if weights is not None else default_weights(model)
    md5 = weights.md5 if weights is not None else None
    if head is not None:
        check_fits(head, md5, _asked(request))
    warnings = []
    device = _device(request, machine) if local else request.device
    if local and request.threads > machine.cores:
        warnings.append(
            f"warning: --threads {request.threads} on {machine.cores} cores: threads wait for each other "
            "(slower than one per core); 0 means one per core"
        )
    precision, fallback = _precision(request, machine, device)
    warnings += [fallback] if fallback else []
    runtime, reason = _runtime(request, machine, precision, device, model)
    # int8's form, settled whatever the precision (a config changed to int8 later keeps it right)
    weight_bits = None if not local else 8 if device == "gpu" else int8_weight_bits(machine.cpu_flags)
    config = ModelConfig(
        weights=str(weights.path) if weights is not None else None,
        weights_md5=md5,
        model=model,
        fast_decode=request.fast_decode,
        fetch_timeout=request.fetch_timeout,
        include_top=include_top,
        pooling=pooling,
        runtime=runtime,
        runtime_reason=reason,
        precision=precision,
        weight_bits=weight_bits,
        device=device,
        threads=request.threads or (machine.cores if local else 0),
        calibration=request.calibration,
        head=head,
        **_numerics(request, spec, head),
    )
    return config, tuple(warnings)
