"""The ONNX Runtime path: export once (no TensorFlow needed), cache, then a lean session.

Once the model is cached a run imports neither TensorFlow nor Keras.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import UserError
from . import Runtime


class OnnxRuntime(Runtime):
    name = "onnx"

    def __init__(self, session, batch_size: int, precision: str = "fp32"):
        self.session = session
        self.batch_size = batch_size
        self.precision = precision
        self._input = session.get_inputs()[0].name

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self._input: batch})[0]


def _calibration_files(directory: str | None) -> tuple[list[Path], str]:
    """The calibration image files and a digest of their bytes (part of the cache key).
    Decoding waits until a model really has to be quantized."""
    import hashlib

    from ..images import IMAGE_EXTENSIONS

    if directory:
        folder = Path(directory)
        if not folder.is_dir():
            raise UserError(f"--calibration {directory}: not a folder.")
        candidates = (p for p in folder.rglob("*"))
    else:
        candidates = (Path(str(p)) for p in resources.files("resnet_cli").joinpath("data/calibration").iterdir())
    files = sorted(p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS)[:500]
    if not files:
        raise UserError(f"no calibration images in {directory or 'the bundled set'}.")
    hasher = hashlib.sha256()
    for path in files:
        hasher.update(path.read_bytes())
    return files, hasher.hexdigest()[:16]


def _decode_calibration(files: list[Path], size: int) -> np.ndarray:
    from ..images import ImageError, decode

    arrays = []
    for path in files:
        try:
            arrays.append(decode(str(path), size=size))
        except ImageError:
            continue
    if not arrays:
        raise UserError(f"no usable calibration images among {len(files)} files in {files[0].parent}.")
    return np.stack(arrays)


def _providers(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device in ("gpu", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "gpu":
        raise UserError("--device gpu: this ONNX Runtime build has no CUDA provider (try --runtime keras).")
    return ["CPUExecutionProvider"]


def model_path(weights, config_kwargs: dict, calibration: str | None = None) -> Path | bytes:
    """The cached ONNX model for these weights and options, exported now if missing or stale
    (its bytes instead of a path when the cache cannot be written)."""
    from ..cache import cache_dir
    from ..export import ExportConfig, build_onnx, is_verified, quantize_int8, store
    from ..weights import read_weights

    precision = config_kwargs.get("precision", "fp32")
    calibration_files: list[Path] = []
    if precision == "int8":
        calibration_files, calibration_digest = _calibration_files(calibration)
        config_kwargs = dict(config_kwargs, calibration=calibration_digest)
    config = ExportConfig(weights_md5=weights.digest(), **config_kwargs)
    path = cache_dir() / "onnx" / f"resnet50-{config.key()}.onnx"
    if is_verified(path):
        return path
    if precision == "int8":
        import tempfile

        fp32 = model_path(weights, dict(config_kwargs, precision="fp32", calibration=""))
        with tempfile.TemporaryDirectory() as scratch:
            if isinstance(fp32, bytes):  # the quantizer reads files
                (Path(scratch) / "fp32.onnx").write_bytes(fp32)
                fp32 = Path(scratch) / "fp32.onnx"
            images = _decode_calibration(calibration_files, config_kwargs.get("input_size", 224))
            quantize_int8(fp32, Path(scratch) / "int8.onnx", images)
            data = (Path(scratch) / "int8.onnx").read_bytes()
    else:
        data = build_onnx(read_weights(weights.path), config).SerializeToString()
    try:
        store(path, data)
    except OSError:
        return data
    return path


def open_session(model: Path | bytes, device: str = "auto", threads: int = 0):
    """An ONNX Runtime session on ``threads`` intra-op threads (0: one per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or os.cpu_count() or 1
    options.log_severity_level = 3
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), options, providers=_providers(device))


def export_config(options, weights, include_top: bool = True, pooling: str | None = None) -> dict:
    """The graph options for a run: CLI overrides, else what the weights were trained with."""
    return dict(
        weights.spec.numerics(options.pool1_padding, options.bn_epsilon),
        input_size=weights.spec.input_size,
        include_top=include_top,
        pooling=pooling,
        precision=options.precision,
    )


def open_onnx_runtime(options, weights, batch_size: int, include_top: bool = True, pooling: str | None = None) -> OnnxRuntime:
    path = model_path(weights, export_config(options, weights, include_top, pooling), options.calibration)
    return OnnxRuntime(open_session(path, options.device, options.threads), batch_size, options.precision)
