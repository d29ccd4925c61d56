"""Open the runtime a resolved ModelConfig names: model built (or exported) once."""

from __future__ import annotations

from ..config import ModelConfig
from .base import Runtime


def open_runtime(config: ModelConfig, batch_size: int, quiet: bool = True) -> Runtime:
    if config.runtime == "onnx":
        from .model_cache import ensure_onnx_model
        from .onnx_runtime import OnnxRuntime, open_session

        return OnnxRuntime(open_session(ensure_onnx_model(config, quiet), config.device, config.threads), batch_size)
    from .keras_runtime import KerasRuntime, build_model

    return KerasRuntime(build_model(config), batch_size)
