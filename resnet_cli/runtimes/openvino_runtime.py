"""The OpenVINO path: the graph the exporter writes (preprocessing in it, uint8 in), compiled
by OpenVINO for this CPU — f32, bf16 (on AVX512-BF16/AMX, OpenVINO's fastest CPU precision
there) or our int8 QDQ model.

Compiled models are cached (OpenVINO's ``CACHE_DIR`` under the project's cache), one
compilation per cached graph and precision at a time: several runs or Ray actors starting
together compile once, the others load the blob.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..backend import import_openvino
from ..storage import cache_lock, compiled_dir
from .base import Runtime

# OpenVINO's precision hint per precision: int8 runs the quantized graph with the rest in f32.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


class OpenVinoRuntime(Runtime):
    name = "openvino"

    def __init__(self, compiled, batch_size: int):
        self.request = compiled.create_infer_request()
        self.batch_size = batch_size

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch})[0]


def compile_model(model: Path, precision: str = "fp32", threads: int = os.cpu_count() or 1):
    """``model`` (an ONNX file or IR of the cache) compiled for the CPU at ``precision`` on
    ``threads`` inference threads, one request at a time (latency hint).
    Once a marker says this graph and precision were compiled here, OpenVINO loads its blob
    without the lock (whose import alone costs ~30 ms of a cold start). Where the cache cannot
    be written, it compiles for this run only."""
    ov = import_openvino()
    folder = compiled_dir("openvino")
    config = {
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
    }
    core = ov.Core()
    marker = folder / f"{Path(model).stem}-{precision}.compiled"
    if marker.exists():
        core.set_property({"CACHE_DIR": str(folder)})
        return core.compile_model(str(model), "CPU", config)
    with cache_lock(marker.with_suffix(".lock")) as held:
        if not held:
            return core.compile_model(str(model), "CPU", config)
        core.set_property({"CACHE_DIR": str(folder)})
        compiled = core.compile_model(str(model), "CPU", config)
        marker.touch()
        return compiled
