"""Open the runtime a resolved ModelConfig names: model built (or exported) once."""

from __future__ import annotations

from ..config import ModelConfig
from .base import Runtime


def open_runtime(config: ModelConfig, batch_size: int, quiet: bool = True) -> Runtime:
    if config.runtime == "onnx":
        from .model_cache import ensure_onnx_model
        from .onnx_runtime import OnnxRuntime, open_session

        return OnnxRuntime(open_session(ensure_onnx_model(config, quiet), config.device, config.threads), batch_size)
    if config.runtime == "openvino":
        import dataclasses

        from .model_cache import ensure_onnx_model
        from .openvino_runtime import OpenVinoRuntime, compile_model

        graph_precision = "int8" if config.precision == "int8" else "fp32"  # bf16: OpenVINO's, from the fp32 graph
        graph = ensure_onnx_model(dataclasses.replace(config, precision=graph_precision), quiet)
        return OpenVinoRuntime(compile_model(graph, config.precision, config.threads), batch_size)
    from .keras_runtime import KerasRuntime, build_model

    return KerasRuntime(build_model(config), batch_size)
