"""The Keras runtime: our ResNet with preprocessing in the graph, weights loaded by name.

Works on any Keras 3 backend (TensorFlow here; ``KERAS_BACKEND=jax`` on a GPU machine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backend import import_keras
from .base import Runtime


def build_model(config):
    """Our ResNet for a resolved ``ModelConfig``, its weights loaded by layer name."""
    import_keras(config.device, config.threads)
    from ..model.head import with_head
    from ..model.resnet import from_config
    from ..model.weights import load_into, read_weights

    model = from_config(config)
    weights = read_weights(Path(config.weights), config.model)
    load_into(model, with_head(weights, config.head), source=config.weights)
    return model


class KerasRuntime(Runtime):
    name = "keras"

    def __init__(self, model, batch_size: int):
        self.model = model
        self.batch_size = batch_size
        self.calls = 0
        self._jitted = _jax_predict(model) if _backend() == "jax" else None

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self._jitted is not None:
            return np.asarray(self._jitted(batch), dtype=np.float32)
        # A lone photo runs eagerly: tracing the graph costs more (1.2 s) than the eager call
        # (0.5 s). Every later call, and every bigger batch, runs the traced graph.
        self.calls += 1
        if self.calls == 1 and self.batch_size == 1:
            outputs = self.model(batch, training=False)
        else:
            outputs = self.model.predict_on_batch(batch)
        return np.asarray(outputs, dtype=np.float32)  # bf16 outputs too


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _jax_predict(model):
    """On JAX: the model as one jitted pure function of its weights (traced once per batch
    shape, no per-call Keras bookkeeping: the GPU's fast path). fp32 convolutions and
    matmuls run at full float32 precision ("highest"), not TF32, so a GPU gives the CPU's
    top-5; bf16 models compute in bf16 by their dtype policy."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    full_precision = model.compute_dtype == "float32"

    def forward(trainable, non_trainable, images):
        outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
        return outputs

    jitted = jax.jit(forward)

    def predict(images: np.ndarray):
        if full_precision:
            with jax.default_matmul_precision("highest"):
                return jitted(trainable, non_trainable, images)
        return jitted(trainable, non_trainable, images)

    return predict
