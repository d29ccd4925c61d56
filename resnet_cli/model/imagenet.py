"""ImageNet's 1000-class index (shipped as package data) and top-k decoding.

Pure numpy; no Keras import, so the ONNX path and the output sinks can use it.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

import numpy as np

from ..records import Prediction
from .spec import NUM_CLASSES


@functools.lru_cache(maxsize=1)
def class_index() -> tuple[tuple[str, str], ...]:
    """The standard ``imagenet_class_index.json``, shipped as package data: (wnid, label) by index."""
    text = resources.files("resnet_cli").joinpath("data/imagenet_class_index.json").read_text()
    raw = json.loads(text)
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(NUM_CLASSES))


def top_k(probabilities: np.ndarray, k: int = 5, classes: int = NUM_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """(N, classes) scores → the k best class indices (N, k) and their scores (N, k), best first.

    ``k`` beyond the number of classes gives all of them. Ties are broken by the lower class
    index, so the order is deterministic.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != classes:
        raise ValueError(f"Expected scores of shape (N, {classes}). Received: shape={probabilities.shape}")
    if k < 1:
        raise ValueError(f"k must be at least 1. Received: k={k}")
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(k, classes)]
    return order, np.take_along_axis(probabilities, order, axis=1)


def predictions(indices: np.ndarray, scores: np.ndarray, labels=None) -> list[list[Prediction]]:
    """Rows of (index, score) → labelled, ranked predictions. ``labels``: (wnid, label) per
    class, ImageNet's by default."""
    labels = class_index() if labels is None else labels
    return [
        [
            Prediction(rank, int(i), labels[i][0], labels[i][1], float(score))
            for rank, (i, score) in enumerate(zip(row_indices, row_scores), start=1)
        ]
        for row_indices, row_scores in zip(indices, scores)
    ]


def decode_top_k(probabilities: np.ndarray, k: int = 5, labels=None) -> list[list[Prediction]]:
    """(N, classes) scores → for each row the k best classes, best first."""
    labels = class_index() if labels is None else labels
    return predictions(*top_k(probabilities, k, len(labels)), labels)


def find_class(query: str) -> int:
    """A class given as an index, a wnid or a label (case-insensitive) → its index."""
    if query.isdigit() and int(query) < NUM_CLASSES:
        return int(query)
    wanted = query.strip().lower().replace(" ", "_")
    for index, (wnid, label) in enumerate(class_index()):
        if wanted in (wnid.lower(), label.lower()):
            return index
    raise ValueError(f"Unknown ImageNet class{_suggestions(wanted)}. Received: {query!r}")


def _suggestions(wanted: str, count: int = 5) -> str:
    """ " (did you mean: African_elephant, tusker, …?)" from labels that contain the query or
    are spelled like it."""
    import difflib

    labels = list(dict.fromkeys(label for _, label in class_index()))
    containing = [label for label in labels if wanted and wanted in label.lower()]
    close = difflib.get_close_matches(wanted, labels, n=count, cutoff=0.6)
    found = list(dict.fromkeys(containing + close))[:count]
    return f" (did you mean: {', '.join(found)}?)" if found else ""
