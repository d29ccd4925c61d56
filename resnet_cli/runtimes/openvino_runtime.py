"""The OpenVINO path: the graph the exporter writes (preprocessing in it, uint8 in), compiled
by OpenVINO for this CPU — f32, bf16 (on AVX512-BF16/AMX, OpenVINO's fastest CPU precision
there) or our int8 QDQ model.

Compiled models are cached as blobs (``export_model``) beside their sha256, checked before
each load; one compilation per cached graph, precision and machine kind at a time: several
runs or Ray actors starting together compile once, the others load the blob.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np

from ..backend import cpu_flags, import_openvino
from ..console import stderr_line
from ..storage import cache_lock, compiled_dir, is_verified, write_atomic
from .base import Runtime

# OpenVINO's precision hint per precision: int8 runs the quantized graph with the rest in f32.
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


class OpenVinoRuntime(Runtime):
    name = "openvino"
    any_batch = True

    def __init__(self, compiled, batch_size: int):
        self.request = compiled.create_infer_request()
        self.batch_size = batch_size

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.request.infer({0: batch})[0]


def compiled_path(model: Path, precision: str) -> Path:
    """Where the compiled form of ``model`` at ``precision`` lives for this machine: OpenVINO
    compiles for this CPU's instructions and its own version, so both are in the key (a cache
    shared by an AVX2 and an AMX machine keeps one blob for each)."""
    import platform

    machine = "|".join((import_openvino().__version__, platform.machine(), *sorted(cpu_flags())))
    key = hashlib.sha256(machine.encode()).hexdigest()[:12]
    return compiled_dir("openvino") / f"{Path(model).stem}-{precision}-{key}.blob"


def compile_model(model: Path, precision: str = "fp32", threads: int = os.cpu_count() or 1):
    """``model`` (an ONNX file or IR of the cache) compiled for the CPU at ``precision`` on
    ``threads`` inference threads, one request at a time (latency hint). The compiled form is
    cached as a blob with its sha256 (written whole, checked before every load: a damaged blob
    is compiled again, with one line on stderr); several runs or Ray actors starting together
    compile once. Where the cache cannot be written, it compiles for this run only."""
    ov = import_openvino()
    config = {
        "INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": threads,
    }
    core = ov.Core()
    blob = compiled_path(model, precision)
    if (compiled := _load_blob(core, blob, config)) is not None:
        return compiled
    with cache_lock(blob.with_suffix(".lock")) as held:
        if held and (compiled := _load_blob(core, blob, config)) is not None:  # compiled while this one waited
            return compiled
        if held and blob.exists():
            stderr_line(f"the cached compiled model {blob.name} is damaged: compiling it again")
        compiled = core.compile_model(str(model), "CPU", config)
        if held:
            with contextlib.suppress(OSError):  # a full disk leaves it uncached: this run's model is whole
                data = compiled.export_model().getvalue()
                write_atomic(blob.with_suffix(".sha256"), hashlib.sha256(data).hexdigest().encode())
                write_atomic(blob, data)
        return compiled


def _load_blob(core, blob: Path, config: dict):
    """The compiled model from a cached blob that matches its recorded sha256, or None."""
    if not is_verified(blob):
        return None
    try:
        return core.import_model(blob.read_bytes(), "CPU", config)
    except Exception:  # noqa: BLE001 - OpenVINO's own exception types: compile from the graph instead
        return None
