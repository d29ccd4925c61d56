"""Choose and open the runtime for a run: weights located once, model built once."""

from __future__ import annotations

from ..errors import UserError
from ..options import Options
from ..weights import locate
from . import Runtime, onnxruntime_available


def resolve_runtime_name(options: Options) -> str:
    """"auto" → onnx when ONNX Runtime is installed (fastest on CPU, starts without TensorFlow),
    else keras. int8 exists only on onnx."""
    if options.runtime != "auto":
        return options.runtime
    return "onnx" if onnxruntime_available() else "keras"


def open_runtime(options: Options, batch_size: int, include_top: bool = True, pooling: str | None = None) -> Runtime:
    weights = locate(options.weights, offline=options.offline, include_top=include_top)
    name = resolve_runtime_name(options)
    if name == "onnx":
        from .onnx_runtime import open_onnx_runtime

        return open_onnx_runtime(options, weights, batch_size, include_top=include_top, pooling=pooling)
    if options.precision != "fp32":
        raise UserError(f"--precision {options.precision} needs --runtime onnx.")
    from .keras_runtime import KerasRuntime, build_model

    model = build_model(
        weights,
        include_top=include_top,
        pooling=pooling,
        pool1_padding=options.pool1_padding,
        bn_epsilon=options.bn_epsilon,
        device=options.device,
    )
    return KerasRuntime(model, batch_size, precision=options.precision)
