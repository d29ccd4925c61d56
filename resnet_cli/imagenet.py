"""ImageNet's 1000-class index (shipped as package data) and top-k decoding.

Pure numpy; no Keras import, so the ONNX path and the output sinks can use it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .spec import NUM_CLASSES


@dataclass(frozen=True)
class Prediction:
    rank: int
    index: int
    wnid: str
    label: str
    score: float

    def as_dict(self) -> dict:
        return {
            "rank": self.rank,
            "index": self.index,
            "wnid": self.wnid,
            "label": self.label,
            "score": self.score,
        }


@functools.lru_cache(maxsize=1)
def class_index() -> tuple[tuple[str, str], ...]:
    """The standard ``imagenet_class_index.json``, shipped as package data: (wnid, label) by index."""
    text = resources.files("resnet_cli").joinpath("data/imagenet_class_index.json").read_text()
    raw = json.loads(text)
    return tuple((raw[str(i)][0], raw[str(i)][1]) for i in range(NUM_CLASSES))


def top_k(probabilities: np.ndarray, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """(N, 1000) scores → the k best class indices (N, k) and their scores (N, k), best first.

    Ties are broken by the lower class index, so the order is deterministic.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or probabilities.shape[1] != NUM_CLASSES:
        raise ValueError(
            f"Expected scores of shape (N, {NUM_CLASSES}). Received: shape={probabilities.shape}"
        )
    if not 1 <= k <= NUM_CLASSES:
        raise ValueError(f"k must be between 1 and {NUM_CLASSES}. Received: k={k}")
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probabilities, order, axis=1)


def predictions(indices: np.ndarray, scores: np.ndarray) -> list[list[Prediction]]:
    """Rows of (index, score) → labelled, ranked predictions."""
    classes = class_index()
    return [
        [
            Prediction(rank, int(i), classes[i][0], classes[i][1], float(score))
            for rank, (i, score) in enumerate(zip(row_indices, row_scores), start=1)
        ]
        for row_indices, row_scores in zip(indices, scores)
    ]


def decode_top_k(probabilities: np.ndarray, k: int = 5) -> list[list[Prediction]]:
    """(N, 1000) scores → for each row the k best classes, best first."""
    return predictions(*top_k(probabilities, k))


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
    """" (did you mean: African_elephant, tusker, …?)" from labels that contain the query or
    are spelled like it."""
    import difflib

    labels = list(dict.fromkeys(label for _, label in class_index()))
    containing = [label for label in labels if wanted and wanted in label.lower()]
    close = difflib.get_close_matches(wanted, labels, n=count, cutoff=0.6)
    found = list(dict.fromkeys(containing + close))[:count]
    return f" (did you mean: {', '.join(found)}?)" if found else ""
