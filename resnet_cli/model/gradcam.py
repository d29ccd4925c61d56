"""Grad-CAM on the last stage's output (res5c; v2: after ``post_bn``): where in the photo the
network saw the class.

Every ResNet ends in global average pooling and one dense layer, so the gradient of class c's
logit with respect to that activation A is W[:, c] / (7·7) at every position: Grad-CAM's
channel weights are exactly the top layer's column (Zhou et al.'s CAM). We use that closed form —
no backend-specific autodiff, so it runs on any Keras backend — and the tests check it against
a Grad-CAM computed with the backend's own gradients.
"""

from __future__ import annotations

import numpy as np


def class_activation_map(features: np.ndarray, fc_kernel: np.ndarray, class_index: int) -> np.ndarray:
    """(7, 7, 2048) res5c activation → (7, 7) map in [0, 1] for ``class_index``."""
    height, width = features.shape[:2]
    alpha = fc_kernel[:, class_index] / (height * width)  # spatial mean of d logit / d A
    cam = np.maximum(features @ alpha, 0.0)
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).astype(np.float32)


def features_and_scores(model, image: np.ndarray, feature_layer: str = "res5c_relu"):
    """One uint8 image → (the last stage's activation (7, 7, 2048), class probabilities)."""
    import keras

    probe = keras.Model(model.input, [model.get_layer(feature_layer).output, model.output])
    features, probabilities = probe.predict_on_batch(image[None])
    return np.asarray(features)[0], np.asarray(probabilities)[0]


def _jet(values: np.ndarray) -> np.ndarray:
    """[0, 1] → RGB uint8 with the classic jet colour map."""
    channels = [np.clip(1.5 - np.abs(4 * values - shift), 0, 1) for shift in (3, 2, 1)]
    return (np.stack(channels, axis=-1) * 255).astype(np.uint8)


def overlay(photo, cam: np.ndarray, alpha: float = 0.5):
    """The heat-map upsampled to the photo's size and blended over it (a PIL image)."""
    from PIL import Image

    heat = Image.fromarray(cam.astype(np.float32)).resize(photo.size, Image.Resampling.BILINEAR)
    colours = _jet(np.clip(np.asarray(heat), 0, 1))
    blended = (1 - alpha) * np.asarray(photo, dtype=np.float32) + alpha * colours
    return Image.fromarray(np.clip(blended + 0.5, 0, 255).astype(np.uint8))
