"""plan: every engine setting decided once, by a pure function of the config, the inputs and
the machine's core count."""

import dataclasses

import pytest

from resnet_cli.config import ModelConfig
from resnet_cli.plan import make_plan
from resnet_cli.request import CPU_BATCH, GPU_BATCH, EngineOptions, InputOptions

CPU = ModelConfig(weights=None, weights_md5=None, runtime="onnx", device="cpu", threads=2)


def test_the_batch_suits_the_device_unless_asked():
    assert make_plan(CPU, InputOptions()).batch_size == CPU_BATCH
    assert make_plan(dataclasses.replace(CPU, device="gpu"), InputOptions()).batch_size == GPU_BATCH
    asked = make_plan(dataclasses.replace(CPU, device="gpu"), InputOptions(), EngineOptions(batch_size=7))
    assert asked.batch_size == 7 and asked.batch_asked


@pytest.mark.parametrize(
    "inputs, workers, expected",
    [
        (("photos/",), 0, 4),  # one per core
        (("https://example.com/a.jpg",), 0, 16),  # a slow server holds one thread, not the batch
        (("-",), 0, 16),  # stdin may list URLs
        (("photos/",), 3, 3),
    ],
)
def test_decode_threads(inputs, workers, expected):
    assert (
        make_plan(CPU, InputOptions(inputs=inputs), EngineOptions(workers=workers), cores=4).decode_workers == expected
    )
    assert make_plan(CPU, InputOptions(inputs=("photos/",)), cores=1).decode_workers == 2  # at least two


def test_openvino_on_every_core_decodes_in_turns_with_the_model():
    openvino = dataclasses.replace(CPU, runtime="openvino")
    local = InputOptions(inputs=("photos/",))
    assert make_plan(CPU, local, cores=2).decode_ahead
    assert not make_plan(openvino, local, cores=2).decode_ahead
    assert make_plan(dataclasses.replace(openvino, threads=1), local, cores=2).decode_ahead  # a spare core
    assert make_plan(openvino, InputOptions(inputs=("s3://bucket/photos/",)), cores=2).decode_ahead  # the network


def test_the_plan_carries_the_run_and_is_frozen():
    asked = EngineOptions(engine="ray", ray_actors=3)
    plan = make_plan(CPU, InputOptions(quiet=True), asked, top_k=3, thumbnails=True)
    assert (plan.engine, plan.ray_actors, plan.quiet, plan.top_k, plan.thumbnails) == ("ray", 3, True, 3, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.batch_size = 1
