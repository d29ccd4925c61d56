"""`train` end to end on real photos (folders of tinted ImageNet photos, which a linear probe
separates even on random-weight features) and its parts: the split, the fit, augmentation."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import SAMPLES

from resnet_cli.cli import main


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="resnet-classify")


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


# ---------------------------------------------------------------------------- the parts


def test_fit_head_folds_standardisation_into_the_kernel():
    from sklearn.linear_model import LogisticRegression

    from resnet_cli.training import fit as train

    rng = np.random.default_rng(0)
    for classes in (2, 3):
        targets = np.repeat(np.arange(classes), 12)
        features = rng.normal(2.0, 3.0, (len(targets), 2048)).astype(np.float32)
        features[np.arange(len(targets)), targets] += 6
        fit = train.fit_head(features, targets, classes)
        assert fit.kernel.shape == (2048, classes) and fit.folds == 3 and fit.C in train.C_GRID
        exact = features.astype(np.float64)  # what fit_head fits on: the same optimum, to L-BFGS's tolerance
        mean, scale = exact.mean(0), exact.std(0)  # (no dimension here has a spread below the floor)
        reference = LogisticRegression(C=fit.C, class_weight="balanced", max_iter=2000).fit(
            (exact - mean) / scale, targets
        )
        np.testing.assert_allclose(
            train.scores(features, fit.kernel, fit.bias), reference.predict_proba((exact - mean) / scale), atol=1e-3
        )


def test_stratified_split_is_seeded_and_keeps_every_class_in_training():
    from resnet_cli.training.fit import stratified_split

    targets = np.array([0] * 10 + [1] * 5 + [2] * 2)
    fit, held = stratified_split(targets, 0.2, seed=3)
    assert sorted(np.concatenate([fit, held])) == list(range(len(targets)))
    assert [int(np.sum(targets[held] == c)) for c in range(3)] == [2, 1, 1]
    assert set(targets[fit]) == {0, 1, 2}
    np.testing.assert_array_equal(stratified_split(targets, 0.2, seed=3)[1], held)
    assert not np.array_equal(stratified_split(targets, 0.2, seed=4)[1], held)
    assert len(stratified_split(targets, 0.0, seed=3)[1]) == 0


def test_augmented_keeps_the_original_first_and_is_seeded(sample_arrays):
    from resnet_cli.training.fit import augmented

    out = augmented(sample_arrays[:2], 3, np.random.default_rng(0))
    assert out.shape == (2, 4, *sample_arrays.shape[1:]) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, 0], sample_arrays[:2])
    assert not np.array_equal(out[0, 1], out[0, 0])
    np.testing.assert_array_equal(augmented(sample_arrays[:2], 3, np.random.default_rng(0)), out)


def test_labels_from_sub_folders_or_a_csv(tmp_path):
    from resnet_cli.training.labels import labeled_sources, read_label_rows

    for rel in ("a/x.jpg", "a/deeper/y.jpg", "b/z.png", "loose.jpg", "b/notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    sources, names, unlabeled = labeled_sources(str(tmp_path))
    assert sorted(zip((s.path.removeprefix(str(tmp_path) + "/") for s in sources), names)) == [
        ("a/deeper/y.jpg", "a"),
        ("a/x.jpg", "a"),
        ("b/z.png", "b"),
    ]
    assert unlabeled == 1
    (tmp_path / "labels.csv").write_text("file,label\nloose.jpg,cat\na/x.jpg,dog\n")
    sources, names, unlabeled = labeled_sources(str(tmp_path), read_label_rows(str(tmp_path / "labels.csv")))
    assert sorted(zip((s.path.removeprefix(str(tmp_path) + "/") for s in sources), names)) == [
        ("a/x.jpg", "dog"),
        ("loose.jpg", "cat"),
    ]
    assert unlabeled == 2
