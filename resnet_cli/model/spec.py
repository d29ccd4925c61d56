"""ResNet50 as data: the stage table, the classic layer names, and the official weight files
with everything they were trained with (input size, preprocessing, pooling, BN epsilon,
resize). A leaf: no imports of our own, no I/O — the builder, the exporter, the weights reader
and the config resolver all read from here, so a new variant is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# (stage, blocks, (filters of 2a, 2b, 2c), stride of the stage's first block)
STAGES = (
    (2, 3, (64, 64, 256), 1),
    (3, 4, (128, 128, 512), 2),
    (4, 6, (256, 256, 1024), 2),
    (5, 3, (512, 512, 2048), 2),
)
BLOCK_LETTERS = "abcdef"
FEATURES = STAGES[-1][2][-1]  # 2048: the pooled feature vector
NUM_CLASSES = 1000
PARAMETER_COUNT = 25_636_712  # with the 1000-way top, as keras.applications.ResNet50

# How the 3×3/2 max-pool after conv1 treats the 112×112 border. The weights were trained in
# Caffe, which pools with ceil rounding: windows start at 0, 2, …, 110 and the last one is cut
# short at the edge. Keras' padding="same" does exactly that (pads one row/column at the end,
# ignored by the max), so it is the default.
POOL1_PADDINGS = {
    "same": "Caffe ceil-mode pooling: 56×56, windows at 0, 2, …, 110 (default)",
    "pad1": "keras.applications: zero-pad 1 on every side, then pool: 56×56, windows at -1, 1, …",
    "valid": "the original walkthrough: no padding, 55×55",
}
Pool1Padding = Literal["same", "pad1", "valid"]
Resize = Literal["stretch", "crop"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"]
Pooling = Literal["avg", "max"]
Layout = Literal["classic", "keras"]  # res2a_branch2a … / conv2_block1_1_conv …
Preprocessing = Literal["caffe"]  # RGB → BGR, minus mean_bgr, no scaling
RESIZES: tuple[str, ...] = get_args(Resize)
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)
POOLINGS = (None, *get_args(Pooling))
# Per-channel means of the ImageNet training set, in BGR order, as Caffe (and
# keras.applications.imagenet_utils.preprocess_input(mode="caffe")) subtract them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


def block_names(stage: int, letter: str) -> tuple[str, str]:
    """The classic prefixes of one bottleneck block: ('res2a_branch', 'bn2a_branch')."""
    return f"res{stage}{letter}_branch", f"bn{stage}{letter}_branch"


def blocks():
    """(stage, letter, filters, stride, projection) for every bottleneck, in order: the first
    block of a stage has the projection shortcut and the stage's stride (on its first 1×1)."""
    for stage, count, filters, stride in STAGES:
        for i, letter in enumerate(BLOCK_LETTERS[:count]):
            yield stage, letter, filters, stride if i == 0 else 1, i == 0


@dataclass(frozen=True)
class WeightsSpec:
    """One official weight file and what its network and input were trained with — kept
    beside the weights, as timm keeps its pretrained configs."""

    file_name: str
    url: str
    md5: str
    layout: Layout
    include_top: bool = True
    size: int | None = None
    input_size: int = 224
    preprocessing: Preprocessing = "caffe"
    mean_bgr: tuple[float, float, float] = CAFFE_MEAN_BGR
    pool1_padding: Pool1Padding = "same"
    bn_epsilon: float = 1e-5  # Caffe's; keras.applications builds with 1.001e-5
    resize: Resize = "stretch"  # as keras.utils.load_img(target_size=…) in the walkthrough
    interpolation: Interpolation = "nearest"
    crop_ratio: float = 0.875  # with resize="crop": shorter side input_size / 0.875, centre crop
    classes: str = "imagenet"


_CLASSIC_BASE = "https://github.com/fchollet/deep-learning-models/releases/download/v0.2/"
_KERAS_BASE = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_TOP = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
_NOTOP = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"

CLASSIC = WeightsSpec(_TOP, _CLASSIC_BASE + _TOP, "a7b3fe01876f51b976af0dea6bc144eb", "classic", size=102_853_048)
CLASSIC_NOTOP = WeightsSpec(
    _NOTOP, _CLASSIC_BASE + _NOTOP, "a268eb855778b3df3c7506639542a6af", "classic", include_top=False
)
KERAS = WeightsSpec(_TOP, _KERAS_BASE + _TOP, "2cb95161c43110f7111970584f804107", "keras")
KERAS_NOTOP = WeightsSpec(_NOTOP, _KERAS_BASE + _NOTOP, "4d473c1dd8becc155b73f8504c6f6626", "keras", include_top=False)
OFFICIAL = (CLASSIC, KERAS, CLASSIC_NOTOP, KERAS_NOTOP)
DEFAULT = CLASSIC
