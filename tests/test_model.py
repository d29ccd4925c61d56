"""The hand-written ResNet50 against keras.applications.ResNet50 on the same weights."""

import numpy as np
import pytest

from conftest import CLASSIC_NAMES, ours


def reference(keras, weights, **kwargs):
    """keras.applications.ResNet50 with our weights copied in through the name mapping."""
    from resnet_cli.weights import keras_name

    model = keras.applications.ResNet50(weights=None, **kwargs)
    for name, arrays in weights.items():
        if kwargs.get("include_top", True) or name != "fc1000":
            model.get_layer(keras_name(name)).set_weights(arrays)
    return model


def test_parameter_count_and_classic_layer_names(keras):
    from resnet_cli.model import PARAMETER_COUNT, resnet50

    model = resnet50()
    assert model.count_params() == PARAMETER_COUNT == 25_636_712
    weighted = {layer.name for layer in model.layers if layer.weights}
    # Every weighted layer of the classic file (conv1, bn_conv1, res2a_branch2a … fc1000) is ours.
    classic_weighted = {n for n in CLASSIC_NAMES if n.startswith(("conv1", "bn", "res", "fc1000"))}
    assert len(classic_weighted) == 107
    assert weighted == classic_weighted
    assert model.get_layer("avg_pool") is not None and model.output.shape == (None, 1000)


@pytest.mark.parametrize("padding, size", [("same", 56), ("pad1", 56), ("valid", 55)])
def test_pool1_padding_shapes(keras, padding, size):
    from resnet_cli.model import resnet50

    model = resnet50(include_top=False, pool1_padding=padding)
    assert model.get_layer("pool1").output.shape == (None, size, size, 64)
    assert model.output.shape == (None, 7, 7, 2048)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pool1_padding": "ceil"}, "pool1_padding"),
        ({"pooling": "sum"}, "pooling"),
        ({"input_shape": (200, 200, 3)}, "include_top"),
        ({"bn_epsilon": 0}, "bn_epsilon"),
    ],
)
def test_arguments_checked_first(keras, kwargs, message):
    from resnet_cli.model import resnet50

    with pytest.raises(ValueError, match=f"{message}.*Received|Received.*{message}"):
        resnet50(**kwargs)


def test_equivalent_to_keras_applications(keras, weights, dev_arrays):
    """Set as keras.applications has them (pad1 pool, eps 1.001e-5), both networks agree."""
    from keras.applications.imagenet_utils import preprocess_input

    x = preprocess_input(dev_arrays[:16].astype("float32"), mode="caffe")
    ref = reference(keras, weights).predict(x, verbose=0)
    mine = ours(weights, pool1_padding="pad1", bn_epsilon=1.001e-5).predict(x, verbose=0)
    assert ref.max(axis=1).min() < 0.9, "weights must not saturate, or the test proves little"
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=2e-6)
    np.testing.assert_array_equal(np.argsort(-mine, 1)[:, :5], np.argsort(-ref, 1)[:, :5])


def test_pooled_features_equivalent(keras, weights, sample_arrays):
    from keras.applications.imagenet_utils import preprocess_input

    x = preprocess_input(sample_arrays.astype("float32"), mode="caffe")
    ref = reference(keras, weights, include_top=False, pooling="avg").predict(x, verbose=0)
    mine = ours(weights, include_top=False, pooling="avg", pool1_padding="pad1", bn_epsilon=1.001e-5).predict(x, verbose=0)
    np.testing.assert_allclose(mine, ref, rtol=1e-4, atol=1e-5)


def test_in_graph_preprocessing_matches_keras_preprocess_input(keras, weights, sample_arrays):
    from keras.applications.imagenet_utils import preprocess_input

    x = preprocess_input(sample_arrays.astype("float32"), mode="caffe")
    plain = ours(weights).predict(x, verbose=0)
    fused = ours(weights, preprocess=True).predict(sample_arrays, verbose=0)
    np.testing.assert_array_equal(fused, plain)


def test_pool1_choice_changes_the_numbers(keras, weights, sample_arrays):
    """The Caffe pooling default is not a no-op relative to keras.applications' padding."""
    a = ours(weights, preprocess=True).predict(sample_arrays, verbose=0)
    b = ours(weights, preprocess=True, pool1_padding="pad1").predict(sample_arrays, verbose=0)
    assert np.abs(a - b).max() > 1e-3
