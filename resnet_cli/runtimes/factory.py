"""Choose and open the runtime for a run: weights located once, model built once."""

from __future__ import annotations

import dataclasses

from ..errors import UserError
from ..options import Options
from ..weights import locate
from . import Runtime, cpu_has_bf16, onnxruntime_available


def resolve_runtime_name(options: Options) -> str:
    """"auto" → onnx when ONNX Runtime is installed (fastest on CPU, starts without TensorFlow),
    else keras. int8 exists only on onnx, bf16 only on keras."""
    if options.runtime != "auto":
        return options.runtime
    if options.precision == "bf16":
        return "keras"
    return "onnx" if onnxruntime_available() else "keras"


def resolve_precision(options: Options) -> Options:
    """bf16 where the machine computes in bf16 (AVX512-BF16/AMX CPU, or a GPU); elsewhere it
    would be emulated (no faster, less exact), so fall back to fp32 and say so."""
    if options.precision != "bf16":
        return options
    if options.runtime == "onnx":
        raise UserError("--precision bf16 runs on the keras runtime (ONNX Runtime has no bf16 CPU kernels). Received: --runtime onnx")
    if cpu_has_bf16() or (options.device != "cpu" and _gpu_visible(options.device)):
        return options
    from ..output import stderr_line

    stderr_line("warning: --precision bf16: no bf16 arithmetic here (needs an AVX512-BF16/AMX CPU or a GPU); running fp32")
    return dataclasses.replace(options, precision="fp32")


def _gpu_visible(device: str) -> bool:
    """Ask the Keras backend, but only where a GPU driver exists (importing it costs seconds)."""
    import os

    if not any(os.path.exists(p) for p in ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")):
        return False
    from .keras_runtime import _has_gpu, import_keras

    return _has_gpu(import_keras(device))


def open_runtime(options: Options, batch_size: int, include_top: bool = True, pooling: str | None = None) -> Runtime:
    options = resolve_precision(options)
    weights = locate(options.weights, offline=options.offline, include_top=include_top)
    name = resolve_runtime_name(options)
    if name == "onnx":
        from .onnx_runtime import open_onnx_runtime

        return open_onnx_runtime(options, weights, batch_size, include_top=include_top, pooling=pooling)
    if options.precision == "int8":
        raise UserError("--precision int8 needs --runtime onnx.")
    from .keras_runtime import KerasRuntime, build_model

    model = build_model(
        weights,
        include_top=include_top,
        pooling=pooling,
        pool1_padding=options.pool1_padding,
        bn_epsilon=options.bn_epsilon,
        device=options.device,
        precision=options.precision,
        threads=options.threads,
    )
    return KerasRuntime(model, batch_size, precision=options.precision)
