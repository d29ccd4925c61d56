"""Caffe preprocessing, the bundled class index and top-k decoding against Keras' own."""

import hashlib
import json
from importlib import resources

import numpy as np
import pytest
from conftest import preprocess_caffe

from resnet_cli.model import imagenet


@pytest.mark.keras
def test_preprocess_is_exactly_keras_caffe(keras):
    from keras.applications.imagenet_utils import preprocess_input

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(4, 224, 224, 3)).astype("float32")
    expected = preprocess_input(rgb.copy(), mode="caffe")
    np.testing.assert_array_equal(preprocess_caffe(rgb), expected)
    np.testing.assert_array_equal(preprocess_caffe(rgb.astype("uint8")), expected)


def test_class_index_is_the_standard_file():
    data = resources.files("resnet_cli").joinpath("data/imagenet_class_index.json").read_bytes()
    assert hashlib.md5(data).hexdigest() == "c2c37ea517e94d9795004a39431a14cb"
    classes = imagenet.class_index()
    assert len(classes) == 1000 and classes[0] == ("n01440764", "tench")
    assert classes[386] == ("n02504458", "African_elephant")


@pytest.mark.keras
def test_decode_top_k_matches_keras_decode_predictions(keras, monkeypatch):
    import keras.src.applications.imagenet_utils as utils

    local = resources.files("resnet_cli").joinpath("data/imagenet_class_index.json")
    monkeypatch.setattr(utils, "CLASS_INDEX", json.loads(local.read_text()))
    rng = np.random.default_rng(1)
    scores = rng.dirichlet(np.ones(1000), size=3).astype("float32")
    ours = imagenet.decode_top_k(scores, k=5)
    theirs = utils.decode_predictions(scores, top=5)
    for mine, ref in zip(ours, theirs):
        assert [(p.wnid, p.label) for p in mine] == [(wnid, label) for wnid, label, _ in ref]
        np.testing.assert_allclose([p.score for p in mine], [s for _, _, s in ref])
        assert [p.rank for p in mine] == [1, 2, 3, 4, 5]


def test_decode_top_k_fields_and_checks():
    scores = np.zeros((1, 1000), "float32")
    scores[0, 386], scores[0, 101] = 0.7, 0.2
    top = imagenet.decode_top_k(scores, k=2)[0]
    assert top[0].as_dict() == {
        "rank": 1,
        "index": 386,
        "wnid": "n02504458",
        "label": "African_elephant",
        "score": pytest.approx(0.7),
    }
    assert top[1].index == 101 and top[1].label == "tusker"
    with pytest.raises(ValueError, match="Received"):
        imagenet.decode_top_k(np.zeros((1, 10)), k=1)
    with pytest.raises(ValueError, match="Received: k=0"):
        imagenet.decode_top_k(scores, k=0)


def test_find_class_by_index_wnid_label():
    assert imagenet.find_class("386") == 386
    assert imagenet.find_class("n02504458") == 386
    assert imagenet.find_class("African elephant") == 386
    with pytest.raises(ValueError, match="Received"):
        imagenet.find_class("unicorn")
