"""embed at scale: -o vectors.parquet (path, model, a fixed-size float32 vector) and .jsonl hold
the vectors .npz holds; tar shards give the vectors their photos give as files; --resume and
kill -9; usage errors for what .npz cannot do."""

import io
import json
import signal
import subprocess
import tarfile
import time

import numpy as np
import pytest
from conftest import SAMPLES, cli_command, invoke, make_folder

PHOTOS = [str(SAMPLES / name) for name in ("elephant.jpg", "cat.jpg", "coffee.jpg")]


def _npz(classic_file, tmp_path, *inputs):
    out = tmp_path / "features.npz"
    result = invoke("embed", "--weights", classic_file, "-o", out, *inputs)
    assert result.exit_code == 0, result.stderr
    return np.load(out)


def test_parquet_vectors_equal_the_npz_ones(classic_file, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    saved = _npz(classic_file, tmp_path, *PHOTOS)
    out = tmp_path / "vectors.parquet"
    result = invoke("embed", "--weights", classic_file, "-o", out, *PHOTOS, tmp_path / "missing.jpg")
    assert result.exit_code == 1 and "3 embedded, 1 failed" in result.stderr
    table = pq.read_table(out)
    assert table.schema.field("vector").type == pa.list_(pa.float32(), 2048)
    assert table.column_names == ["path", "model", "vector", "error"]
    ok = table.filter(table.column("error").is_null())
    assert ok.column("path").to_pylist() == PHOTOS and set(ok.column("model").to_pylist()) == {"resnet50"}
    np.testing.assert_array_equal(np.stack(ok.column("vector").to_numpy(zero_copy_only=False)), saved["features"])
    settings = json.loads(pq.read_schema(out).metadata[b"resnet_classify"])
    assert settings["features"] == "avg" and settings["normalized"] is False


def test_jsonl_vectors_and_normalize(classic_file, tmp_path):
    out = tmp_path / "vectors.jsonl"
    assert invoke("embed", "--weights", classic_file, "--normalize", "-o", out, *PHOTOS).exit_code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    vectors = np.array([row["vector"] for row in rows], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    raw = _npz(classic_file, tmp_path, *PHOTOS)["features"]
    np.testing.assert_allclose(vectors, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_a_shard_gives_the_vectors_of_its_photos_as_files(classic_file, tmp_path):
    shard = tmp_path / "000000.tar"
    with tarfile.open(shard, "w") as archive:
        for i, photo in enumerate(PHOTOS):
            data = open(photo, "rb").read()
            info = tarfile.TarInfo(f"{i:06d}.jpg")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    from_files = _npz(classic_file, tmp_path, *PHOTOS)
    out = tmp_path / "shard.npz"
    assert invoke("embed", "--weights", classic_file, "-o", out, shard).exit_code == 0
    from_shard = np.load(out)
    assert list(from_shard["paths"]) == [f"{shard}#{i:06d}.jpg" for i in range(3)]
    np.testing.assert_array_equal(from_shard["features"], from_files["features"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["-o", "f.npz", "--resume"], "--resume is for -o .parquet, .jsonl or DIR/"),
        (["-o", "f.npy", "--overwrite"], "--overwrite is for -o .parquet"),
        (["-o", "v.parquet", "--resume", "--overwrite"], "choose one"),
        (["-o", "v.csv"], "must end in .parquet or .jsonl or / or .npz or .npy"),
    ],
)
def test_what_an_output_cannot_do_is_a_usage_error(args, message, tmp_path):
    result = invoke("embed", *args, PHOTOS[0])
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.slow
def test_an_existing_parquet_is_not_replaced_without_being_asked(classic_file, tmp_path):
    out = tmp_path / "vectors.parquet"
    assert invoke("embed", "--weights", classic_file, "-o", out, PHOTOS[0]).exit_code == 0
    again = invoke("embed", "--weights", classic_file, "-o", out, PHOTOS[1])
    assert again.exit_code != 0 and "--resume" in again.stderr
    resumed = invoke("embed", "--weights", classic_file, "-o", out, "--resume", PHOTOS[0], PHOTOS[1])
    assert resumed.exit_code == 0 and "1 already done" in resumed.stderr
    import pyarrow.parquet as pq

    assert pq.read_table(out).column("path").to_pylist() == PHOTOS[:2]


@pytest.mark.slow
def test_kill_9_then_resume_embeds_every_input_once(classic_file, tmp_path):
    import pyarrow.parquet as pq

    photos = make_folder(tmp_path / "photos", 40, size=(40, 30))
    out = tmp_path / "vectors.parquet"
    command = cli_command(classic_file, "-o", str(out), command="embed")
    journal = tmp_path / ".vectors.parquet.journal"
    run = subprocess.Popen([*command, str(tmp_path / "photos")], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 6):
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    resumed = subprocess.run([*command, "--resume", str(tmp_path / "photos")], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    paths = pq.read_table(out).column("path").to_pylist()
    assert sorted(paths) == sorted(str(p) for p in photos) and len(set(paths)) == 40
    assert int(resumed.stderr.split(" already done")[0].rsplit(", ", 1)[-1]) >= 6
