"""Inference runtimes. Each takes uint8 RGB batches (N, size, size, 3) and returns (N, outputs).

Every runtime pads to one fixed batch shape so nothing is re-traced or re-planned per call —
unless it is told not to (``pad = False``) and its graph takes any batch (``any_batch``): a
server's batches vary, and a lone request padded to 32 would cost 32 photos' time.
"""

from __future__ import annotations

import numpy as np


class Runtime:
    """The one interface the engines see."""

    name = "runtime"
    batch_size = 1
    any_batch = False  # the graph runs any batch size as fast as a fixed one (ONNX Runtime, OpenVINO)
    pad = True

    def _run(self, batch: np.ndarray) -> np.ndarray:  # exactly batch_size images
        raise NotImplementedError

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Any number of images → outputs, run in fixed-size (zero-padded) batches."""
        count = len(images)
        outputs = []
        for start in range(0, count, self.batch_size):
            chunk = images[start : start + self.batch_size]
            filled = len(chunk)
            if filled < self.batch_size and (self.pad or not self.any_batch):
                padding = np.zeros((self.batch_size - filled, *chunk.shape[1:]), dtype=chunk.dtype)
                chunk = np.concatenate([chunk, padding])
            outputs.append(np.asarray(self._run(np.ascontiguousarray(chunk)))[:filled])
        return np.concatenate(outputs) if outputs else np.zeros((0, 0), dtype=np.float32)
