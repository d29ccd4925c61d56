"""storage: the same file calls on a local path and on a URI (file:// here, as pyarrow.fs reads
s3:// and gs://), whole-or-nothing writes, digests that notice a change, the cache folder."""

import os
import time
from pathlib import Path

import pytest

from resnet_cli import storage


@pytest.mark.parametrize("as_uri", [False, True], ids=["path", "file-uri"])
def test_the_same_calls_on_a_path_and_a_uri(tmp_path, as_uri):
    root = f"file://{tmp_path}" if as_uri else str(tmp_path)
    folder = storage.join(root, "out")
    storage.makedirs(folder)
    assert storage.isdir(folder) and storage.listdir(folder) == []
    target = storage.join(folder, "part-0.jsonl")
    with storage.open_write(target) as handle:
        handle.write(b'{"path": "a.jpg"}\n')
    assert storage.exists(target) and storage.listdir(folder) == ["part-0.jsonl"]
    assert storage.read_bytes(target) == b'{"path": "a.jpg"}\n' and storage.read_bytes(target, 3) == b'{"p'
    storage.move(target, storage.join(folder, "part-1.jsonl"))
    assert storage.listdir(folder) == ["part-1.jsonl"]
    assert storage.split(storage.join(folder, "part-1.jsonl")) == (folder, "part-1.jsonl")
    assert storage.local_path(folder) == str(tmp_path / "out")
    storage.remove(folder)
    assert not storage.exists(folder)


def test_what_is_a_url_and_what_a_uri():
    assert storage.is_url("HTTPS://example.com/cat.jpg") and not storage.is_url("s3://b/cat.jpg")
    assert storage.is_uri("s3://b/cat.jpg") and not storage.is_uri("photos/cat.jpg")
    assert storage.local_path("s3://bucket/out.jsonl") is None
    with pytest.raises(ValueError, match="cannot open nosuch://x"):
        storage.filesystem("nosuch://x")


def test_a_write_is_whole_or_not_there(tmp_path, monkeypatch):
    path = tmp_path / "deep" / "model.onnx"
    storage.write_atomic(path, b"first")
    assert path.read_bytes() == b"first"

    def full_disk(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full_disk)
    with pytest.raises(OSError):
        storage.write_atomic(path, b"second")
    monkeypatch.undo()
    assert path.read_bytes() == b"first" and os.listdir(path.parent) == ["model.onnx"]  # no temporary left


def test_a_changed_file_is_not_verified(tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_CLI_CACHE", str(tmp_path / "cache"))
    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 1000)
    assert not storage.is_verified(model)  # no digest beside it
    storage.write_atomic(model.with_suffix(".sha256"), storage.file_digest(model, "sha256").encode())
    assert storage.is_verified(model)
    time.sleep(0.01)
    model.write_bytes(b"y" + b"x" * 999)  # same size, new mtime
    assert not storage.is_verified(model)


def test_the_cache_folder_and_its_compiled_forms(tmp_path, monkeypatch):
    monkeypatch.delenv("RESNET_CLI_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert storage.cache_dir() == tmp_path / "xdg" / "resnet-classify"
    monkeypatch.setenv("RESNET_CLI_CACHE", str(tmp_path / "mine"))
    assert storage.compiled_dir("openvino") == tmp_path / "mine" / "openvino"
    with pytest.raises(ValueError, match="runtime must be one of"):
        storage.compiled_dir("tensorrt")
    with storage.cache_lock(tmp_path / "mine" / "locks" / "k.lock") as held:
        assert held
