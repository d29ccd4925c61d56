"""training.labels: classes from sub-folders or a CSV, a head's class names."""

import pytest

KERAS_APP_OPTIONS = ["--pool1-padding", "pad1", "--bn-epsilon", "1.001e-5"]


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


def test_label_csv_with_a_heads_class_names(tmp_path):
    from resnet_cli.training.labels import label_for, read_label_csv

    labels = ((None, "cat"), (None, "dog"))
    (tmp_path / "l.csv").write_text("file,label\na.jpg,dog\nb.jpg,0\n")
    assert read_label_csv(str(tmp_path / "l.csv"), labels) == {  # each entry as written, and where it is
        "a.jpg": 1,
        "b.jpg": 0,
        str(tmp_path / "a.jpg"): 1,
        str(tmp_path / "b.jpg"): 0,
    }
    (tmp_path / "bad.csv").write_text("file,label\na.jpg,dog\nb.jpg,n01440764\n")
    with pytest.raises(ValueError, match="line 3: not a class index or class of the head"):
        read_label_csv(str(tmp_path / "bad.csv"), labels)
    assert label_for("x/dog/sub/a.jpg", None, labels) == 1
    assert label_for("x/cow/a.jpg", None, labels) is None
