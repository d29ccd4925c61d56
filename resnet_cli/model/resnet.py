"""The ResNet family written out block by block. Pure Keras 3, no I/O.

ResNet50 keeps the original walkthrough's layer names (``conv1``, ``bn_conv1``,
``res2a_branch2a`` … ``fc1000``) and its ``identity_block`` / ``conv_block``; the other members
take keras.applications' names (``conv4_block23_2_conv``, ``post_bn``, ``predictions``), so
every official file loads by name. One stage table (``spec.blocks``) drives this builder and
the ONNX exporter alike.
"""

from __future__ import annotations

import contextlib

import keras
from keras import layers, ops

from .spec import (
    BLOCK_LETTERS,
    DEFAULT,
    DEFAULT_MODEL,
    NUM_CLASSES,
    POOL1_PADDINGS,
    POOLINGS,
    PREPROCESSINGS,
    Block,
    architecture,
    blocks,
    parameter_count,
)

PARAMETER_COUNT = parameter_count(DEFAULT_MODEL)  # 25,636,712 with the 1000-way top, as keras.applications
# Keras dtype policies by precision name. bf16: convolutions in bfloat16, variables, the
# preprocessing and the final softmax in float32 (Keras' mixed-precision recipe).
DTYPE_POLICIES = {"fp32": "float32", "bf16": "mixed_bfloat16"}


@contextlib.contextmanager
def _dtype_policy(name: str):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


class CaffePreprocess(layers.Layer):
    """uint8/float RGB → float BGR minus the per-channel means, inside the graph."""

    def __init__(self, mean_bgr=DEFAULT.mean_bgr, **kwargs):
        super().__init__(**kwargs)
        self.mean_bgr = tuple(float(m) for m in mean_bgr)

    def call(self, images):
        bgr = ops.flip(ops.cast(images, "float32"), axis=-1)
        return bgr - ops.convert_to_tensor(self.mean_bgr, dtype="float32")

    def get_config(self):
        return {**super().get_config(), "mean_bgr": self.mean_bgr}


class TfPreprocess(layers.Layer):
    """uint8/float RGB → [-1, 1], inside the graph, as ``preprocess_input(mode="tf")``."""

    def call(self, images):
        return ops.cast(images, "float32") / 127.5 - 1.0


def _conv_bn(x, filters, kernel_size, name, bn_name, bn_epsilon, strides=1, relu=True, padding="valid", relu_name=None):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, name=name)(x)
    x = layers.BatchNormalization(axis=-1, epsilon=bn_epsilon, name=bn_name)(x)
    return layers.Activation("relu", name=relu_name or f"{name}_relu")(x) if relu else x


def _v1_block(x, block: Block, kernel_size, bn_epsilon):
    """Post-activation bottleneck (the stride on the first 1×1, as Caffe's and keras.applications')."""
    name, f = block.name, block.width

    def conv_bn(y, filters, size, part, **kwargs):
        relu_name = None if block.classic else name(f"{part}_relu")
        return _conv_bn(
            y, filters, size, name(f"{part}_conv"), name(f"{part}_bn"), bn_epsilon, relu_name=relu_name, **kwargs
        )

    shortcut = conv_bn(x, 4 * f, 1, "0", strides=block.stride, relu=False) if block.projection else x
    y = conv_bn(x, f, 1, "1", strides=block.stride)
    y = conv_bn(y, f, kernel_size, "2", padding="same")
    y = conv_bn(y, 4 * f, 1, "3", relu=False)
    y = layers.Add(name=name("add"))([y, shortcut])  # this order: the walkthrough's layer order
    return layers.Activation("relu", name=name("out"))(y)


def _v2_block(x, block: Block, kernel_size, bn_epsilon):
    """Pre-activation bottleneck, exactly as keras.applications' ``residual_block_v2``."""
    name, f = block.name, block.width
    preact = layers.BatchNormalization(axis=-1, epsilon=bn_epsilon, name=name("preact_bn"))(x)
    preact = layers.Activation("relu", name=name("preact_relu"))(preact)
    if block.projection:
        shortcut = layers.Conv2D(4 * f, 1, strides=block.stride, name=name("0_conv"))(preact)
    elif block.stride > 1:
        shortcut = layers.MaxPooling2D(1, strides=block.stride, name=name("0_pool"))(x)
    else:
        shortcut = x
    y = layers.Conv2D(f, 1, use_bias=False, name=name("1_conv"))(preact)
    y = layers.BatchNormalization(axis=-1, epsilon=bn_epsilon, name=name("1_bn"))(y)
    y = layers.Activation("relu", name=name("1_relu"))(y)
    y = layers.ZeroPadding2D(1, name=name("2_pad"))(y)
    y = layers.Conv2D(f, kernel_size, strides=block.stride, use_bias=False, name=name("2_conv"))(y)
    y = layers.BatchNormalization(axis=-1, epsilon=bn_epsilon, name=name("2_bn"))(y)
    y = layers.Activation("relu", name=name("2_relu"))(y)
    y = layers.Conv2D(4 * f, 1, name=name("3_conv"))(y)
    return layers.Add(name=name("out"))([shortcut, y])


def identity_block(x, kernel_size, filters, stage, block, bn_epsilon=DEFAULT.bn_epsilon):
    """ResNet50's bottleneck whose shortcut is the input itself (input and output shapes match)."""
    index = BLOCK_LETTERS.index(block) + 1
    return _v1_block(x, Block(stage, index, filters[0], 1, False, True), kernel_size, bn_epsilon)


def conv_block(x, kernel_size, filters, stage, block, strides=2, bn_epsilon=DEFAULT.bn_epsilon):
    """ResNet50's bottleneck with a 1×1 projection shortcut; the stride sits on the first 1×1 conv."""
    index = BLOCK_LETTERS.index(block) + 1
    return _v1_block(x, Block(stage, index, filters[0], strides, True, True), kernel_size, bn_epsilon)


def _block(x, block: Block, version: int, bn_epsilon):
    """One block of the stage table: ResNet50's as the walkthrough wrote them (``conv_block``
    opens a stage, ``identity_block`` the rest), the other members' by version."""
    if block.classic:
        letter, filters = BLOCK_LETTERS[block.index - 1], (block.width, block.width, 4 * block.width)
        if block.projection:
            return conv_block(x, 3, filters, block.stage, letter, block.stride, bn_epsilon)
        return identity_block(x, 3, filters, block.stage, letter, bn_epsilon)
    return (_v1_block if version == 1 else _v2_block)(x, block, 3, bn_epsilon)


def resnet(
    model: str = DEFAULT_MODEL,
    include_top: bool = True,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classes: int = NUM_CLASSES,
    pool1_padding: str = DEFAULT.pool1_padding,
    bn_epsilon: float = DEFAULT.bn_epsilon,
    preprocess: bool | str = False,
    precision: str = "fp32",
    mean_bgr: tuple[float, float, float] = DEFAULT.mean_bgr,
    name: str | None = None,
) -> keras.Model:
    """Build one member of the family (channels-last).

    model: one of ``spec.MODEL_NAMES``.
    include_top: the average pool and the 1000-way softmax; needs a square input.
    pooling: without the top, None (feature map), "avg" or "max" (2048-d vector).
    pool1_padding: see ``POOL1_PADDINGS``. bn_epsilon: BatchNormalization epsilon.
    preprocess: "caffe" or "tf" (True: "caffe"): take RGB in [0, 255] (uint8) and apply that
    preprocessing (``mean_bgr`` for caffe) in the graph. False: the input is preprocessed.
    precision: "fp32" or "bf16" (see ``DTYPE_POLICIES``).
    """
    arch = architecture(model)
    preprocessing = "caffe" if preprocess is True else preprocess
    if pool1_padding not in POOL1_PADDINGS:
        raise ValueError(
            f"pool1_padding must be one of {sorted(POOL1_PADDINGS)}. Received: pool1_padding={pool1_padding!r}"
        )
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if not bn_epsilon > 0:
        raise ValueError(f"bn_epsilon must be positive. Received: bn_epsilon={bn_epsilon!r}")
    if preprocessing not in (False, *PREPROCESSINGS):
        raise ValueError(f"preprocess must be one of {sorted(PREPROCESSINGS)} or False. Received: {preprocess!r}")
    default_shape = (DEFAULT.input_size, DEFAULT.input_size, 3)
    input_shape = tuple(input_shape) if input_shape is not None else default_shape
    if include_top and input_shape[0] != input_shape[1]:
        raise ValueError(f"With include_top=True the input must be square. Received: input_shape={input_shape}")
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ValueError(f"input_shape must be (height, width, 3). Received: input_shape={input_shape}")
    if include_top and classes < 1:
        raise ValueError(f"classes must be positive. Received: classes={classes}")
    if precision not in DTYPE_POLICIES:
        raise ValueError(f"precision must be one of {sorted(DTYPE_POLICIES)}. Received: precision={precision!r}")
    with _dtype_policy(DTYPE_POLICIES[precision]):
        inputs = layers.Input(shape=input_shape, dtype="uint8" if preprocessing else "float32", name="input")
        x = _preprocess(inputs, preprocessing, mean_bgr)
        x = _stem(x, arch, pool1_padding, bn_epsilon)
        for block in blocks(arch):
            x = _block(x, block, arch.version, bn_epsilon)
        if arch.version == 2:
            x = layers.BatchNormalization(axis=-1, epsilon=bn_epsilon, name="post_bn")(x)
            x = layers.Activation("relu", name="post_relu")(x)
        x = _top(x, arch, include_top, pooling, classes)
        return keras.Model(inputs, x, name=name or arch.name)


def resnet50(**kwargs) -> keras.Model:
    """The walkthrough's ResNet50 (classic layer names); ``resnet``'s options."""
    return resnet(DEFAULT_MODEL, **kwargs)


def _preprocess(inputs, preprocessing, mean_bgr):
    if preprocessing == "caffe":
        return CaffePreprocess(mean_bgr, name="caffe_preprocess", dtype="float32")(inputs)
    if preprocessing == "tf":
        return TfPreprocess(name="tf_preprocess", dtype="float32")(inputs)
    return inputs


def _stem(x, arch, pool1_padding, bn_epsilon):
    conv, bn = arch.stem_names()
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    if arch.version == 1:
        x = _conv_bn(
            x, 64, 7, conv, bn, bn_epsilon, strides=2, relu_name=None if arch.layer_names == "classic" else "conv1_relu"
        )
    else:
        x = layers.Conv2D(64, 7, strides=2, name=conv)(x)
    if pool1_padding == "pad1":
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    pool_name = "pool1" if arch.layer_names == "classic" else "pool1_pool"
    return layers.MaxPooling2D(3, strides=2, padding="same" if pool1_padding == "same" else "valid", name=pool_name)(x)


def _top(x, arch, include_top, pooling, classes):
    if include_top:
        if arch.layer_names == "classic":
            x = layers.AveragePooling2D(x.shape[1], name="avg_pool")(x)
            x = layers.Flatten(name="flatten")(x)
        else:
            x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(classes, activation="softmax", name=arch.top_layer, dtype="float32")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def from_config(config) -> keras.Model:
    """The network a resolved ``config.ModelConfig`` describes (uint8 RGB in), no weights.
    With a head, the top layer has the head's classes."""
    return resnet(
        config.model,
        include_top=config.include_top,
        classes=len(config.labels),
        input_shape=(config.input_size, config.input_size, 3),
        pooling=config.pooling,
        pool1_padding=config.pool1_padding,
        bn_epsilon=config.bn_epsilon,
        preprocess=config.preprocessing,
        precision=config.precision,
        mean_bgr=config.mean_bgr,
    )
