"""ResNet50 written out block by block, with the classic layer names. Pure Keras 3, no I/O.

The layer names (``conv1``, ``bn_conv1``, ``res2a_branch2a`` … ``fc1000``) are those of the
original walkthrough and of the classic weight file, so weights load by name.
"""

from __future__ import annotations

import contextlib

import keras
from keras import layers, ops

from .spec import DEFAULT, NUM_CLASSES, PARAMETER_COUNT, POOL1_PADDINGS, POOLINGS, block_names, blocks  # noqa: F401

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


def _conv_bn(x, filters, kernel_size, name, bn_name, bn_epsilon, strides=1, relu=True, padding="valid"):
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding, name=name)(x)
    x = layers.BatchNormalization(axis=-1, epsilon=bn_epsilon, name=bn_name)(x)
    return layers.Activation("relu", name=f"{name}_relu")(x) if relu else x


def _bottleneck(x, shortcut, kernel_size, filters, stage, block, bn_epsilon, strides):
    conv_name, bn_name = block_names(stage, block)
    f1, f2, f3 = filters
    y = _conv_bn(x, f1, 1, conv_name + "2a", bn_name + "2a", bn_epsilon, strides=strides)
    y = _conv_bn(y, f2, kernel_size, conv_name + "2b", bn_name + "2b", bn_epsilon, padding="same")
    y = _conv_bn(y, f3, 1, conv_name + "2c", bn_name + "2c", bn_epsilon, relu=False)
    y = layers.Add(name=f"res{stage}{block}_add")([y, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_relu")(y)


def identity_block(x, kernel_size, filters, stage, block, bn_epsilon=DEFAULT.bn_epsilon):
    """Bottleneck whose shortcut is the input itself (input and output shapes match)."""
    return _bottleneck(x, x, kernel_size, filters, stage, block, bn_epsilon, strides=1)


def conv_block(x, kernel_size, filters, stage, block, strides=2, bn_epsilon=DEFAULT.bn_epsilon):
    """Bottleneck with a 1×1 projection shortcut; the stride sits on the first 1×1 conv."""
    conv_name, bn_name = block_names(stage, block)
    shortcut = _conv_bn(x, filters[2], 1, conv_name + "1", bn_name + "1", bn_epsilon, strides=strides, relu=False)
    return _bottleneck(x, shortcut, kernel_size, filters, stage, block, bn_epsilon, strides)


def resnet50(
    include_top: bool = True,
    input_shape: tuple[int, int, int] | None = None,
    pooling: str | None = None,
    classes: int = NUM_CLASSES,
    pool1_padding: str = DEFAULT.pool1_padding,
    bn_epsilon: float = DEFAULT.bn_epsilon,
    preprocess: bool = False,
    precision: str = "fp32",
    mean_bgr: tuple[float, float, float] = DEFAULT.mean_bgr,
    name: str = "resnet50",
) -> keras.Model:
    """Build ResNet50 (channels-last).

    include_top: the 7×7 average pool, flatten and the ``fc1000`` softmax; needs 224×224×3.
    pooling: without the top, None (feature map), "avg" or "max" (2048-d vector).
    pool1_padding: see ``POOL1_PADDINGS``. bn_epsilon: BatchNormalization epsilon.
    preprocess: take RGB in [0, 255] (uint8) and apply caffe preprocessing (``mean_bgr``) in the graph.
    precision: "fp32" or "bf16" (see ``DTYPE_POLICIES``).
    """
    if pool1_padding not in POOL1_PADDINGS:
        raise ValueError(
            f"pool1_padding must be one of {sorted(POOL1_PADDINGS)}. Received: pool1_padding={pool1_padding!r}"
        )
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}. Received: pooling={pooling!r}")
    if not bn_epsilon > 0:
        raise ValueError(f"bn_epsilon must be positive. Received: bn_epsilon={bn_epsilon!r}")
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
        return _build(include_top, input_shape, pooling, classes, pool1_padding, bn_epsilon, preprocess, mean_bgr, name)


def from_config(config) -> keras.Model:
    """The network a resolved ``config.ModelConfig`` describes (uint8 RGB in), no weights.
    With a head, ``fc1000`` has the head's classes."""
    if config.preprocessing != "caffe":
        raise ValueError(f"Only caffe preprocessing is built. Received: preprocessing={config.preprocessing!r}")
    return resnet50(
        include_top=config.include_top,
        classes=len(config.labels),
        input_shape=(config.input_size, config.input_size, 3),
        pooling=config.pooling,
        pool1_padding=config.pool1_padding,
        bn_epsilon=config.bn_epsilon,
        preprocess=True,
        precision=config.precision,
        mean_bgr=config.mean_bgr,
    )


def _build(
    include_top, input_shape, pooling, classes, pool1_padding, bn_epsilon, preprocess, mean_bgr, name
) -> keras.Model:
    inputs = layers.Input(shape=input_shape, dtype="uint8" if preprocess else "float32", name="input")
    x = CaffePreprocess(mean_bgr, name="caffe_preprocess", dtype="float32")(inputs) if preprocess else inputs
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = _conv_bn(x, 64, 7, "conv1", "bn_conv1", bn_epsilon, strides=2)
    if pool1_padding == "pad1":
        x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same" if pool1_padding == "same" else "valid", name="pool1")(x)

    for stage, letter, filters, strides, projection in blocks():
        if projection:
            x = conv_block(x, 3, filters, stage, letter, strides=strides, bn_epsilon=bn_epsilon)
        else:
            x = identity_block(x, 3, filters, stage, letter, bn_epsilon=bn_epsilon)

    if include_top:
        x = layers.AveragePooling2D(x.shape[1], name="avg_pool")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(classes, activation="softmax", name="fc1000", dtype="float32")(x)
    elif pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=name)
