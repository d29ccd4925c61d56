"""request: what the user asked for — impossible combinations named in Click's words."""

import pytest

from resnet_cli.request import ModelRequest, conflicts


@pytest.mark.parametrize(
    "asked, problem",
    [
        ({"precision": "int8", "runtime": "keras"}, "--precision int8 runs on the onnx or openvino runtime"),
        ({"precision": "bf16", "runtime": "onnx"}, "--precision bf16 runs on the openvino or keras runtime"),
        ({"calibration": "photos/"}, "--calibration is for --precision int8. Received: --precision fp32"),
        ({"precision": "int8", "runtime": "openvino", "calibration": "photos/"}, None),
        ({}, None),
    ],
)
def test_conflicts_are_named(asked, problem):
    found = conflicts(ModelRequest(**asked))
    assert (found is None) if problem is None else problem in found
