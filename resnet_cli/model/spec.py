"""The ResNet family as data: the stage tables, the layer names, and the official weight files
with everything they were trained with (input size, preprocessing, pooling, BN epsilon,
resize). A leaf: no imports of our own, no I/O — the builder, the exporter, the weights reader
and the config resolver all read from here, so a new member is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

STAGE_WIDTHS = (64, 128, 256, 512)  # bottleneck width per stage (conv2 … conv5); output ×4
BLOCK_LETTERS = "abcdef"
FEATURES = 4 * STAGE_WIDTHS[-1]  # 2048: the pooled feature vector, for every member
NUM_CLASSES = 1000

# How the 3×3/2 max-pool after conv1 treats the 112×112 border. The classic ResNet50 weights
# were trained in Caffe, which pools with ceil rounding: windows start at 0, 2, …, 110 and the
# last one is cut short at the edge. Keras' padding="same" does exactly that (pads one
# row/column at the end, ignored by the max), so it is that file's default; keras.applications
# builds every member with pad1.
POOL1_PADDINGS = {
    "same": "Caffe ceil-mode pooling: 56×56, windows at 0, 2, …, 110 (the classic ResNet50 file's)",
    "pad1": "keras.applications: zero-pad 1 on every side, then pool: 56×56, windows at -1, 1, …",
    "valid": "the original walkthrough: no padding, 55×55",
}
Pool1Padding = Literal["same", "pad1", "valid"]
Resize = Literal["stretch", "crop"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"]
Pooling = Literal["avg", "max"]
Layout = Literal["classic", "keras"]  # res2a_branch2a … / conv2_block1_1_conv …
Preprocessing = Literal["caffe", "tf"]  # caffe: RGB → BGR minus mean_bgr; tf: scale to [-1, 1]
ModelName = Literal["resnet50", "resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2"]
RESIZES: tuple[str, ...] = get_args(Resize)
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)
POOLINGS = (None, *get_args(Pooling))
MODEL_NAMES: tuple[str, ...] = get_args(ModelName)
# Per-channel means of the ImageNet training set, in BGR order, as Caffe (and
# keras.applications.imagenet_utils.preprocess_input(mode="caffe")) subtract them.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESSINGS = {
    "caffe": "RGB → BGR, minus the ImageNet means (103.939, 116.779, 123.68), no scaling",
    "tf": "x / 127.5 − 1: RGB scaled to [−1, 1]",
}


@dataclass(frozen=True)
class Architecture:
    """One member: blocks per stage and block kind, as keras.applications builds it.

    version 1: post-activation bottlenecks, the stride on each stage's first 1×1, a projection
    (conv + BN) shortcut on each stage's first block. version 2 (pre-activation, He et al.
    2016): BN + ReLU before each block, the stride on the 3×3 of each stage's last block with a
    strided 1×1 max-pool shortcut, a plain conv shortcut on the first block, ``post_bn`` at the
    end. ``layer_names``: classic (the walkthrough's ``res2a_branch2a``, ResNet50 only) or
    keras (``conv2_block1_1_conv``)."""

    name: ModelName
    title: str  # as keras.applications spells the class
    blocks: tuple[int, int, int, int]
    version: Literal[1, 2]
    layer_names: Layout
    top1: float  # Keras' published ImageNet validation accuracy of the official weights, %
    top5: float

    @property
    def depth(self) -> int:
        return 3 * sum(self.blocks) + 2

    @property
    def top_layer(self) -> str:
        return "fc1000" if self.layer_names == "classic" else "predictions"

    @property
    def feature_layer(self) -> str:
        """The last stage's output as the pooling sees it (Grad-CAM's activation)."""
        if self.version == 2:
            return "post_relu"
        return "res5c_relu" if self.layer_names == "classic" else f"conv5_block{self.blocks[-1]}_out"

    def stem_names(self) -> tuple[str, str]:
        """(conv1, its BN)."""
        return ("conv1", "bn_conv1") if self.layer_names == "classic" else ("conv1_conv", "conv1_bn")


ARCHITECTURES = {
    a.name: a
    for a in (
        Architecture("resnet50", "ResNet50", (3, 4, 6, 3), 1, "classic", 74.9, 92.1),
        Architecture("resnet101", "ResNet101", (3, 4, 23, 3), 1, "keras", 76.4, 92.8),
        Architecture("resnet152", "ResNet152", (3, 8, 36, 3), 1, "keras", 76.6, 93.1),
        Architecture("resnet50v2", "ResNet50V2", (3, 4, 6, 3), 2, "keras", 76.0, 93.0),
        Architecture("resnet101v2", "ResNet101V2", (3, 4, 23, 3), 2, "keras", 77.2, 93.8),
        Architecture("resnet152v2", "ResNet152V2", (3, 8, 36, 3), 2, "keras", 78.0, 94.2),
    )
}
DEFAULT_MODEL = "resnet50"


def architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        raise ValueError(f"model must be one of {', '.join(MODEL_NAMES)}. Received: model={name!r}")
    return ARCHITECTURES[name]


@dataclass(frozen=True)
class Block:
    """One bottleneck: where it sits, its width and stride, its shortcut, and the names of its
    layers (``name("1_conv")`` … in keras.applications' parts: 0 = shortcut, 1/2/3 = the
    branch's 1×1, 3×3, 1×1; ``name("add")``, ``name("out")``, v2's ``name("preact_bn")``)."""

    stage: int
    index: int  # 1-based within the stage
    width: int
    stride: int
    projection: bool  # a conv shortcut (else the input, max-pooled 1×1 where strided)
    classic: bool

    def name(self, part: str) -> str:
        if not self.classic:
            return f"conv{self.stage}_block{self.index}_{part}"
        letter = BLOCK_LETTERS[self.index - 1]
        if part in ("add", "out"):
            return f"res{self.stage}{letter}_{'add' if part == 'add' else 'relu'}"
        index, kind = part.split("_")
        branch = {"0": "1", "1": "2a", "2": "2b", "3": "2c"}[index]
        return f"{'res' if kind == 'conv' else 'bn'}{self.stage}{letter}_branch{branch}"


def blocks(arch: Architecture | str = DEFAULT_MODEL):
    """Every bottleneck of ``arch``, in order."""
    arch = architecture(arch) if isinstance(arch, str) else arch
    for stage, (count, width) in enumerate(zip(arch.blocks, STAGE_WIDTHS), start=2):
        for index in range(1, count + 1):
            if arch.version == 1:
                stride = (1 if stage == 2 else 2) if index == 1 else 1
            else:
                stride = 2 if index == count and stage < 5 else 1
            yield Block(stage, index, width, stride, index == 1, arch.layer_names == "classic")


def _convs(arch: Architecture, size: int):
    """(output side, kernel, in channels, out channels, has bias) of every convolution and the
    classifier, and the BN channel counts — what the parameter and multiply-add counts read."""
    side = (size + 6 - 7) // 2 + 1
    convs = [(side, 7, 3, 64, True)]
    bns = [] if arch.version == 2 else [64]
    side = (side + 2 - 3) // 2 + 1
    channels = 64
    for block in blocks(arch):
        width, out = block.width, 4 * block.width
        v1 = arch.version == 1
        first_side = (side - 1) // block.stride + 1 if v1 else side
        last_side = (side - 1) // block.stride + 1
        if v1:
            if block.projection:
                convs.append((last_side, 1, channels, out, True))
                bns.append(out)
            convs += [(first_side, 1, channels, width, True), (last_side, 3, width, width, True)]
            convs.append((last_side, 1, width, out, True))
            bns += [width, width, out]
        else:
            bns.append(channels)
            if block.projection:
                convs.append((last_side, 1, channels, out, True))
            convs += [(side, 1, channels, width, False), (last_side, 3, width, width, False)]
            convs.append((last_side, 1, width, out, True))
            bns += [width, width]
        side, channels = last_side, out
    if arch.version == 2:
        bns.append(channels)
    return convs, bns, channels


def parameter_count(arch: Architecture | str, include_top: bool = True, classes: int = NUM_CLASSES) -> int:
    """Weights and BN statistics, as Keras' ``count_params`` counts them."""
    arch = architecture(arch) if isinstance(arch, str) else arch
    convs, bns, channels = _convs(arch, 224)
    total = sum(k * k * cin * cout + (cout if bias else 0) for _, k, cin, cout, bias in convs) + 4 * sum(bns)
    return total + (channels * classes + classes if include_top else 0)


def multiply_adds(arch: Architecture | str, size: int = 224, classes: int = NUM_CLASSES) -> int:
    """Multiply-adds of one image through convolutions and the classifier (the "4.1 GFLOPs"
    of ResNet50 in the papers' convention)."""
    arch = architecture(arch) if isinstance(arch, str) else arch
    convs, _, channels = _convs(arch, size)
    return sum(side * side * k * k * cin * cout for side, k, cin, cout, _ in convs) + channels * classes


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
    model: ModelName = DEFAULT_MODEL
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


def file_name(model: str, include_top: bool = True) -> str:
    return f"{model}_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"


_TOP, _NOTOP = file_name("resnet50"), file_name("resnet50", include_top=False)

CLASSIC = WeightsSpec(_TOP, _CLASSIC_BASE + _TOP, "a7b3fe01876f51b976af0dea6bc144eb", "classic", size=102_853_048)
CLASSIC_NOTOP = WeightsSpec(
    _NOTOP, _CLASSIC_BASE + _NOTOP, "a268eb855778b3df3c7506639542a6af", "classic", include_top=False
)
KERAS = WeightsSpec(_TOP, _KERAS_BASE + _TOP, "2cb95161c43110f7111970584f804107", "keras")
KERAS_NOTOP = WeightsSpec(_NOTOP, _KERAS_BASE + _NOTOP, "4d473c1dd8becc155b73f8504c6f6626", "keras", include_top=False)

# The five other members' files as keras.applications fetches them (WEIGHTS_HASHES in
# keras/src/applications/resnet.py): (with top, without top) md5s.
_KERAS_HASHES = {
    "resnet101": ("f1aeb4b969a6efcfb50fad2f0c20cfc5", "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("100835be76be38e30d865e96f2aaae62", "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("3ef43a0b657b3be2300d5770ece849e0", "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("6343647c601c52e1368623803854d971", "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("a49b44d1979771252814e80f8ec446f9", "ed17cf2e0169df9d443503ef94b23b33"),
}


def _keras_file(model: str, md5: str, include_top: bool) -> WeightsSpec:
    name = file_name(model, include_top)
    v2 = ARCHITECTURES[model].version == 2
    return WeightsSpec(
        name,
        _KERAS_BASE + name,
        md5,
        "keras",
        include_top=include_top,
        model=model,
        preprocessing="tf" if v2 else "caffe",
        pool1_padding="pad1",
        bn_epsilon=1.001e-5,
    )


FAMILY = tuple(
    _keras_file(model, md5, include_top)
    for model, hashes in _KERAS_HASHES.items()
    for include_top, md5 in zip((True, False), hashes)
)
OFFICIAL = (CLASSIC, KERAS, CLASSIC_NOTOP, KERAS_NOTOP, *FAMILY)
DEFAULT = CLASSIC


def default_weights(model: str = DEFAULT_MODEL, include_top: bool = True) -> WeightsSpec:
    """The file a model downloads: the classic file for ResNet50, keras.applications' else."""
    return next(s for s in OFFICIAL if s.model == model and s.include_top == include_top)


def weighted_layers(arch: Architecture | str, include_top: bool = True) -> list[str]:
    """The names of every layer with weights, in order (what a weight file must hold)."""
    arch = architecture(arch) if isinstance(arch, str) else arch
    names = list(arch.stem_names()[: 2 if arch.version == 1 else 1])
    for block in blocks(arch):
        if arch.version == 1:
            parts = ["0_conv", "0_bn"] if block.projection else []
            parts += ["1_conv", "1_bn", "2_conv", "2_bn", "3_conv", "3_bn"]
        else:
            parts = [
                "preact_bn",
                *(["0_conv"] if block.projection else []),
                "1_conv",
                "1_bn",
                "2_conv",
                "2_bn",
                "3_conv",
            ]
        names += [block.name(part) for part in parts]
    if arch.version == 2:
        names.append("post_bn")
    return names + ([arch.top_layer] if include_top else [])
