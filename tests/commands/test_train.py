"""`train` end to end on real photos (folders of tinted ImageNet photos, which a linear probe
separates even on random-weight features)."""

import json

import numpy as np
import pytest
from conftest import SAMPLES, invoke


def jsonl(result):
    return [json.loads(line) for line in result.stdout.splitlines()]


def accuracy(records):
    """Share of records whose top-1 label is the photo's folder name."""
    return np.mean([r["predictions"][0]["label"] == r["path"].split("/")[-2] for r in records])


@pytest.fixture(scope="module")
def head_records(trained_head, tinted, classic_file):
    """classify --head -k 2 on the unseen test photos (fp32, onnx)."""
    head, _ = trained_head
    result = invoke(
        "classify", "--head", head, "--weights", classic_file, "-f", "jsonl", "-k", 2, "-q", "-r", tinted / "test"
    )
    assert result.exit_code == 0, result.stderr
    return jsonl(result)


def test_train_reports_a_validation_split(trained_head, tinted):
    _, report = trained_head
    images = sum(1 for _ in (tinted / "train").rglob("*.jpg"))
    assert report["classes"] == ["blue", "green", "grey", "red"]
    assert report["train_images"] + report["val_images"] == images
    assert report["val_images"] == pytest.approx(0.2 * images, abs=4)  # stratified: ~20 % of each class
    assert all(row["images"] >= 1 for row in report["per_class"])
    assert np.trace(report["confusion"]) / report["val_images"] == pytest.approx(report["val_accuracy"])
    assert report["val_accuracy"] >= 0.75
    assert report["cv_folds"] == 3 and report["C"] > 0


def test_head_classifies_unseen_photos(head_records, trained_head, tinted, classic_file):
    head, report = trained_head
    assert len(head_records) == sum(1 for _ in (tinted / "test").rglob("*.jpg"))
    assert accuracy(head_records) >= 0.9
    for record in head_records:
        assert [p["rank"] for p in record["predictions"]] == [1, 2]
        for p in record["predictions"]:
            assert p["wnid"] is None and report["classes"][p["index"]] == p["label"]
    result = invoke("evaluate", "--head", head, "--weights", classic_file, "-f", "json", "-q", tinted / "test")
    assert result.exit_code == 0, result.stderr
    evaluated = json.loads(result.stdout)
    assert evaluated["images"] == len(head_records)
    assert evaluated["top1"] == pytest.approx(accuracy(head_records))
    assert {row["label"] for row in evaluated["worst_classes"]} == set(report["classes"])


def test_head_is_softmax_of_the_saved_weights_on_embed_features(
    head_records, trained_head, tinted, classic_file, tmp_path
):
    head, _ = trained_head
    result = invoke("embed", "--weights", classic_file, "-q", "-r", tinted / "test", "-o", tmp_path / "f.npz")
    assert result.exit_code == 0, result.stderr
    saved, embedded = np.load(head), np.load(tmp_path / "f.npz")
    logits = embedded["features"].astype(np.float64) @ saved["kernel"] + saved["bias"]
    expected = np.exp(logits - logits.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    by_path = dict(zip(embedded["paths"], expected))
    for record in head_records:
        for p in record["predictions"]:
            assert p["score"] == pytest.approx(by_path[record["path"]][p["index"]], abs=2e-5)
        assert record["predictions"][0]["index"] == int(np.argmax(by_path[record["path"]]))


@pytest.mark.keras
def test_head_on_keras_and_int8_agrees_with_onnx_fp32(head_records, trained_head, tinted, classic_file):
    head, _ = trained_head
    args = ("classify", "--head", head, "--weights", classic_file, "-f", "jsonl", "-k", 2, "-q", "-r", tinted / "test")
    keras = invoke(*args, "--runtime", "keras")
    int8 = invoke(*args, "--precision", "int8")
    assert keras.exit_code == 0 and int8.exit_code == 0, keras.stderr + int8.stderr
    for theirs, ours in zip(jsonl(keras), head_records):
        assert [p["index"] for p in theirs["predictions"]] == [p["index"] for p in ours["predictions"]]
        assert [p["score"] for p in theirs["predictions"]] == pytest.approx(
            [p["score"] for p in ours["predictions"]], abs=1e-4
        )
    quantized = jsonl(int8)
    agreement = np.mean(
        [a["predictions"][0]["index"] == b["predictions"][0]["index"] for a, b in zip(quantized, head_records)]
    )
    assert agreement >= 0.85 and accuracy(quantized) >= 0.85


def test_top_k_beyond_the_classes_gives_all_of_them(trained_head, classic_file):
    head, report = trained_head
    result = invoke(
        "classify", "--head", head, "--weights", classic_file, "-f", "json", "-k", 9, "-q", SAMPLES / "cat.jpg"
    )
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert sorted(p["label"] for p in record["predictions"]) == report["classes"]
    assert sum(p["score"] for p in record["predictions"]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.slow
def test_train_with_augmentation_and_no_validation(tinted, classic_file, tmp_path):
    result = invoke(
        "train",
        "--weights",
        classic_file,
        tinted / "test",
        "-o",
        tmp_path / "h.npz",
        "--augment",
        1,
        "--val-fraction",
        0,
        "-f",
        "json",
        "-q",
    )
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["val_images"] == 0 and report["val_accuracy"] is None
    assert report["augmented"] == report["train_images"] == sum(1 for _ in (tinted / "test").rglob("*.jpg"))
    table = invoke(
        "train", "--weights", classic_file, tinted / "test", "-o", tmp_path / "h2.npz", "--val-fraction", 0, "-q"
    )
    assert "validation    none" in table.stdout


def test_bad_files_are_skipped_and_a_class_left_with_one_photo_is_named(classic_file, tmp_path):
    photos = sorted(SAMPLES.glob("*.jpg"))
    for name, sources in (("cats", photos[:3]), ("rockets", photos[3:6]), ("misc", photos[6:7])):
        (tmp_path / "data" / name).mkdir(parents=True)
        for source in sources:
            (tmp_path / "data" / name / source.name).write_bytes(source.read_bytes())
    (tmp_path / "data" / "misc" / "broken.jpg").write_bytes(b"not a jpeg")
    result = invoke("train", "--weights", classic_file, tmp_path / "data", "-o", tmp_path / "h.npz")
    assert result.exit_code == 1 and result.stdout == ""
    assert f"error: {tmp_path / 'data' / 'misc' / 'broken.jpg'}:" in result.stderr
    assert "too few in 'misc' (1)" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "h.npz").exists()


def test_train_usage_and_layout_errors(tmp_path):
    (tmp_path / "one" / "only").mkdir(parents=True)
    (tmp_path / "one" / "only" / "a.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes())
    assert invoke("train", tmp_path / "missing", "-o", tmp_path / "h.npz").exit_code == 2
    assert invoke("train", tmp_path / "one", "-o", tmp_path / "h.txt").exit_code == 2
    assert invoke("train", tmp_path / "one", "-o", tmp_path / "h.npz", "--val-fraction", 1.5).exit_code == 2
    result = invoke("train", tmp_path / "one", "-o", tmp_path / "h.npz")  # before any weights are looked for
    assert result.exit_code == 1 and "at least 2 classes" in result.stderr and "'only'" in result.stderr


def test_a_validation_split_too_small_to_mean_anything_is_said(tinted, classic_file, tmp_path):
    import shutil

    for name in ("red", "blue"):
        shutil.copytree(tinted / "train" / name, tmp_path / "few" / name)
        for extra in sorted((tmp_path / "few" / name).iterdir())[6:]:
            extra.unlink()
    result = invoke("train", "--weights", classic_file, tmp_path / "few", "-o", tmp_path / "h.npz", "-q")
    assert result.exit_code == 0, result.stderr
    assert "warning: the validation split holds 2 photos, 1 in the smallest class: its accuracy means little" in (
        result.stderr
    )


@pytest.mark.keras
def test_a_head_on_resnet101_remembers_its_model(family, tinted, classic_file, tmp_path):
    """train --model resnet101, then --head alone runs ResNet101 (the head's model); asking
    for another model, or giving another model's weights, is refused in one line."""
    member = family("resnet101")
    head = tmp_path / "tints101.npz"
    trained = invoke(
        "train", "--model", "resnet101", "--weights", member.file, tinted / "train", "-o", head, "-f", "json", "-q"
    )
    assert trained.exit_code == 0, trained.stderr
    assert json.loads(trained.stdout)["val_accuracy"] >= 0.75
    result = invoke("--head", head, "--weights", member.file, "-f", "jsonl", "-k", 2, "-q", "-r", tinted / "test")
    assert result.exit_code == 0, result.stderr
    assert accuracy(jsonl(result)) >= 0.8
    other = invoke("--model", "resnet50", "--head", head, "--weights", classic_file, SAMPLES / "cat.jpg")
    assert other.exit_code == 1 and "trained with --model resnet101; this run asks for --model resnet50" in other.stderr
    wrong = invoke("--head", head, "--weights", classic_file, SAMPLES / "cat.jpg")
    assert wrong.exit_code == 1 and len(wrong.stderr.strip().splitlines()) == 1 and "Traceback" not in wrong.stderr
