"""int8: static QDQ quantization of the fp32 ONNX model, calibrated on real images (the
bundled photos, or --calibration DIR)."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

from ..backend import import_openvino
from ..errors import UserError
from ..inputs.decode import IMAGE_EXTENSIONS, DecodeOptions, ImageError, decode
from ..model.spec import architecture, blocks

CALIBRATION_LIMIT = 500  # images: plenty for per-channel min/max statistics


# The members whose int8 keeps conv1 (on the raw pixels) and the four projection shortcuts
# (they carry the whole residual stream into each stage) in float: the two 152-layer ones,
# where the error of 50 quantized blocks adds up (worst pooled-feature cosine to fp32 on the
# test photos: ResNet152 0.9939 → 0.9954, ResNet152V2 0.9953 → 0.9979). The others stay at
# ≥ 0.9966 fully quantized, and a float convolution in an int8 graph costs far more than its
# 4 % of the multiply-adds (layout changes around it: ResNet101 ran at 2.97× fp32 fully
# quantized, 1.56× with these five in float).
FLOAT_IN_INT8 = ("resnet152", "resnet152v2")


def float_convolutions(model: str) -> list[str]:
    """The convolutions int8 leaves in float for ``model`` (see ``FLOAT_IN_INT8``)."""
    if model not in FLOAT_IN_INT8:
        return []
    arch = architecture(model)
    return [arch.stem_names()[0]] + [block.name("0_conv") for block in blocks(arch) if block.projection]


# ResNet152's activation ranges: the 99.999th percentile of the calibration values instead of
# their min/max, so a rare outlier no longer widens a whole tensor's step. Worst pooled-feature
# cosine to fp32 (12 photos made from the samples / 12 dev photos): 7-bit weights (CPUs without
# VNNI) 0.9946 / 0.9950 with min/max, 0.9958 / 0.9958 with the percentile; 8-bit 0.9954 /
# 0.9954 → 0.9966 / 0.9963. The other members keep min/max (their graphs, and the records
# they give, unchanged).
PERCENTILE_IN_INT8 = {"resnet152": 99.999}


def calibration_percentile(model: str) -> float | None:
    """The percentile int8 calibrates ``model``'s activations at; None: their min/max."""
    return PERCENTILE_IN_INT8.get(model)


def quantize_int8(
    fp32_path: Path,
    out_path: Path,
    calibration_images: np.ndarray,
    keep_float=(),
    weight_bits: int = 8,
    percentile: float | None = None,
) -> None:
    """Static QDQ quantization with per-channel int8 weights, calibrated on real images;
    ``keep_float``: node names left in float; ``weight_bits`` 7: weights in [-64, 64], exact
    on CPUs without VNNI (``config.int8_weight_bits``); ``percentile``: activation ranges at
    that percentile of the calibration values (None: their min/max)."""
    import logging

    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

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
            reduce_range=weight_bits == 7,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            # Convolutions hold ~all the FLOPs. Quantizing Add/Gemm/pools too gained no speed
            # here and lost top-1 agreement (0.90 → 0.80 on 40 photos): the rest stays fp32.
            op_types_to_quantize=["Conv"],
            nodes_to_exclude=list(keep_float),
            **(
                {}
                if percentile is None
                else {
                    "calibrate_method": CalibrationMethod.Percentile,
                    "extra_options": {"CalibPercentile": percentile},
                }
            ),
        )
    finally:
        root.setLevel(level)


# The members whose int8 on OpenVINO is NNCF's graph: it keeps their pooled features within
# cosine median ≥ 0.995, min ≥ 0.98 of fp32 on real photos (ResNet50 0.99991 / 0.99938,
# ResNet50V2 0.99852 / 0.98713). In the deeper ones the error of its quantized residual adds
# grows over the blocks (min 0.969-0.980 on 24 dev photos, against 0.990-0.994 for our QDQ
# graph; their adds in float: no better, at half the speed), so OpenVINO runs our QDQ graph.
NNCF_MODELS = ("resnet50", "resnet50v2")


def quantize_openvino_int8(fp32_path: Path, calibration_images: np.ndarray, keep_float=(), weight_bits: int = 8):
    """The fp32 graph quantized by NNCF for OpenVINO (an ``ov.Model``): its PERFORMANCE preset
    (symmetric int8 activations, residual adds quantized) lets OpenVINO fuse whole int8 blocks,
    1.7-2× the speed of our QDQ graph on the same engine. The classifier (the graph's only
    MatMul) and ``keep_float`` stay in float: quantizing the classifier cost top-1 agreement
    (0.91 → 0.84 on 100 dev photos) for no speed. ``weight_bits`` 7: NNCF's overflow fix on
    every layer (7-bit weights), for CPUs without VNNI; 8: its default (the first layer only)."""
    import contextlib
    import logging
    import os

    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    nncf.set_log_level(logging.ERROR)
    seven_bits = AdvancedQuantizationParameters(overflow_fix=OverflowFix.ENABLE) if weight_bits == 7 else None
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):  # its progress bars: not our stdout
        return nncf.quantize(
            import_openvino().Core().read_model(str(fp32_path)),
            nncf.Dataset([calibration_images[i : i + 1] for i in range(len(calibration_images))]),
            preset=nncf.QuantizationPreset.PERFORMANCE,
            subset_size=len(calibration_images),
            ignored_scope=nncf.IgnoredScope(names=list(keep_float), types=["MatMul"], validate=False),
            advanced_parameters=seven_bits,
        )


def calibration_files(directory: str | None) -> tuple[list[Path], str]:
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


def decode_calibration(files: list[Path], size: int) -> np.ndarray:
    """The calibration photos at the model's input size (the decoder's defaults otherwise)."""
    options = DecodeOptions(size=size)
    arrays = []
    for path in files:
        try:
            arrays.append(decode(str(path), options))
        except ImageError:
            continue
    if not arrays:
        raise UserError(f"no usable calibration images among {len(files)} files in {files[0].parent}.")
    return np.stack(arrays)
