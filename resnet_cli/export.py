"""ResNet50 → ONNX, written directly from the named weights with the ``onnx`` package.

Why not tf2onnx or Keras' own export: both need TensorFlow at export time (2–3 s of import,
and tf2onnx lags TensorFlow releases), and neither folds our preprocessing the way we want.
Writing the graph from the layer names is ~100 lines, needs only numpy + onnx, and lets us:
- fold each BatchNormalization into the convolution before it (fewer ops, same maths);
- take uint8 RGB input: the channel flip (RGB→BGR) goes into conv1's weights, the mean
  subtraction stays an explicit Sub so the zero padding of conv1 sees exactly what Keras sees.
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
from importlib import resources
from pathlib import Path

import numpy as np

from .cache import cache_dir, file_digest, write_atomic
from .config import ModelConfig
from .console import stderr_line
from .errors import UserError
from .head import with_head
from .images import IMAGE_EXTENSIONS, DecodeOptions, ImageError, decode
from .spec import FEATURES, block_names, blocks
from .weights import read_weights

EXPORTER_VERSION = 4  # 4: class labels and input options as model metadata
OPSET = 17
CALIBRATION_LIMIT = 500  # images: plenty for per-channel min/max statistics


def graph_key(options: dict) -> str:
    """``graph_options`` hashed: the cache file's name."""
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:24]


def graph_options(config: ModelConfig, calibration_digest: str = "") -> dict:
    """Everything that changes the exported graph (also kept beside the cached file, for
    ``resnet-classify cache``)."""
    import onnx

    payload = {
        "weights_md5": config.weights_md5,
        "input_size": config.input_size,
        "mean_bgr": list(config.mean_bgr),
        "pool1_padding": config.pool1_padding,
        "bn_epsilon": config.bn_epsilon,
        "include_top": config.include_top,
        "pooling": None if config.include_top else config.pooling,
        "precision": config.precision,
        "calibration": calibration_digest,
        "exporter": EXPORTER_VERSION,
        "opset": OPSET,
        "onnx": onnx.__version__,
    }
    if config.include_top and config.head is not None:
        payload["head"] = config.head.sha256
    return payload


class _GraphBuilder:
    def __init__(self, weights: dict[str, list[np.ndarray]], epsilon: float):
        self.weights = weights
        self.epsilon = epsilon
        self.nodes = []
        self.initializers = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def conv_bn(self, x: str, conv: str, bn: str, stride: int = 1, pad: int = 0, relu: bool = True, flip_input=False) -> str:
        kernel, bias = self.weights[conv]
        gamma, beta, mean, variance = self.weights[bn]
        scale = gamma / np.sqrt(variance + self.epsilon)
        kernel = kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) → (out, in, kh, kw)
        if flip_input:
            kernel = kernel[:, ::-1]
        w = (kernel * scale[:, None, None, None]).astype(np.float32)
        b = ((bias - mean) * scale + beta).astype(np.float32)
        y = self.node(
            "Conv",
            [x, self.const(f"{conv}_W", w), self.const(f"{conv}_B", b)],
            conv,
            kernel_shape=list(w.shape[2:]),
            strides=[stride, stride],
            pads=[pad] * 4,
        )
        return self.node("Relu", [y], f"{conv}_relu") if relu else y

    def block(self, x: str, stage: int, letter: str, stride: int, projection: bool) -> str:
        res, bn = block_names(stage, letter)
        shortcut = self.conv_bn(x, res + "1", bn + "1", stride=stride, relu=False) if projection else x
        y = self.conv_bn(x, res + "2a", bn + "2a", stride=stride)
        y = self.conv_bn(y, res + "2b", bn + "2b", pad=1)
        y = self.conv_bn(y, res + "2c", bn + "2c", relu=False)
        y = self.node("Add", [y, shortcut], f"res{stage}{letter}_add")
        return self.node("Relu", [y], f"res{stage}{letter}_relu")


def build_onnx(weights: dict[str, list[np.ndarray]], config: ModelConfig):
    """The ONNX ModelProto: uint8 RGB NHWC [N, S, S, 3] → probabilities [N, classes]
    (or pooled features [N, 2048], or the NHWC feature map)."""
    from onnx import TensorProto, helper

    g = _GraphBuilder(weights, config.bn_epsilon)
    size = config.input_size
    x = g.node("Cast", ["images"], "images_float", to=TensorProto.FLOAT)
    mean_rgb = np.asarray(config.mean_bgr[::-1], dtype=np.float32)
    x = g.node("Sub", [x, g.const("mean_rgb", mean_rgb)], "centered")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.conv_bn(x, "conv1", "bn_conv1", stride=2, pad=3, flip_input=True)
    pool_pads = {"same": [0, 0, 1, 1], "pad1": [1, 1, 1, 1], "valid": [0, 0, 0, 0]}[config.pool1_padding]
    x = g.node("MaxPool", [x], "pool1", kernel_shape=[3, 3], strides=[2, 2], pads=pool_pads)
    for stage, letter, _, stride, projection in blocks():
        x = g.block(x, stage, letter, stride, projection)

    if config.include_top:
        x = g.node("GlobalAveragePool", [x], "avg_pool")
        x = g.node("Flatten", [x], "flatten")
        kernel, bias = weights["fc1000"]
        x = g.node("Gemm", [x, g.const("fc1000_W", kernel.astype(np.float32)), g.const("fc1000_B", bias.astype(np.float32))], "fc1000")
        x = g.node("Softmax", [x], "probabilities", axis=-1)
        out_shape = ["N", int(kernel.shape[1])]
    elif config.pooling in ("avg", "max"):
        op = "GlobalAveragePool" if config.pooling == "avg" else "GlobalMaxPool"
        x = g.node(op, [x], f"{config.pooling}_pool")
        x = g.node("Flatten", [x], "features")
        out_shape = ["N", FEATURES]
    else:
        x = g.node("Transpose", [x], "feature_map", perm=[0, 2, 3, 1])
        out_shape = ["N", None, None, FEATURES]

    graph = helper.make_graph(
        g.nodes,
        "resnet50",
        [helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, out_shape)],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="resnet-classify")
    model.ir_version = 8
    helper.set_model_props(model, _metadata(config))
    return model


def _metadata(config: ModelConfig) -> dict[str, str]:
    """What a user of the .onnx file elsewhere needs: the class names (in output order) and
    how to make the input (uint8 RGB at input_size; means and BGR are in the graph)."""
    meta = {
        "input": f"uint8 RGB NHWC [N, {config.input_size}, {config.input_size}, 3], 0-255; BGR flip and mean subtraction are in the graph",
        "resize": config.resize,
        "interpolation": config.interpolation,
        "crop_ratio": str(config.crop_ratio),
        "weights_md5": str(config.weights_md5),
    }
    if config.include_top:
        meta["labels"] = json.dumps([label for _, label in config.labels])
        if config.head is None:
            meta["wnids"] = json.dumps([wnid for wnid, _ in config.labels])
        else:
            meta["head_sha256"] = config.head.sha256
    return meta


# ---------------------------------------------------------------------------- int8


def quantize_int8(fp32_path: Path, out_path: Path, calibration_images: np.ndarray) -> None:
    """Static QDQ quantization with per-channel int8 weights, calibrated on real images."""
    import logging

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"images": calibration_images[i : i + 1]} for i in range(len(calibration_images))])

        def get_next(self):
            return next(self.batches, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer's "consider pre-processing" advice is not for users
    try:
        quantize_static(
            str(fp32_path),
            str(out_path),
            Reader(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # Convolutions hold ~all the FLOPs. Quantizing Add/Gemm/pools too gained no speed
            # here and lost top-1 agreement (0.90 → 0.80 on 40 photos): the rest stays fp32.
            op_types_to_quantize=["Conv"],
        )
    finally:
        root.setLevel(level)


# ---------------------------------------------------------------------------- calibration


def _calibration_files(directory: str | None) -> tuple[list[Path], str]:
    """The calibration image files and a digest of their bytes (part of the cache key).
    Decoding waits until a model really has to be quantized."""
    if directory:
        folder = Path(directory)
        if not folder.is_dir():
            raise UserError(f"--calibration {directory}: not a folder.")
        candidates = (p for p in folder.rglob("*"))
    else:
        candidates = (Path(str(p)) for p in resources.files("resnet_cli").joinpath("data/calibration").iterdir())
    files = sorted(p for p in candidates if p.suffix.lower() in IMAGE_EXTENSIONS)[:CALIBRATION_LIMIT]
    if not files:
        raise UserError(f"no calibration images in {directory or 'the bundled set'}.")
    hasher = hashlib.sha256()
    for path in files:
        hasher.update(path.read_bytes())
    return files, hasher.hexdigest()[:16]


def _decode_calibration(files: list[Path], options: DecodeOptions) -> np.ndarray:
    arrays = []
    for path in files:
        try:
            arrays.append(decode(str(path), options))
        except ImageError:
            continue
    if not arrays:
        raise UserError(f"no usable calibration images among {len(files)} files in {files[0].parent}.")
    return np.stack(arrays)


# ---------------------------------------------------------------------------- cache


def _is_verified(path: Path) -> bool:
    """The cached model matches the sha256 recorded when it was written (a stale, truncated or
    altered file does not). The check is memoised on size and mtime, so a cold start does not
    re-hash 100 MB."""
    try:
        return file_digest(path, "sha256") == path.with_suffix(".sha256").read_text().strip()
    except OSError:
        return False


def _store(path: Path, data: bytes, options: dict) -> Path:
    """Into the cache, whole or not at all, with its sha256 and its options beside it; where
    the cache cannot be written, into a temporary file for this run, said once on stderr
    (instead of silently re-exporting)."""
    try:
        write_atomic(path, data)
        write_atomic(path.with_suffix(".json"), json.dumps(options, sort_keys=True).encode())
        write_atomic(path.with_suffix(".sha256"), hashlib.sha256(data).hexdigest().encode())
        return path
    except OSError as error:
        handle, temporary = tempfile.mkstemp(prefix="resnet50-", suffix=".onnx")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        import atexit

        atexit.register(os.unlink, temporary)
        stderr_line(f"warning: cannot write the model cache ({error.strerror or error}: {path.parent}); using a temporary copy for this run (set RESNET_CLI_CACHE to a writable folder)")
        return Path(temporary)


def ensure_onnx_model(config: ModelConfig, quiet: bool = False) -> Path:
    """The ONNX model for ``config`` (fp32 or int8), from the cache or exported now.

    Safe for many processes at once (runs, Ray actors on one node): a builder holds a lock
    file per cache key, builds in a private temporary folder and moves the finished file into
    place; the others wait on the lock, then find the model verified and use it."""
    calibration_files: list[Path] = []
    calibration_digest = ""
    if config.precision == "int8":
        calibration_files, calibration_digest = _calibration_files(config.calibration)
    options = graph_options(config, calibration_digest)
    path = cache_dir() / "onnx" / f"resnet50-{graph_key(options)}.onnx"
    if _is_verified(path):
        return _used(path)
    with _build_lock(path):
        if _is_verified(path):  # built by another process while this one waited
            return _used(path)
        return _store(path, _build(config, calibration_files, quiet), options)


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
    """The ONNX models in the cache, most recently used first."""
    folder = cache_dir() / "onnx"
    found = []
    for path in sorted(folder.glob("resnet50-*.onnx")) if folder.is_dir() else ():
        try:
            options = json.loads(path.with_suffix(".json").read_text())
            last_used = path.with_suffix(".json").stat().st_mtime
        except (OSError, ValueError):
            options, last_used = {}, path.stat().st_mtime
        found.append(CachedModel(path, path.stat().st_size, options, last_used))
    return sorted(found, key=lambda m: -m.last_used)


def clear_cache() -> tuple[int, int]:
    """Remove every cached model and its companions: (files, bytes) removed. Lock files stay
    (empty; a run holding one must keep excluding the others)."""
    folder = cache_dir() / "onnx"
    files = size = 0
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.is_file() and path.name.startswith(("resnet50-", ".resnet50-")) and path.suffix != ".lock":
            size += path.stat().st_size
            path.unlink(missing_ok=True)
            files += 1
    return files, size


@contextlib.contextmanager
def _build_lock(path: Path):
    """The cache key's lock file; where the cache cannot be written, no lock (the model then
    goes to a temporary file of this run, see ``_store``)."""
    from filelock import FileLock

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path.with_suffix(".lock")))
        lock.acquire()
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def _build(config: ModelConfig, calibration_files: list[Path], quiet: bool) -> bytes:
    """The model's bytes: exported from the weights, or quantized from the (cached) fp32 model.
    The quantizer writes helper models beside its input, so it works on a private copy."""
    if config.precision != "int8":
        if not quiet:
            stderr_line("exporting the ONNX model (once per weights and options)…")
        return build_onnx(with_head(read_weights(Path(config.weights)), config.head), config).SerializeToString()
    import dataclasses
    import shutil

    fp32 = ensure_onnx_model(dataclasses.replace(config, precision="fp32", calibration=None), quiet)
    if not quiet:
        stderr_line(f"quantizing the model to int8 on {len(calibration_files)} calibration images (once per weights and options)…")
    with tempfile.TemporaryDirectory(prefix="resnet-classify-int8-") as scratch:
        shutil.copyfile(fp32, Path(scratch) / "fp32.onnx")
        images = _decode_calibration(calibration_files, DecodeOptions(size=config.input_size))
        quantize_int8(Path(scratch) / "fp32.onnx", Path(scratch) / "int8.onnx", images)
        return (Path(scratch) / "int8.onnx").read_bytes()
