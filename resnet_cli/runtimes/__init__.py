"""Inference runtimes. Each takes uint8 RGB batches (N, 224, 224, 3) and returns (N, outputs).

Every runtime pads to one fixed batch shape so nothing is re-traced or re-planned per call.
"""

from __future__ import annotations

import numpy as np

RUNTIMES = ("auto", "keras", "onnx")


class Runtime:
    """The one interface the pipeline sees."""

    name = "runtime"
    batch_size = 1

    def _run(self, batch: np.ndarray) -> np.ndarray:  # exactly batch_size images
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Any number of images → outputs, run in fixed-size (zero-padded) batches."""
        count = len(images)
        outputs = []
        for start in range(0, count, self.batch_size):
            chunk = images[start : start + self.batch_size]
            filled = len(chunk)
            if filled < self.batch_size:
                padding = np.zeros((self.batch_size - filled, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            outputs.append(np.asarray(self._run(np.ascontiguousarray(chunk)))[:filled])
        return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)


def onnxruntime_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def cpu_has_bf16() -> bool:
    """Whether this CPU computes in bfloat16 (AVX512-BF16 or AMX), from /proc/cpuinfo's flags."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags
