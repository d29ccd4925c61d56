"""inputs.decode: pixels equal Keras' own loading; crop mode; format sniffing."""

import numpy as np
import pytest
from conftest import preprocess_caffe

from resnet_cli.inputs.decode import DecodeOptions, decode, sniff


@pytest.mark.keras
def test_decode_equals_keras_load_img_on_real_photos(keras, dev_images):
    from keras.applications.imagenet_utils import preprocess_input
    from keras.utils import img_to_array, load_img

    paths, _ = dev_images
    assert len(paths) >= 28  # 100 with ../shared, 28 made from the samples without
    for path in paths:
        ours = decode(path)
        theirs = img_to_array(load_img(path, target_size=(224, 224)))
        np.testing.assert_array_equal(ours.astype("float32"), theirs, err_msg=path)
        np.testing.assert_array_equal(preprocess_caffe(ours), preprocess_input(theirs.copy()), err_msg=path)


@pytest.mark.keras
def test_crop_mode_is_resize_then_center_crop(keras, dev_images):
    from PIL import Image

    path = dev_images[0][0]
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        scale = 256 / min(w, h)
        resized = image.resize((round(w * scale), round(h * scale)), Image.Resampling.BILINEAR)
        left, top = (resized.width - 224) // 2, (resized.height - 224) // 2
        expected = np.asarray(resized.crop((left, top, left + 224, top + 224)), dtype="float32")
    ours = decode(path, DecodeOptions(resize="crop", interpolation="bilinear")).astype("float32")
    assert ours.shape == (224, 224, 3)
    # One resampling step (box-resize) vs two (resize, crop): within a couple of grey levels.
    assert np.abs(ours - expected).mean() < 3.0


def test_sniff_formats():
    assert sniff(b"\xff\xd8\xff\xe0") == "JPEG"
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "PNG"
    assert sniff(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff(b"hello world") is None
