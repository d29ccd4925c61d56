"""runtimes.onnx_export: the graph gives the Keras model's numbers on real photos and follows
the model options."""

import numpy as np
import pytest
from conftest import onnx_session, ours

pytestmark = pytest.mark.keras


def test_fp32_onnx_reproduces_keras_on_real_photos(classic_file, dev_arrays, keras_probabilities):
    session = onnx_session(classic_file)
    probabilities = session.run(None, {"images": dev_arrays})[0]
    np.testing.assert_allclose(probabilities, keras_probabilities, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(-probabilities, 1)[:, :5], np.argsort(-keras_probabilities, 1)[:, :5])


@pytest.mark.parametrize("padding", ["pad1", "valid"])
def test_fp32_onnx_follows_the_pool1_option(keras, weights, classic_file, sample_arrays, padding):
    session = onnx_session(classic_file, pool1_padding=padding, bn_epsilon=1.001e-5)
    expected = ours(weights, preprocess=True, pool1_padding=padding, bn_epsilon=1.001e-5).predict(
        sample_arrays, verbose=0
    )
    np.testing.assert_allclose(session.run(None, {"images": sample_arrays})[0], expected, atol=1e-4)


def test_pooled_features_onnx(keras, weights, classic_file, sample_arrays):
    session = onnx_session(classic_file, include_top=False, pooling="avg")
    expected = ours(weights, preprocess=True, include_top=False, pooling="avg").predict(sample_arrays, verbose=0)
    np.testing.assert_allclose(session.run(None, {"images": sample_arrays})[0], expected, rtol=1e-4, atol=1e-4)


FAMILY = ["resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2"]


@pytest.mark.parametrize("name", FAMILY)
def test_each_members_onnx_equals_keras_applications(family, judged_photos, name):
    """The exported graph (BN folded, preprocessing in the graph, uint8 in) against
    keras.applications' own model and preprocess_input on real photos."""
    member = family(name)
    expected = member.probabilities(judged_photos)
    got = member.session().run(None, {"images": judged_photos})[0]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(-got, 1)[:, :5], np.argsort(-expected, 1)[:, :5])
