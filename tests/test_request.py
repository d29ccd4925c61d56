"""request: what the user asked for — impossible combinations named in Click's words, and the
batch size and decode threads an unset option stands for."""

import os

import pytest

from resnet_cli.request import CPU_BATCH, GPU_BATCH, InputOptions, ModelRequest, conflicts


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


def test_the_batch_suits_the_device_unless_asked():
    assert InputOptions().batch_for("cpu") == CPU_BATCH and InputOptions().batch_for("gpu") == GPU_BATCH
    assert InputOptions(batch_size=7).batch_for("gpu") == 7


def test_decode_threads_one_per_core_and_more_for_web_inputs():
    cores = max(2, os.cpu_count() or 2)
    assert InputOptions(inputs=("photos/",)).decode_workers() == cores
    assert InputOptions(inputs=("https://example.com/a.jpg",)).decode_workers() == max(cores, 16)
    assert InputOptions(inputs=("-",)).decode_workers() == max(cores, 16)  # stdin may list URLs
    assert InputOptions(inputs=("photos/",), workers=3).decode_workers() == 3
