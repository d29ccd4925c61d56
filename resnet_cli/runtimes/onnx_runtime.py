"""The ONNX Runtime path: a lean session on a model file (model_cache.py makes and caches it).

Once the model is cached a run imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np

from ..backend import cpu_flags
from ..console import stderr_line
from ..storage import cache_lock, compiled_dir, hash_of, is_verified, write_atomic
from .base import Runtime


class OnnxRuntime(Runtime):
    name = "onnx"
    any_batch = True

    def __init__(self, session, batch_size: int):
        self.session = session
        self.batch_size = batch_size
        self._input = session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]


def open_session(model: Path, device: str = "cpu", threads: int = os.cpu_count() or 1):
    """An ONNX Runtime session on ``device`` ("cpu" or "gpu", as settled) with ``threads``
    intra-op threads. On the CPU it loads ORT's own fully optimized form of the graph, cached
    per machine: optimizing 100 MB of graph costs 0.1-0.3 s of every cold start, loading the
    result ~0.06 s."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # its environment's own lines (telemetry, colour codes) stay off stderr
    if device == "gpu":
        return ort.InferenceSession(
            str(model), _options(ort, threads), providers=["CUDAExecutionProvider", "CPUExecutionProvider"]
        )
    return _cpu_session(ort, Path(model), threads)


def _options(ort, threads: int, optimize: bool = True, save_to: Path | None = None):
    options = ort.SessionOptions()
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    if save_to is not None:
        options.optimized_model_filepath = str(save_to)
    return options


def optimized_path(model: Path) -> Path:
    """Where ORT's optimized form of ``model`` lives for this machine: its layouts (NCHWc
    blocks) and fusions are chosen for this CPU and this ORT version, so both are in the key."""
    import platform

    import onnxruntime as ort

    machine = "|".join((ort.__version__, platform.machine(), *sorted(cpu_flags())))
    return compiled_dir("onnxruntime") / f"{model.stem}-{hashlib.sha256(machine.encode()).hexdigest()[:12]}.onnx"


def _cpu_session(ort, model: Path, threads: int):
    """The optimized graph when it is cached and whole; else the session on ``model`` that
    writes it (under a lock, moved into place whole). A cache that cannot be written, or an
    optimized file ORT refuses, costs only the optimization time."""
    optimized = optimized_path(model)
    if (session := _load_optimized(ort, optimized, threads)) is not None:
        return session
    with cache_lock(optimized.with_suffix(".lock")) as held:
        if not held:
            return ort.InferenceSession(str(model), _options(ort, threads), providers=["CPUExecutionProvider"])
        if (session := _load_optimized(ort, optimized, threads)) is not None:  # written while this one waited
            return session
        if optimized.exists():
            stderr_line(f"the cached optimized graph {optimized.name} is damaged: optimizing it again")
        temporary = optimized.with_name(f".{optimized.name}.{os.getpid()}.tmp")
        try:
            session = ort.InferenceSession(
                str(model), _options(ort, threads, save_to=temporary), providers=["CPUExecutionProvider"]
            )
            with contextlib.suppress(OSError):  # a full disk leaves it unwritten: this run's session is whole
                write_atomic(optimized.with_suffix(".sha256"), hash_of(temporary, "sha256").encode())
                os.replace(temporary, optimized)
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return session


def _load_optimized(ort, optimized: Path, threads: int):
    """A session on the cached optimized graph (nothing left to optimize), or None."""
    if not is_verified(optimized):
        return None
    try:
        return ort.InferenceSession(
            str(optimized), _options(ort, threads, optimize=False), providers=["CPUExecutionProvider"]
        )
    except Exception:  # noqa: BLE001 - ORT's own exception types: optimize from the graph instead
        return None
