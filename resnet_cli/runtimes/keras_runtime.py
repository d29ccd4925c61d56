"""The Keras runtime: our ResNet50 with preprocessing in the graph, weights loaded by name.

Works on any Keras 3 backend (TensorFlow here; ``KERAS_BACKEND=jax`` on a GPU machine).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import numpy as np

from ..errors import UserError
from . import Runtime


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide the C++ start-up chatter TensorFlow prints straight to fd 2 on import; show it
    only if the import fails."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def import_keras(device: str = "auto", threads: int = 0):
    """Import Keras once, quietly, on the requested device ("auto", "cpu", "gpu"), with
    ``threads`` inference threads (0: TensorFlow's default, one per core)."""
    if "keras" not in sys.modules:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        if threads:
            os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
        if device == "cpu":
            os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
            os.environ.setdefault("JAX_PLATFORMS", "cpu")
        with _quiet_native_stderr():
            import keras  # noqa: F401
    import keras

    if device == "gpu" and not _has_gpu(keras):
        raise UserError("--device gpu: no GPU is visible to the Keras backend.")
    return keras


def _has_gpu(keras) -> bool:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def build_model(weights, include_top=True, pooling=None, pool1_padding=None, bn_epsilon=None, preprocess=True, device="auto", precision="fp32", threads=0):
    """Our ResNet50 with the given weights (a ``ResolvedWeights``) loaded by layer name."""
    import_keras(device, threads)
    from ..model import resnet50
    from ..weights import load_into, read_weights

    model = resnet50(
        include_top=include_top,
        pooling=pooling,
        preprocess=preprocess,
        precision=precision,
        **weights.spec.numerics(pool1_padding, bn_epsilon),
    )
    load_into(model, read_weights(weights.path), source=weights.path)
    return model


class KerasRuntime(Runtime):
    name = "keras"

    def __init__(self, model, batch_size: int, precision: str = "fp32"):
        self.model = model
        self.batch_size = batch_size
        self.precision = precision
        self.calls = 0

    def _run(self, batch: np.ndarray) -> np.ndarray:
        # A lone photo runs eagerly: tracing the graph costs more (1.2 s) than the eager call
        # (0.5 s). Every later call, and every bigger batch, runs the traced graph.
        self.calls += 1
        if self.calls == 1 and self.batch_size == 1:
            outputs = self.model(batch, training=False)
        else:
            outputs = self.model.predict_on_batch(batch)
        return np.asarray(outputs, dtype=np.float32)  # bf16 outputs too
