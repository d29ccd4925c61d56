"""What made an output's records: the settings that change a record (the model, the weights'
and the head's digests, the runtime and precision as run, the preprocessing, top-k), kept
beside the output as ``OUTPUT.settings.json`` (``DIR/settings.json`` for a shard folder),
written whole, so that ``--resume`` refuses to mix records made otherwise.

Why beside the file and not in each record: the records stay what ``-f jsonl`` and ``-f csv``
have always been (programs reading them see no new column), and one small file states what a
run of any length was made with; Parquet also carries it in its key-value metadata, the HTML
page in its footer."""

from __future__ import annotations

import json

from ..storage import join, local_path, open_write, read_bytes, split, write_atomic

NAME = "settings.json"
KEY = "resnet_classify"  # Parquet key-value metadata


def describe(config, top_k: int | None, normalized: bool = False) -> dict:
    """The settings of a run of the resolved ``config`` that a record depends on (feature
    vectors — ``embed`` — also say their pooling and whether they were L2-normalised)."""
    described = {
        "model": config.model,
        "weights_md5": config.weights_md5,
        "head_sha256": config.head.sha256 if config.head is not None else None,
        "runtime": config.runtime,
        "precision": config.precision,
        "weight_bits": config.weight_bits if config.precision == "int8" else None,
        "input_size": config.input_size,
        "preprocessing": config.preprocessing,
        "resize": config.resize,
        "interpolation": config.interpolation,
        "crop_ratio": config.crop_ratio,
        "pool1_padding": config.pool1_padding,
        "bn_epsilon": config.bn_epsilon,
        "fast_decode": config.fast_decode,
        "top_k": top_k,
    }
    if not config.include_top:
        described.update(features=config.pooling, normalized=normalized)
    return described


def sidecar(output: str, shard_folder: bool) -> str:
    if shard_folder:
        return join(output, NAME)
    folder, name = split(output)
    return join(folder, f"{name}.{NAME}")


def read(output: str, shard_folder: bool) -> dict | None:
    """The settings an output was made with; None when it has none (a new output, or one
    written before outputs recorded them)."""
    try:
        return json.loads(read_bytes(sidecar(output, shard_folder)))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None


def write(output: str, shard_folder: bool, settings: dict) -> None:
    """Whole or not at all: a temporary moved over it (an object appears whole when closed)."""
    target = sidecar(output, shard_folder)
    data = json.dumps(settings, indent=1, sort_keys=True).encode()
    local = local_path(target)
    if local is not None:
        from pathlib import Path

        write_atomic(Path(local), data)
        return
    with open_write(target) as handle:
        handle.write(data)


OPTIONS = {  # how the user changes each setting, for the message
    "model": "--model",
    "weights_md5": "--weights",
    "head_sha256": "--head",
    "runtime": "--runtime",
    "precision": "--precision",
    "weight_bits": "the int8 form (this CPU's)",
    "input_size": "the model's input size",
    "preprocessing": "the preprocessing",
    "resize": "--resize",
    "interpolation": "--interpolation",
    "crop_ratio": "the crop ratio",
    "pool1_padding": "--pool1-padding",
    "bn_epsilon": "--bn-epsilon",
    "fast_decode": "--fast-decode",
    "top_k": "-k/--top-k",
}


def differences(made: dict, now: dict) -> list[str]:
    """Each setting that differs, in words: ``--model: resnet50 there, resnet101 now``."""
    return [
        f"{OPTIONS.get(key, key)}: {_shown(made.get(key))} there, {_shown(now.get(key))} now"
        for key in sorted(set(made) | set(now))
        if made.get(key) != now.get(key)
    ]


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, str) and len(value) >= 32 and all(c in "0123456789abcdef" for c in value):
        return value[:12] + "…"
    return str(value)
