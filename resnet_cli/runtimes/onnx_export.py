"""The ResNet family → ONNX, written directly from the named weights with the ``onnx`` package.

Why not tf2onnx or Keras' own export: both need TensorFlow at export time (2–3 s of import,
and tf2onnx lags TensorFlow releases), and neither folds our preprocessing the way we want.
Writing the graph from the layer names is ~100 lines, needs only numpy + onnx, and lets us:
- fold each BatchNormalization into the convolution before it (fewer ops, same maths);
- take uint8 RGB input: the channel flip (RGB→BGR, caffe) or the 1/127.5 scale (tf) goes into
  conv1's weights, the centring stays an explicit Sub so the zero padding of conv1 sees
  exactly what Keras sees.
"""

from __future__ import annotations

import json

import numpy as np

from ..config import ModelConfig
from ..model.spec import FEATURES, PREPROCESSINGS, Block, architecture, blocks

EXPORTER_VERSION = 5  # 4: class labels and input options as model metadata; 5: the family


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
        self,
        x: str,
        conv: str,
        bn: str | None,
        stride: int = 1,
        pad: int = 0,
        relu: bool = True,
        flip_input=False,
        input_scale: float = 1.0,
    ) -> str:
        """A convolution with the BatchNormalization after it (if any) folded in; the input's
        channel flip and scale (preprocessing) folded into the kernel."""
        kernel, *rest = self.weights[conv]
        bias = rest[0] if rest else np.zeros(kernel.shape[-1], np.float32)
        if bn is None:
            scale, shift = np.ones_like(bias), bias
        else:
            gamma, beta, mean, variance = self.weights[bn]
            scale = gamma / np.sqrt(variance + self.epsilon)
            shift = (bias - mean) * scale + beta
        kernel = kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) → (out, in, kh, kw)
        if flip_input:
            kernel = kernel[:, ::-1]
        if input_scale != 1.0:
            kernel = kernel * np.float32(input_scale)
        w = (kernel * scale[:, None, None, None]).astype(np.float32)
        b = np.asarray(shift, np.float32)
        y = self.node(
            "Conv",
            [x, self.const(f"{conv}_W", w), self.const(f"{conv}_B", b)],
            conv,
            kernel_shape=list(w.shape[2:]),
            strides=[stride, stride],
            pads=[pad] * 4,
        )
        return self.node("Relu", [y], f"{conv}_relu") if relu else y

    def batch_norm(self, x: str, bn: str, relu: bool = True) -> str:
        """A BatchNormalization no convolution precedes (v2's pre-activations, post_bn)."""
        gamma, beta, mean, variance = (np.asarray(a, np.float32) for a in self.weights[bn])
        names = [
            self.const(f"{bn}_{part}", a)
            for part, a in zip(("gamma", "beta", "mean", "var"), (gamma, beta, mean, variance))
        ]
        y = self.node("BatchNormalization", [x, *names], bn, epsilon=self.epsilon)
        return self.node("Relu", [y], f"{bn}_relu") if relu else y

    def v1_block(self, x: str, block: Block) -> str:
        name = block.name
        shortcut = x
        if block.projection:
            shortcut = self.conv_bn(x, name("0_conv"), name("0_bn"), stride=block.stride, relu=False)
        y = self.conv_bn(x, name("1_conv"), name("1_bn"), stride=block.stride)
        y = self.conv_bn(y, name("2_conv"), name("2_bn"), pad=1)
        y = self.conv_bn(y, name("3_conv"), name("3_bn"), relu=False)
        y = self.node("Add", [y, shortcut], name("add"))
        return self.node("Relu", [y], name("out"))

    def v2_block(self, x: str, block: Block) -> str:
        name = block.name
        preact = self.batch_norm(x, name("preact_bn"))
        if block.projection:
            shortcut = self.conv_bn(preact, name("0_conv"), None, stride=block.stride, relu=False)
        elif block.stride > 1:
            shortcut = self.node("MaxPool", [x], name("0_pool"), kernel_shape=[1, 1], strides=[block.stride] * 2)
        else:
            shortcut = x
        y = self.conv_bn(preact, name("1_conv"), name("1_bn"))
        y = self.conv_bn(y, name("2_conv"), name("2_bn"), stride=block.stride, pad=1)
        y = self.conv_bn(y, name("3_conv"), None, relu=False)
        return self.node("Add", [shortcut, y], name("out"))


def _stem(g: _GraphBuilder, config: ModelConfig, arch) -> str:
    """uint8 RGB NHWC → the pooled conv1 output, NCHW. Preprocessing: the mean (caffe) or the
    mid-grey 127.5 (tf) subtracted explicitly, so conv1's zero padding sees what Keras' does;
    the BGR flip (caffe) or the 1/127.5 scale (tf) folded into conv1's kernel."""
    from onnx import TensorProto

    x = g.node("Cast", ["images"], "images_float", to=TensorProto.FLOAT)
    if config.preprocessing == "caffe":
        centre, flip, scale = np.asarray(config.mean_bgr[::-1], dtype=np.float32), True, 1.0
    else:
        centre, flip, scale = np.full(3, 127.5, dtype=np.float32), False, 1 / 127.5
    x = g.node("Sub", [x, g.const("mean_rgb", centre)], "centered")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    conv, bn = arch.stem_names()
    x = g.conv_bn(
        x,
        conv,
        bn if arch.version == 1 else None,
        stride=2,
        pad=3,
        relu=arch.version == 1,
        flip_input=flip,
        input_scale=scale,
    )
    pool_pads = {"same": [0, 0, 1, 1], "pad1": [1, 1, 1, 1], "valid": [0, 0, 0, 0]}[config.pool1_padding]
    if arch.version == 2 and config.pool1_padding == "pad1":  # no ReLU before: the zeros take part in the max
        x = g.node("Pad", [x, g.const("pool1_pads", np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))], "pool1_pad")
        pool_pads = [0, 0, 0, 0]
    return g.node("MaxPool", [x], "pool1", kernel_shape=[3, 3], strides=[2, 2], pads=pool_pads)


def build_onnx(weights: dict[str, list[np.ndarray]], config: ModelConfig):
    """The ONNX ModelProto: uint8 RGB NHWC [N, S, S, 3] → probabilities [N, classes]
    (or pooled features [N, 2048], or the NHWC feature map)."""
    from onnx import TensorProto, helper

    arch = architecture(config.model)
    g = _GraphBuilder(weights, config.bn_epsilon)
    size = config.input_size
    x = _stem(g, config, arch)
    for block in blocks(arch):
        x = g.v1_block(x, block) if arch.version == 1 else g.v2_block(x, block)
    if arch.version == 2:
        x = g.batch_norm(x, "post_bn")

    if config.include_top:
        x = g.node("GlobalAveragePool", [x], "avg_pool")
        x = g.node("Flatten", [x], "flatten")
        kernel, bias = weights[arch.top_layer]
        top = arch.top_layer
        x = g.node(
            "Gemm",
            [x, g.const(f"{top}_W", kernel.astype(np.float32)), g.const(f"{top}_B", bias.astype(np.float32))],
            top,
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
        arch.name,
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
    in_graph = "BGR flip and mean subtraction are" if config.preprocessing == "caffe" else "scaling to [-1, 1] is"
    meta = {
        "model": config.model,
        "preprocessing": f"{config.preprocessing}: {PREPROCESSINGS[config.preprocessing]}",
        "input": f"uint8 RGB NHWC [N, {config.input_size}, {config.input_size}, 3], 0-255; {in_graph} in the graph",
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
