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

        from .model_cache import ensure_onnx_model, ensure_openvino_int8
        from .openvino_runtime import OpenVinoRuntime, compile_model

        if config.precision == "int8":
            graph = ensure_openvino_int8(config, quiet)
        else:  # bf16: OpenVINO's own, from the fp32 graph
            graph = ensure_onnx_model(dataclasses.replace(config, precision="fp32"), quiet)
        return OpenVinoRuntime(compile_model(graph, config.precision, config.threads), batch_size)
    from .keras_runtime import KerasRuntime, build_model

    return KerasRuntime(build_model(config), batch_size)
