"""ResNet50 → ONNX, written directly from the named weights with the ``onnx`` package.

Why not tf2onnx or Keras' own export: both need TensorFlow at export time (2–3 s of import,
and tf2onnx lags TensorFlow releases), and neither folds our preprocessing the way we want.
Writing the graph from the layer names is ~100 lines, needs only numpy + onnx, and lets us:
- fold each BatchNormalization into the convolution before it (fewer ops, same maths);
- take uint8 RGB input: the channel flip (RGB→BGR) goes into conv1's weights, the mean
  subtraction stays an explicit Sub so the zero padding of conv1 sees exactly what Keras sees.
"""

from __future__ import annotations

import json

import numpy as np

from ..config import ModelConfig
from ..model.spec import FEATURES, block_names, blocks

EXPORTER_VERSION = 4  # 4: class labels and input options as model metadata


OPSET = 17


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

    def conv_bn(
        self, x: str, conv: str, bn: str, stride: int = 1, pad: int = 0, relu: bool = True, flip_input=False
    ) -> str:
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
        x = g.node(
            "Gemm",
            [x, g.const("fc1000_W", kernel.astype(np.float32)), g.const("fc1000_B", bias.astype(np.float32))],
            "fc1000",
        )
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
        "input": f"uint8 RGB NHWC [N, {config.input_size}, {config.input_size}, 3], 0-255; "
        "BGR flip and mean subtraction are in the graph",
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
