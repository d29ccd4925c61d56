"""model.spec: the family's tables — counts and layer names against keras.applications."""

import pytest

from resnet_cli.model import spec as S

NEW = [name for name in S.MODEL_NAMES if name != S.DEFAULT_MODEL]


def test_every_member_has_its_official_files():
    """Two files per member (with and without top), as keras.applications fetches them, and
    the classic ResNet50 pair besides; the numerics of each file's network."""
    for name in S.MODEL_NAMES:
        top, notop = S.default_weights(name), S.default_weights(name, include_top=False)
        assert (top.include_top, notop.include_top) == (True, False)
        assert top.file_name == f"{name}_weights_tf_dim_ordering_tf_kernels.h5"
        assert notop.file_name.endswith("_notop.h5") and top.md5 != notop.md5 and len(top.md5) == 32
        assert top.preprocessing == ("tf" if name.endswith("v2") else "caffe")
    assert S.default_weights("resnet50") is S.CLASSIC  # the walkthrough's file, today's numerics
    for name in NEW:
        spec = S.default_weights(name)
        assert spec.url == f"https://storage.googleapis.com/tensorflow/keras-applications/resnet/{spec.file_name}"
        assert (spec.layout, spec.pool1_padding, spec.bn_epsilon) == ("keras", "pad1", 1.001e-5)
    assert len({s.md5 for s in S.OFFICIAL}) == len(S.OFFICIAL) == 14


@pytest.mark.keras
def test_the_md5s_are_keras_own():
    """The hashes are those keras.applications checks its downloads with."""
    from keras.src.applications.resnet import WEIGHTS_HASHES

    for name in NEW:
        assert (S.default_weights(name).md5, S.default_weights(name, False).md5) == WEIGHTS_HASHES[name]


def test_blocks_follow_each_version():
    v1 = list(S.blocks("resnet101"))
    assert [b.stride for b in v1 if b.projection] == [1, 2, 2, 2] and sum(b.stage == 4 for b in v1) == 23
    assert v1[-1].name("3_conv") == "conv5_block3_3_conv"
    v2 = list(S.blocks("resnet152v2"))
    assert [(b.stage, b.index) for b in v2 if b.stride == 2] == [(2, 3), (3, 8), (4, 36)]  # each stage's last
    assert [b.index for b in v2 if b.projection] == [1, 1, 1, 1]
    classic = next(iter(S.blocks("resnet50")))
    assert (classic.name("0_conv"), classic.name("2_bn"), classic.name("out")) == (
        "res2a_branch1",
        "bn2a_branch2b",
        "res2a_relu",
    )


@pytest.mark.keras
@pytest.mark.parametrize("name", S.MODEL_NAMES)
def test_counts_and_layer_names_are_keras_applications(keras, name):
    """Parameters and weighted layer names from the table equal keras.applications' built
    model (ResNet50: under the classic names); multiply-adds equal a count over the built
    layers' own shapes."""
    from resnet_cli.model.resnet import resnet
    from resnet_cli.model.weights import keras_name

    arch = S.architecture(name)
    reference = getattr(keras.applications, arch.title)(weights=None)
    assert S.parameter_count(name) == reference.count_params()
    ours = resnet(name)
    assert ours.count_params() == reference.count_params()
    names = S.weighted_layers(name)
    assert len(set(names)) == len(names)
    assert {keras_name(n) for n in names} == {layer.name for layer in reference.layers if layer.weights}
    assert set(names) == {layer.name for layer in ours.layers if layer.weights}
    macs = 0
    for layer in ours.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, height, width, out = layer.output.shape
            macs += height * width * out * layer.kernel.shape[0] * layer.kernel.shape[1] * layer.kernel.shape[2]
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.kernel.shape[0] * layer.kernel.shape[1]
    assert S.multiply_adds(name) == macs
