"""The hand-written ResNet50 against keras.applications.ResNet50 on the same weights."""

import numpy as np
import pytest
from conftest import CLASSIC_NAMES, cosines, ours, reference

pytestmark = pytest.mark.keras


def test_parameter_count_and_classic_layer_names(keras):
    from resnet_cli.model.resnet import PARAMETER_COUNT, resnet50

    model = resnet50()
    assert model.count_params() == PARAMETER_COUNT == 25_636_712
    weighted = {layer.name for layer in model.layers if layer.weights}
    # Every weighted layer of the classic file (conv1, bn_conv1, res2a_branch2a … fc1000) is ours.
    classic_weighted = {n for n in CLASSIC_NAMES if n.startswith(("conv1", "bn", "res", "fc1000"))}
    assert len(classic_weighted) == 107
    assert weighted == classic_weighted
    assert isinstance(model.get_layer("avg_pool"), keras.layers.AveragePooling2D)
    assert model.get_layer("avg_pool").output.shape == (None, 1, 1, 2048) and model.output.shape == (None, 1000)


@pytest.mark.parametrize("padding, size", [("same", 16), ("pad1", 16), ("valid", 15)])
def test_pool1_padding_shapes(keras, padding, size):
    """At 64×64 conv1 gives 32×32; Caffe's ceil pooling and pad1 keep 16, valid drops to 15."""
    from resnet_cli.model.resnet import resnet50

    model = resnet50(include_top=False, pool1_padding=padding, input_shape=(64, 64, 3))
    assert model.get_layer("pool1").output.shape == (None, size, size, 64)
    assert model.output.shape == (None, 2, 2, 2048)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pool1_padding": "ceil"}, "pool1_padding"),
        ({"pooling": "sum"}, "pooling"),
        ({"input_shape": (200, 180, 3)}, "include_top"),
        ({"bn_epsilon": 0}, "bn_epsilon"),
    ],
)
def test_arguments_checked_first(keras, kwargs, message):
    from resnet_cli.model.resnet import resnet50

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
    mine = ours(weights, include_top=False, pooling="avg", pool1_padding="pad1", bn_epsilon=1.001e-5).predict(
        x, verbose=0
    )
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


def _bf16(keras, build):
    from resnet_cli.model.resnet import _dtype_policy

    with _dtype_policy("mixed_bfloat16"):
        return build()


def test_bf16_equivalent_to_keras_applications_in_mixed_precision(keras, weights, dev_arrays):
    """Our bf16 model is Keras' mixed_bfloat16 recipe: it matches keras.applications built
    under that policy on the same weights (pooled features; both compute convs in bf16)."""
    from keras.applications.imagenet_utils import preprocess_input

    x = preprocess_input(dev_arrays[:16].astype("float32"), mode="caffe")
    ref = _bf16(keras, lambda: reference(keras, weights, include_top=False, pooling="avg"))
    mine = ours(weights, include_top=False, pooling="avg", pool1_padding="pad1", bn_epsilon=1.001e-5, precision="bf16")
    assert mine.get_layer("res3a_branch2a").compute_dtype == "bfloat16"
    assert mine.get_layer("res3a_branch2a").kernel.dtype == "float32"  # variables stay fp32
    theirs = np.asarray(ref.predict(x, verbose=0), np.float32)
    got = np.asarray(mine.predict(x, verbose=0), np.float32)
    np.testing.assert_allclose(got, theirs, rtol=0.02, atol=0.02 * np.abs(theirs).mean())


def test_bf16_agrees_with_fp32_on_the_dev_photos(keras, weights, dev_arrays):
    """What bf16 costs in agreement, on the 100 ImageNet dev photos (numbers in the README)."""
    fp32 = ours(weights, preprocess=True).predict(dev_arrays, batch_size=25, verbose=0)
    bf16 = np.asarray(
        ours(weights, preprocess=True, precision="bf16").predict(dev_arrays, batch_size=25, verbose=0), np.float32
    )
    assert bf16.dtype == np.float32 and np.allclose(bf16.sum(axis=1), 1, atol=1e-3)  # softmax in fp32
    top1 = np.mean(fp32.argmax(1) == bf16.argmax(1))
    in_top5 = np.mean([a in np.argsort(-b)[:5] for a, b in zip(fp32.argmax(1), bf16)])
    # Logits up to a per-row constant: log p minus its row mean (the softmax's shift cancels).
    logits32, logits16 = (np.log(np.maximum(p, 1e-30)) for p in (fp32, bf16))
    logits32 -= logits32.mean(axis=1, keepdims=True)
    logits16 -= logits16.mean(axis=1, keepdims=True)
    relative = np.sqrt(np.mean((logits16 - logits32) ** 2, axis=1)) / logits32.std(axis=1)
    print(
        f"bf16 vs fp32: top-1 same {top1:.2f}, fp32 top-1 in bf16 top-5 {in_top5:.2f}, "
        f"rms Δlogit / std(logits): median {np.median(relative):.3f} max {relative.max():.3f}, "
        f"max |Δp| {np.abs(fp32 - bf16).max():.3f}"
    )
    assert top1 >= 0.9 and in_top5 == 1.0
    assert relative.max() < 0.15  # stated tolerance (measured here: median 0.04, max 0.10)


FAMILY = ["resnet101", "resnet152", "resnet50v2", "resnet101v2", "resnet152v2"]


@pytest.mark.parametrize("name", FAMILY)
def test_each_member_equals_keras_applications_on_real_photos(family, judged_photos, name):
    """Our model, its weights read from the official file's layout, against keras.applications'
    own model with those weights and its own preprocess_input: the same top five, the same
    probabilities to 1e-4."""
    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest
    from resnet_cli.runtimes.keras_runtime import build_model

    member = family(name)
    expected = member.probabilities(judged_photos)
    assert len(set(expected.argmax(1))) >= 4 and expected.max(1).min() < 0.9, "scores must differ, unsaturated"
    model = build_model(resolve(ModelRequest(model=name, weights=str(member.file), runtime="keras")))
    got = np.asarray(model(judged_photos, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(-got, 1)[:, :5], np.argsort(-expected, 1)[:, :5])


@pytest.mark.parametrize("name", ["resnet50", *FAMILY])
def test_in_graph_preprocessing_is_the_models_own_preprocess_input(keras, judged_photos, name):
    """uint8 RGB in: the graph's first layer gives what keras.applications.<module>.preprocess_input
    gives (caffe for v1, tf for v2)."""
    from resnet_cli.model.resnet import resnet
    from resnet_cli.model.spec import default_weights

    preprocessing = default_weights(name).preprocessing
    model = resnet(name, include_top=False, input_shape=(64, 64, 3), preprocess=preprocessing)  # only its first layer
    probe = keras.Model(model.input, model.get_layer(f"{preprocessing}_preprocess").output)
    module = keras.applications.resnet_v2 if name.endswith("v2") else keras.applications.resnet
    crops = np.ascontiguousarray(judged_photos[:, 80:144, 80:144])
    expected = module.preprocess_input(crops.astype("float32"))
    np.testing.assert_allclose(np.asarray(probe(crops)), expected, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet152", "resnet101v2"])
def test_deep_members_build_at_small_sizes(keras, name):
    """Shapes only: the deep members at 64×64 end in a 2×2 map of 2048 channels."""
    from resnet_cli.model.resnet import resnet

    model = resnet(name, include_top=False, input_shape=(64, 64, 3), pool1_padding="pad1")
    assert model.output.shape == (None, 2, 2, 2048)
    assert model.name == name


def test_bf16_on_a_v2_member_keeps_its_pooled_features(family, judged_photos):
    """--precision bf16 on the keras runtime builds every member in mixed bfloat16; ResNet50V2's
    pooled features keep fp32's direction."""
    import dataclasses

    from resnet_cli.runtimes.keras_runtime import build_model

    member = family("resnet50v2")
    config = dataclasses.replace(member.config(runtime="keras", precision="bf16"), include_top=False, pooling="avg")
    model = build_model(config)
    assert model.get_layer("conv3_block1_2_conv").compute_dtype == "bfloat16"
    got = np.asarray(model(judged_photos, training=False), np.float32)
    expected = member.pooled(judged_photos)
    cosine = cosines(got, expected)
    print(f"resnet50v2 bf16 vs keras.applications fp32: pooled cosine min {cosine.min():.5f}")
    assert cosine.min() >= 0.99
