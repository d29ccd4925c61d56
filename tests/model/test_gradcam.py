"""explain: our closed-form Grad-CAM against a Grad-CAM computed with the backend's autodiff."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import REAL_WEIGHTS, SAMPLES, reference, requires_real_weights
from PIL import Image

from resnet_cli.cli import main

pytestmark = pytest.mark.keras

ELEPHANT = SAMPLES / "elephant.jpg"


def autodiff_gradcam(keras, model, x, class_index):
    """Textbook Grad-CAM: d logit_c / d A by the backend's own gradients."""
    feature_model = keras.Model(model.input, [model.get_layer("conv5_block3_out").output, model.output])
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            features, logits = feature_model(x)
            score = logits[:, class_index]
        grads = tape.gradient(score, features).numpy()[0]
        features = features.numpy()[0]
    else:
        pytest.skip(f"the autodiff reference is written for TensorFlow; backend is {backend}")
    alpha = grads.mean(axis=(0, 1))
    cam = np.maximum(features @ alpha, 0)
    return cam / cam.max()


def test_heatmap_equals_autodiff_gradcam(keras, weights, classic_file, tmp_path):
    from keras.applications.imagenet_utils import preprocess_input
    from keras.utils import img_to_array, load_img

    model = reference(keras, weights, classifier_activation=None)
    x = preprocess_input(img_to_array(load_img(ELEPHANT, target_size=(224, 224)))[None])
    logits = np.asarray(model(x))[0]
    top1 = int(np.argmax(logits))
    expected = autodiff_gradcam(keras, model, x, top1)

    png, raw = tmp_path / "heat.png", tmp_path / "map.npy"
    result = CliRunner().invoke(
        main,
        [
            "explain",
            "--weights",
            str(classic_file),
            str(ELEPHANT),
            "-o",
            str(png),
            "--raw",
            str(raw),
            "--pool1-padding",
            "pad1",
            "--bn-epsilon",
            "1.001e-5",
        ],
    )
    assert result.exit_code == 0, result.stderr
    np.testing.assert_allclose(np.load(raw), expected, atol=1e-4)
    with Image.open(png) as heat, Image.open(ELEPHANT) as photo:
        assert heat.size == photo.size and heat.mode == "RGB"
    assert f"index {top1}" in result.stderr


def test_explain_other_class_and_bad_class(classic_file, tmp_path):
    raw_a, raw_b = tmp_path / "a.npy", tmp_path / "b.npy"

    def run(*args):
        return CliRunner().invoke(
            main, ["explain", "--weights", str(classic_file), str(ELEPHANT), "-o", str(tmp_path / "h.png"), *args]
        )

    assert run("--class", "tusker", "--raw", str(raw_a)).exit_code == 0
    assert run("--class", "0", "--raw", str(raw_b)).exit_code == 0
    assert not np.array_equal(np.load(raw_a), np.load(raw_b))
    bad = run("--class", "unicorn")
    assert bad.exit_code == 1 and "Received: 'unicorn'" in bad.stderr


@requires_real_weights
def test_heat_lies_on_the_elephants(tmp_path):
    raw = tmp_path / "map.npy"
    result = CliRunner().invoke(
        main,
        ["explain", "--weights", str(REAL_WEIGHTS), str(ELEPHANT), "-o", str(tmp_path / "h.png"), "--raw", str(raw)],
    )
    assert result.exit_code == 0, result.stderr
    cam = np.load(raw)
    # The herd stands in the band from ~15 % to ~60 % of the height (map rows 1–4 of 7); sky
    # and trees above, dry grass below.
    assert cam[1:5].sum() > 0.7 * cam.sum()


def test_explain_on_a_v2_member_maps_the_activation_after_post_bn(family, tmp_path):
    """--model resnet50v2: the map is CAM on post_relu with the predictions column, as
    computed from keras.applications.ResNet50V2's own layers."""
    import keras

    from resnet_cli.inputs.decode import decode
    from resnet_cli.model.gradcam import class_activation_map

    member = family("resnet50v2")
    photo = SAMPLES / "elephant.jpg"
    raw = tmp_path / "cam.npy"
    args = [
        "explain",
        "--model",
        "resnet50v2",
        "--weights",
        str(member.file),
        str(photo),
        "-o",
        str(tmp_path / "e.png"),
    ]
    result = CliRunner().invoke(main, [*args, "--raw", str(raw), "-q"])
    assert result.exit_code == 0, result.stderr
    probe = keras.Model(
        member.reference.input, [member.reference.get_layer("post_relu").output, member.reference.output]
    )
    features, scores = (np.asarray(a)[0] for a in probe(member.preprocess(decode(str(photo))[None]), training=False))
    kernel = member.reference.get_layer("predictions").get_weights()[0]
    expected = class_activation_map(features, kernel, int(scores.argmax()))
    np.testing.assert_allclose(np.load(raw), expected, atol=1e-4)
