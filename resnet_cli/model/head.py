"""A head: the user's own classes as a linear layer on the 2048-d pooled features.

``train`` writes it; ``--head`` puts it in place of ``fc1000`` (Keras model and ONNX graph
alike), so every runtime, precision and engine runs it unchanged. The file (.npz, no pickles)
holds the kernel (2048, C), the bias (C,), the class names in order and, as JSON, what the
features were computed with: the base weights' md5 and every option that changes them.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..storage import hash_of
from .spec import DEFAULT_MODEL, FEATURES, architecture

FORMAT = "resnet-classify-head/1"
_BEFORE_THE_FAMILY = {"model": DEFAULT_MODEL}  # heads written before --model were on ResNet50
# The options a head's features depend on (precision and runtime are not among them: int8
# and bf16 approximate the same features).
FEATURE_OPTIONS = (
    "model",
    "input_size",
    "mean_bgr",
    "pool1_padding",
    "bn_epsilon",
    "resize",
    "interpolation",
    "crop_ratio",
)


@dataclass(frozen=True)
class Head:
    """A head file as the run's config carries it: where it is, its hash (part of the ONNX
    cache key), its classes and what it was trained on. The arrays are read by the model
    builders only (``arrays``)."""

    path: str
    sha256: str
    classes: tuple[str, ...]
    base_md5: str
    trained_with: tuple[tuple[str, object], ...]  # FEATURE_OPTIONS → value, hashable

    def option(self, name: str):
        return dict(self.trained_with)[name]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(kernel (2048, C), bias (C,)), float32."""
        with np.load(self.path, allow_pickle=False) as data:
            return data["kernel"].astype(np.float32), data["bias"].astype(np.float32)


def _bad(path, reason: str) -> UserError:
    return UserError(f"--head {path}: {reason}")


def read_head(path: str) -> Head:
    """The head at ``path``, checked: a file ``train`` wrote, with consistent shapes."""
    file = Path(path)
    if not file.is_file():
        raise _bad(path, "no such file.")
    if not zipfile.is_zipfile(file):
        raise _bad(path, "not a head file written by 'resnet-classify train' (not an .npz archive).")
    try:
        with np.load(file, allow_pickle=False) as data:
            kernel, bias, classes = data["kernel"], data["bias"], [str(c) for c in data["classes"]]
            meta = json.loads(str(data["meta"]))
        options = {**_BEFORE_THE_FAMILY, **meta["trained_with"]}
        trained_with = tuple(
            (name, tuple(options[name]) if isinstance(options[name], list) else options[name])
            for name in FEATURE_OPTIONS
        )
        base_md5 = meta["base_weights_md5"]
    except (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as error:
        raise _bad(
            path, f"not a head file written by 'resnet-classify train' ({type(error).__name__}: {error})."
        ) from None
    if meta.get("format") != FORMAT:
        raise _bad(path, f"unknown head format {meta.get('format')!r} (this version reads {FORMAT}).")
    if kernel.shape != (FEATURES, len(classes)) or bias.shape != (len(classes),) or len(classes) < 2:
        raise _bad(
            path, f"kernel {kernel.shape}, bias {bias.shape} and {len(classes)} class names do not fit together."
        )
    return Head(str(file.resolve()), hash_of(file, "sha256"), tuple(classes), base_md5, trained_with)


def head_bytes(kernel: np.ndarray, bias: np.ndarray, classes, config, training: dict) -> bytes:
    """The .npz a head is saved as. ``config``: the features' resolved ModelConfig."""
    meta = {
        "format": FORMAT,
        "base_weights_md5": config.weights_md5,
        "pooling": config.pooling,
        "trained_with": {name: getattr(config, name) for name in FEATURE_OPTIONS},
        "training": training,
    }
    buffer = io.BytesIO()
    np.savez(
        buffer,
        kernel=np.asarray(kernel, np.float32),
        bias=np.asarray(bias, np.float32),
        classes=np.array(list(classes), dtype=str),
        meta=np.array(json.dumps(meta, sort_keys=True)),
    )
    return buffer.getvalue()


def with_head(weights: dict[str, list[np.ndarray]], head: Head | None) -> dict[str, list[np.ndarray]]:
    """The network's weights with its top layer replaced by the head (no copy of the rest)."""
    if head is None:
        return weights
    return {**weights, architecture(head.option("model")).top_layer: list(head.arrays())}


def check_fits(head: Head, weights_md5: str | None, options: dict) -> None:
    """One line when the head was trained on another model, other base weights or other
    feature options (the model first: it says the most)."""
    asked = options.get("model")
    if asked is not None and asked != head.option("model"):
        raise _bad(
            head.path,
            f"trained with --model {head.option('model')}; this run asks for --model {asked} (leave it out to use "
            "the head's).",
        )
    if weights_md5 is not None and head.base_md5 != weights_md5:
        raise _bad(
            head.path,
            f"trained on base weights with md5 {head.base_md5}; this run's weights have md5 {weights_md5} "
            "(pass --weights with the file the head was trained on).",
        )
    for name in FEATURE_OPTIONS:
        if options.get(name) is not None and options[name] != head.option(name):
            flag = "--" + name.replace("_", "-")
            raise _bad(
                head.path,
                f"trained with {flag} {head.option(name)}; this run asks for {flag} {options[name]} (leave it out "
                "to use the head's).",
            )
