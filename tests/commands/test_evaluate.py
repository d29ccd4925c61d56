"""The evaluate command: accuracy equal to a reference count with keras.applications' own ranking."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES, invoke, reference

from resnet_cli.cli import main

pytestmark = pytest.mark.keras

KERAS_APP_OPTIONS = ["--pool1-padding", "pad1", "--bn-epsilon", "1.001e-5"]
ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


@pytest.fixture(scope="module")
def reference_ranking(keras, weights, dev_images):
    """keras.applications' class ranking of each dev photo, computed the walkthrough's way."""
    from keras.applications.imagenet_utils import preprocess_input
    from keras.utils import img_to_array, load_img

    paths, _ = dev_images
    x = np.stack([img_to_array(load_img(p, target_size=(224, 224))) for p in paths])
    probabilities = reference(keras, weights).predict(preprocess_input(x), verbose=0, batch_size=25)
    return np.argsort(-probabilities, axis=1, kind="stable")


def _evaluate(classic_file, *args):
    result = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--weights",
            str(classic_file),
            *map(str, args),
            "-f",
            "json",
            "--runtime",
            "keras",
            *KERAS_APP_OPTIONS,
        ],
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_csv_labels_match_reference_counts(classic_file, dev_images, reference_ranking, tmp_path):
    paths, truth = dev_images
    # Labels chosen so the expected accuracy is far from 0: rank 1, rank 3, rank 7, and the truth.
    labels = []
    for i in range(len(paths)):
        label = [reference_ranking[i, 0], reference_ranking[i, 2], reference_ranking[i, 6], truth[i]][i % 4]
        labels.append(int(label))
    csv_path = tmp_path / "labels.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class_index"])
        writer.writerows((Path(p).name, label) for p, label in zip(paths, labels))
    expected_top1 = np.mean([reference_ranking[i, 0] == labels[i] for i in range(len(paths))])
    expected_top5 = np.mean([labels[i] in reference_ranking[i, :5] for i in range(len(paths))])
    assert expected_top1 >= 0.25 and expected_top5 >= 0.5

    report = _evaluate(classic_file, Path(paths[0]).parent, "--labels", csv_path, "-b", "25")
    assert report["images"] == len(paths)
    assert report["top1"] == pytest.approx(expected_top1)
    assert report["top5"] == pytest.approx(expected_top5)
    assert len(report["worst_classes"]) == 5 and {"index", "wnid", "label", "images", "top1"} <= set(
        report["worst_classes"][0]
    )


def test_wnid_file_names_and_wnid_folders(classic_file, dev_images, reference_ranking, tmp_path):
    paths, truth = dev_images
    expected_top5 = np.mean([truth[i] in reference_ranking[i, :5] for i in range(10)])
    # wnid folder layout: train/n01440764/whatever.jpg
    for path in paths[:10]:
        wnid = Path(path).name.split("_")[0]
        (tmp_path / wnid).mkdir()
        (tmp_path / wnid / "photo.JPEG").symlink_to(path)
    by_folder = _evaluate(classic_file, tmp_path, "-b", "10")
    assert by_folder["images"] == 10 and by_folder["top5"] == pytest.approx(expected_top5)
    by_name = _evaluate(classic_file, *paths[:10], "-b", "10")
    assert by_name == by_folder


def test_evaluate_table_and_no_labels(classic_file, tmp_path):
    from conftest import SAMPLES

    result = CliRunner().invoke(
        main, ["evaluate", "--weights", str(classic_file), "--runtime", "keras", str(SAMPLES / "cat.jpg")]
    )
    assert result.exit_code == 1 and "none of the 1 inputs has a label" in result.stderr and result.stdout == ""


def test_evaluate_with_no_usable_labeled_photo_says_null_not_zero(classic_file, tmp_path):
    """Labeled, but no photo could be read: accuracies are null (0.0 would read as a result)."""
    (tmp_path / "n01440764").mkdir()
    (tmp_path / "n01440764" / "broken.jpg").write_bytes(b"")
    result = invoke("evaluate", "--weights", classic_file, "-f", "json", tmp_path)
    report = json.loads(result.stdout)
    assert report["images"] == 0 and report["top1"] is None and report["top5"] is None
    assert result.exit_code == 1 and "no labeled images" in result.stderr
    table = invoke("evaluate", "--weights", classic_file, tmp_path)
    assert "top-1   n/a (no labeled images)" in table.stdout


def test_folders_that_match_no_class_are_named_before_the_model_runs(classic_file, tmp_path, monkeypatch):
    from resnet_cli.runtimes import factory

    for folder in ("cats", "dogs"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes())
    monkeypatch.setattr(factory, "open_runtime", lambda *a, **k: pytest.fail("the model ran"))
    result = invoke("evaluate", "--weights", classic_file, tmp_path)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == (
        "resnet-classify: error: none of the 2 inputs has a label: their folders are cats, dogs; labels come from "
        "ImageNet wnid folders (n01440764/…) or n01440764_… file names.\n"
    )


def test_csv_entries_absolute_or_missing(classic_file, tmp_path):
    """Absolute paths in the labels CSV match their inputs, as do paths relative to the CSV's
    own folder; an entry that names no input is one warning line naming it, not silence."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (photos / name).write_bytes((SAMPLES / "cat.jpg").read_bytes())
    labels = tmp_path / "labels.csv"
    labels.write_text(f"file,class_index\n{photos / 'a.jpg'},1\nphotos/b.jpg,2\nphotos/gone.jpg,3\n")
    result = invoke("evaluate", "--weights", classic_file, "--labels", labels, "-f", "json", photos)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["images"] == 2
    assert f"warning: 1 file(s) in {labels} name none of the inputs (not counted): photos/gone.jpg" in result.stderr
