"""The ONNX Runtime path: a lean session on a model file (model_cache.py makes and caches it).

Once the model is cached a run imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import Runtime


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, session, batch_size: int):
        self.session = session
        self.batch_size = batch_size
        self._input = session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("gpu", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "gpu":
        raise UserError("--device gpu: this ONNX Runtime build has no CUDA provider (try --runtime keras).")
    return ["CPUExecutionProvider"]


def open_session(model: Path, device: str = "auto", threads: int = 0):
    """An ONNX Runtime session on ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # its environment's own lines (telemetry, colour codes) stay off stderr
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(model), options, providers=_providers(device))
