"""The ONNX models a run needs, from the cache or built now (exported, or quantized from the
cached fp32 model): whole or not at all, safe for many processes at once, listed and cleared
by the ``cache`` command.

The cache key covers the weights' md5, every model option and the exporter version, and each
cached file carries its own sha256, so a stale or corrupt file is rebuilt, never used.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..backend import import_openvino
from ..config import ModelConfig
from ..console import stderr_line
from ..model.head import with_head
from ..model.spec import MODEL_NAMES
from ..model.weights import read_weights
from ..storage import COMPILED_FOLDERS, cache_dir, cache_lock, compiled_dir, is_verified, write_atomic
from .onnx_export import EXPORTER_VERSION, OPSET, build_onnx
from .quantize import (
    NNCF_MODELS,
    calibration_files,
    calibration_percentile,
    decode_calibration,
    float_convolutions,
    quantize_int8,
    quantize_openvino_int8,
)

_PREFIXES = tuple(f"{name}-" for name in MODEL_NAMES)  # a cached file's name: MODEL-KEY.onnx


def graph_key(options: dict) -> str:
    """``graph_options`` hashed: the cache file's name."""
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:24]


def graph_options(config: ModelConfig, calibration_digest: str = "") -> dict:
    """Everything that changes the exported graph (also kept beside the cached file, for
    ``resnet-classify cache``)."""
    from importlib.metadata import version

    payload = {
        "model": config.model,
        "weights_md5": config.weights_md5,
        "input_size": config.input_size,
        "preprocessing": config.preprocessing,
        "mean_bgr": list(config.mean_bgr),
        "pool1_padding": config.pool1_padding,
        "bn_epsilon": config.bn_epsilon,
        "include_top": config.include_top,
        "pooling": None if config.include_top else config.pooling,
        "precision": config.precision,
        "calibration": calibration_digest,
        "exporter": EXPORTER_VERSION,
        "opset": OPSET,
        "onnx": version("onnx"),  # read, not imported: import onnx costs ~0.6-1 s of a cached run (ml_dtypes)
    }
    if config.precision == "int8":
        payload["float_convolutions"] = float_convolutions(config.model)
        if (percentile := calibration_percentile(config.model)) is not None:
            payload["percentile"] = percentile
        payload["weight_bits"] = config.weight_bits  # a cache shared by AVX2 and VNNI machines keeps both
    if config.include_top and config.head is not None:
        payload["head"] = config.head.sha256
    return payload


def _store(path: Path, parts: dict[str, bytes], options: dict) -> Path:
    """A model's files (``parts``: suffix → bytes, ``path``'s own first) into the cache, each
    whole, with their sha256s and the options beside them — the digests last, so a model is
    used only once all of it is there. Where the cache cannot be written, into a temporary
    folder for this run, said once on stderr (instead of silently re-exporting)."""
    try:
        for suffix, data in parts.items():
            write_atomic(path.with_suffix(suffix), data)
        write_atomic(path.with_suffix(".json"), json.dumps(options, sort_keys=True).encode())
        digests = "\n".join(hashlib.sha256(data).hexdigest() for data in parts.values())
        write_atomic(path.with_suffix(".sha256"), digests.encode())
        return path
    except OSError as error:
        import atexit
        import shutil

        scratch = Path(tempfile.mkdtemp(prefix=f"{options['model']}-"))
        atexit.register(shutil.rmtree, scratch, True)
        for suffix, data in parts.items():
            (scratch / path.name).with_suffix(suffix).write_bytes(data)
        stderr_line(
            f"warning: cannot write the model cache ({error.strerror or error}: {path.parent}); using a temporary "
            "copy for this run (set RESNET_CLI_CACHE to a writable folder)"
        )
        return scratch / path.name


def ensure_onnx_model(config: ModelConfig, quiet: bool = False) -> Path:
    """The ONNX model for ``config`` (fp32 or int8), from the cache or exported now.

    Safe for many processes at once (runs, Ray actors on one node): a builder holds a lock
    file per cache key, builds in a private temporary folder and moves the finished file into
    place; the others wait on the lock, then find the model verified and use it."""
    files: list[Path] = []
    calibration_digest = ""
    if config.precision == "int8":
        files, calibration_digest = calibration_files(config.calibration)
    options = graph_options(config, calibration_digest)
    path = cache_dir() / "onnx" / f"{config.model}-{graph_key(options)}.onnx"
    return _cached(path, (".onnx",), options, lambda: {".onnx": _build(config, files, quiet)})


def _cached(path: Path, suffixes: tuple[str, ...], options: dict, build) -> Path:
    """``path`` (with its other ``suffixes``' files) from the cache when whole, else ``build()``
    (suffix → bytes) under the key's lock and stored; a process that waited on the lock finds
    the model another one built."""
    parts = [path.with_suffix(suffix) for suffix in suffixes if suffix != path.suffix]
    if is_verified(path, *parts):
        return _used(path)
    with cache_lock(path.with_suffix(".lock")):
        if is_verified(path, *parts):  # built by another process while this one waited
            return _used(path)
        if path.exists():
            stderr_line(f"the cached model {path.name} is damaged or incomplete: building it again")
        return _store(path, build(), options)


def ensure_openvino_int8(config: ModelConfig, quiet: bool = False) -> Path:
    """The int8 model for OpenVINO: the cached fp32 graph quantized by NNCF, an OpenVINO IR
    (``.xml`` beside its ``.bin``), from the cache or built now — keyed, locked and verified as
    the ONNX files are. For the members outside ``NNCF_MODELS``, or where NNCF is not
    installed, our QDQ graph."""
    import importlib.util

    if config.model not in NNCF_MODELS or importlib.util.find_spec("nncf") is None:
        return ensure_onnx_model(config, quiet)
    from importlib.metadata import version

    files, calibration_digest = calibration_files(config.calibration)
    options = {
        **graph_options(config, calibration_digest),
        "quantizer": f"nncf {version('nncf')}",
        "openvino": version("openvino"),
    }
    xml = cache_dir() / "onnx" / f"{config.model}-{graph_key(options)}.xml"

    def build() -> dict[str, bytes]:
        import dataclasses

        ov = import_openvino()
        fp32 = ensure_onnx_model(dataclasses.replace(config, precision="fp32", calibration=None), quiet)
        if not quiet:
            stderr_line(
                f"quantizing the model to int8 for OpenVINO on {len(files)} calibration images (once per weights and "
                "options)…"
            )
        images = decode_calibration(files, config.input_size)
        model = quantize_openvino_int8(fp32, images, float_convolutions(config.model), config.weight_bits)
        with tempfile.TemporaryDirectory(prefix="resnet-classify-int8-") as scratch:
            ov.save_model(model, str(Path(scratch) / "int8.xml"), compress_to_fp16=False)
            return {suffix: (Path(scratch) / "int8").with_suffix(suffix).read_bytes() for suffix in (".xml", ".bin")}

    return _cached(xml, (".xml", ".bin"), options, build)


def _used(path: Path) -> Path:
    """Mark the cached model as used now (its options file's mtime: ``cache`` shows it)."""
    with contextlib.suppress(OSError):
        os.utime(path.with_suffix(".json"))
    return path


@dataclass(frozen=True)
class CachedModel:
    path: Path
    size: int
    options: dict  # graph_options, or {} for a file cached by an older version
    last_used: float


def cached_models() -> list[CachedModel]:
    """The models in the cache (ONNX graphs, OpenVINO int8 IRs), most recently used first."""
    folder = cache_dir() / "onnx"
    found = []
    for path in sorted(
        p
        for p in (folder.iterdir() if folder.is_dir() else ())
        if p.suffix in (".onnx", ".xml") and p.name.startswith(_PREFIXES)
    ):
        try:
            options = json.loads(path.with_suffix(".json").read_text())
            last_used = path.with_suffix(".json").stat().st_mtime
        except (OSError, ValueError):
            options, last_used = {}, path.stat().st_mtime
        weights = path.with_suffix(".bin") if path.suffix == ".xml" else None
        size = path.stat().st_size + (weights.stat().st_size if weights and weights.exists() else 0)
        found.append(CachedModel(path, size, options, last_used))
    return sorted(found, key=lambda m: -m.last_used)


def clear_cache() -> tuple[int, int]:
    """Remove every cached model and its companions: (files, bytes) removed. Lock files stay
    (empty; a run holding one must keep excluding the others)."""
    folder = cache_dir() / "onnx"
    files = size = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.is_file() and path.name.lstrip(".").startswith(_PREFIXES) and path.suffix != ".lock":
            size += path.stat().st_size
            path.unlink(missing_ok=True)
            files += 1
    for path in compiled_files():
        size += path.stat().st_size
        path.unlink(missing_ok=True)
        files += 1
    return files, size


def compiled_files() -> list[Path]:
    """The runtimes' compiled forms of the cached graphs (OpenVINO's blobs, ORT's optimized
    graphs, their digests), lock files aside."""
    return [
        path
        for folder in map(compiled_dir, COMPILED_FOLDERS)
        for path in (folder.iterdir() if folder.is_dir() else ())
        if path.is_file() and path.suffix != ".lock"
    ]


def _build(config: ModelConfig, calibration: list[Path], quiet: bool) -> bytes:
    """The model's bytes: exported from the weights, or quantized from the (cached) fp32 model.
    The quantizer writes helper models beside its input, so it works on a private copy."""
    if config.precision != "int8":
        if not quiet:
            stderr_line("exporting the ONNX model (once per weights and options)…")
        weights = read_weights(Path(config.weights), config.model)
        return build_onnx(with_head(weights, config.head), config).SerializeToString()
    import dataclasses
    import shutil

    fp32 = ensure_onnx_model(dataclasses.replace(config, precision="fp32", calibration=None), quiet)
    if not quiet:
        stderr_line(
            f"quantizing the model to int8 on {len(calibration)} calibration images (once per weights and options)…"
        )
    with tempfile.TemporaryDirectory(prefix="resnet-classify-int8-") as scratch:
        shutil.copyfile(fp32, Path(scratch) / "fp32.onnx")
        images = decode_calibration(calibration, config.input_size)
        quantize_int8(
            Path(scratch) / "fp32.onnx",
            Path(scratch) / "int8.onnx",
            images,
            float_convolutions(config.model),
            config.weight_bits,
            calibration_percentile(config.model),
        )
        return (Path(scratch) / "int8.onnx").read_bytes()
