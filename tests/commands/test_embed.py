"""embed: pooled features equal keras.applications' on the same weights; duplicates and an
EXIF-rotated lossless copy give identical vectors."""

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES, invoke, reference
from PIL import Image

from resnet_cli.cli import main

pytestmark = pytest.mark.keras

KERAS_APP_OPTIONS = ["--pool1-padding", "pad1", "--bn-epsilon", "1.001e-5"]


@pytest.mark.parametrize("runtime", ["keras", "onnx"])
def test_vectors_equal_keras_applications_pooled_features(keras, weights, classic_file, tmp_path, runtime):
    from keras.applications.imagenet_utils import preprocess_input
    from keras.utils import img_to_array, load_img

    paths = sorted(str(p) for p in SAMPLES.glob("*.jpg"))
    out = tmp_path / "features.npz"
    result = CliRunner().invoke(
        main,
        ["embed", "--weights", str(classic_file), "--runtime", runtime, *KERAS_APP_OPTIONS, "-o", str(out), *paths],
    )
    assert result.exit_code == 0, result.stderr
    saved = np.load(out)
    assert list(saved["paths"]) == paths and saved["features"].shape == (len(paths), 2048)
    x = preprocess_input(np.stack([img_to_array(load_img(p, target_size=(224, 224))) for p in paths]))
    expected = reference(keras, weights, include_top=False, pooling="avg").predict(x, verbose=0)
    np.testing.assert_allclose(saved["features"], expected, rtol=1e-4, atol=1e-4)


def test_duplicate_and_rotated_copy_give_identical_vectors(classic_file, tmp_path):
    upright = Image.open(SAMPLES / "cat.jpg").convert("RGB")
    upright.save(tmp_path / "a.png")
    upright.save(tmp_path / "b.png")
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to display"
    upright.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "c_rotated.png", exif=exif)
    out = tmp_path / "f.npy"
    result = CliRunner().invoke(
        main, ["embed", "--weights", str(classic_file), "--normalize", "-o", str(out), str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    features = np.load(out)
    names = (tmp_path / "f.txt").read_text().splitlines()
    assert [n.rsplit("/", 1)[1] for n in names] == ["a.png", "b.png", "c_rotated.png"]
    np.testing.assert_array_equal(features[0], features[1])
    np.testing.assert_array_equal(features[0], features[2])
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-5)


def test_embed_resnet101v2_gives_keras_applications_pooled_features(family, dev_images, tmp_path):
    """2048-d vectors for a v2 member too: keras.applications' own avg_pool output (after post_bn)."""
    from resnet_cli.inputs.decode import decode

    member = family("resnet101v2")
    paths = dev_images[0][16:22]
    out = tmp_path / "v2.npz"
    result = invoke("embed", "--model", "resnet101v2", "--weights", member.file, *paths, "-o", out, "-q")
    assert result.exit_code == 0, result.stderr
    with np.load(out) as saved:
        vectors, names = saved["features"], [str(p) for p in saved["paths"]]
    assert vectors.shape == (len(paths), 2048)
    expected = member.pooled(np.stack([decode(p) for p in names]))
    np.testing.assert_allclose(vectors, expected, rtol=1e-4, atol=1e-4)
