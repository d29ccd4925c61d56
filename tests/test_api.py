"""The Python API (resnet_cli.Classifier): its records are the CLI's for the same inputs, every
kind of in-memory input decodes as its file does, bad inputs are records (or InputError), it
streams lazily, is thread-safe, and refuses bad options before any work."""

import io
import json
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
from conftest import ROOT, SAMPLES, invoke

PHOTOS = [str(SAMPLES / name) for name in ("elephant.jpg", "cat.jpg", "coffee.jpg")]


@pytest.fixture(scope="module")
def classifier(classic_file):
    from resnet_cli import Classifier

    with Classifier(weights=classic_file) as opened:
        yield opened


def _dicts(records):
    return [record.as_dict() for record in records]


def test_records_equal_the_clis_json(classifier, classic_file, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really")
    folder = tmp_path / "folder"
    folder.mkdir()
    for path in PHOTOS[:2]:
        shutil.copy(path, folder)
    (folder / "notes.txt").write_text("not a photo")
    inputs = [*PHOTOS, str(broken), str(folder)]
    cli = invoke("--weights", classic_file, "-f", "json", *inputs)
    assert cli.exit_code == 1, cli.stderr  # the broken photo
    api = classifier.classify(inputs)
    assert _dicts(api) == json.loads(cli.stdout)
    assert [r.path for r in api][-2:] == [str(folder / "cat.jpg"), str(folder / "elephant.jpg")]
    assert api[3].error == "truncated image data"


def test_one_input_is_one_record_and_a_folder_many(classifier):
    one = classifier.classify(PHOTOS[0])
    assert one.path == PHOTOS[0] and len(one.predictions) == 5
    assert [r.path for r in classifier.classify(str(SAMPLES))] == sorted(str(p) for p in SAMPLES.glob("*.jpg"))
    assert len(classifier.classify(PHOTOS[0], top_k=2).predictions) == 2


def test_every_kind_of_input_in_memory_decodes_as_its_file(classifier):
    from PIL import Image, ImageOps

    path = PHOTOS[1]
    expected = classifier.classify(path).predictions
    data = open(path, "rb").read()
    upright = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    with open(path, "rb") as handle:
        records = classifier.classify(
            [data, bytearray(data), io.BytesIO(data), handle, Image.open(path), np.asarray(upright)]
        )
    assert [r.path for r in records] == ["<bytes>", "<bytes>", "<file>", path, path, "<array>"]
    for record in records:
        assert record.predictions == expected, record.path


def test_a_grey_and_an_rgba_array_are_images_too(classifier):
    from PIL import Image

    rgb = np.asarray(Image.open(PHOTOS[0]).convert("RGB"))
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    opaque = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    records = classifier.classify([rgb, opaque, grey])
    assert records[0].predictions == records[1].predictions
    assert records[2].ok and records[2].predictions != records[0].predictions


@pytest.mark.parametrize(
    "bad, reason",
    [
        (b"", "empty file (0 bytes)"),
        (open(PHOTOS[1], "rb").read()[:3000], "truncated image data"),
        (np.zeros((8, 8, 3), np.float32), "an array must be uint8"),
        (np.zeros((8, 8, 2), np.uint8), "an array must be uint8"),
        (np.zeros((0, 8, 3), np.uint8), "an empty array"),
        (42, "not an image: a int"),
    ],
)
def test_a_bad_input_is_its_error_record_or_raises(classifier, bad, reason):
    from resnet_cli import InputError

    record = classifier.classify(bad)
    assert not record.ok and record.error.startswith(reason), record.error
    with pytest.raises(InputError) as raised:
        classifier.classify([PHOTOS[0], bad], errors="raise")
    assert raised.value.reason.startswith(reason) and raised.value.path == record.path
    assert isinstance(raised.value, ValueError)


@pytest.mark.slow
def test_stream_reads_its_input_lazily_and_keeps_the_order(classic_file):
    from resnet_cli import Classifier

    data = [open(p, "rb").read() for p in PHOTOS]
    pulled = []

    def inputs():
        for i in range(40):
            pulled.append(i)
            yield data[i % 3]

    with Classifier(weights=classic_file, batch_size=4) as small_batches:
        stream = small_batches.stream(inputs(), top_k=1)
        first = next(stream)
        assert len(pulled) <= 3 * 4 + 1  # at most three batches decoded ahead, not the 40
        labels = [first.predictions[0].label] + [r.predictions[0].label for r in stream]
    assert len(labels) == 40 and len(pulled) == 40
    assert labels[:3] * 13 + labels[:1] == labels


@pytest.mark.slow
def test_embed_equals_the_embed_command(classifier, classic_file, tmp_path):
    out = tmp_path / "features.npz"
    assert invoke("--weights", classic_file, "embed", "-o", out, *PHOTOS).exit_code == 0
    saved = np.load(out)
    records = classifier.embed(PHOTOS)
    np.testing.assert_array_equal(np.stack([r.vector for r in records]), saved["features"])
    assert [r.path for r in records] == list(saved["paths"])
    assert classifier.embed(PHOTOS[0]).vector.shape == (2048,)


@pytest.mark.slow
def test_threads_share_one_classifier(classifier):
    expected = _dicts(classifier.classify(PHOTOS))
    results, failures = [], []

    def work():
        try:
            for _ in range(3):
                results.append(_dicts(classifier.classify(PHOTOS)))
        except Exception as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(results) == 12
    assert all(result == expected for result in results)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"runtime": "tpu"}, "runtime must be one of"),
        ({"precision": "int8", "runtime": "keras"}, "--precision int8 runs on the onnx or openvino runtime"),
        ({"top_k": 0}, "top_k must be a whole number"),
        ({"batch_size": -3}, "batch_size must be a whole number"),
    ],
)
def test_bad_options_raise_before_any_work(options, message, monkeypatch):
    from resnet_cli import Classifier, api

    monkeypatch.setattr(api, "resolve", lambda *a, **k: pytest.fail("resolved a bad request"))
    with pytest.raises(ValueError, match=message):
        Classifier(**options)


def test_a_missing_weights_file_is_a_user_error(tmp_path):
    from resnet_cli import Classifier
    from resnet_cli.errors import UserError

    with pytest.raises(UserError, match="missing.h5"):
        Classifier(weights=tmp_path / "missing.h5", offline=True)


def test_the_package_names_its_api_without_importing_numpy():
    code = (
        "import sys, resnet_cli; assert 'numpy' not in sys.modules, 'numpy on import';"
        "assert resnet_cli.__all__ == ['Classifier', 'InputError', 'Prediction', 'Record'];"
        "from resnet_cli import Classifier, Record; print(Classifier.__name__, Record.__name__)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.split() == ["Classifier", "Record"], done.stderr
    assert (ROOT / "resnet_cli" / "py.typed").exists()


@pytest.mark.slow
def test_the_documented_example_runs(classic_file, tmp_path):
    """docs/python-api.md's first example, as a user would run it, next to elephant.jpg."""
    text = (ROOT / "docs" / "python-api.md").read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copy(SAMPLES / "elephant.jpg", tmp_path)
    shutil.copy(SAMPLES / "cat.jpg", tmp_path)
    env = {**__import__("os").environ, "RESNET_CLI_WEIGHTS": str(classic_file)}
    done = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    first = classifier_top(classic_file, str(tmp_path / "elephant.jpg"))
    assert first in done.stdout


def classifier_top(classic_file, path):
    cli = invoke("--weights", classic_file, "-f", "json", "-k", 1, path)
    return json.loads(cli.stdout)[0]["predictions"][0]["label"]
