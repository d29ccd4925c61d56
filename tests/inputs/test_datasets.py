"""Datasets as inputs: WebDataset tar shards (written by tarfile, as `tar` writes them) and
Parquet image columns give the records the same photos give as files; skipped metadata, broken
members, truncated shards, bad files and missing columns are one record or line each; over
file:// and http; brace patterns; kill -9 then --resume gives every member once."""

import http.server
import io
import json
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLES, cli_command, invoke, make_folder

from resnet_cli.inputs.discover import discover

PHOTOS = [SAMPLES / name for name in ("elephant.jpg", "cat.jpg", "coffee.jpg")]


def write_shard(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def png_of(photo: Path) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(photo).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def shard(tmp_path):
    """000000.tar: a JPEG, its key's JSON, a PNG, a broken JPEG, a second JPEG (WebDataset keys)."""
    members = [
        ("000000001.jpg", PHOTOS[0].read_bytes()),
        ("000000001.json", b'{"caption": "an elephant"}'),
        ("000000002.png", png_of(PHOTOS[1])),
        ("000000003.jpg", b"\xff\xd8\xff\xe0 broken"),
        ("000000004.jpg", PHOTOS[2].read_bytes()),
    ]
    return write_shard(tmp_path / "000000.tar", members)


def cli_records(classic_file, *args):
    result = invoke("--weights", classic_file, "-f", "json", *args)
    return result, json.loads(result.stdout or "[]")


def predictions_of_files(classic_file, tmp_path, named: dict[str, bytes]) -> list:
    folder = tmp_path / "as-files"
    folder.mkdir(exist_ok=True)
    for name, data in named.items():
        (folder / name).write_bytes(data)
    result, records = cli_records(classic_file, *(folder / name for name in named))
    return [r["predictions"] for r in records]


def test_discover_reads_a_shards_members_lazily_with_their_paths(shard):
    sources = list(discover([str(shard)]))
    assert [s.path for s in sources] == [
        f"{shard}#00000000{i}.{ext}" for i, ext in [(1, "jpg"), (1, "json"), (2, "png"), (3, "jpg"), (4, "jpg")]
    ]
    assert sources[0].data == PHOTOS[0].read_bytes() and sources[1].skip and sources[1].data is None  # not read
    assert not any(s.explicit for s in sources)
    assert [s.path for s in discover([str(shard)], open_datasets=False)] == [str(shard)]


def test_a_shard_gives_the_records_its_photos_give_as_files(classic_file, shard, tmp_path):
    result, records = cli_records(classic_file, "-v", shard)
    assert result.exit_code == 1  # the broken member
    assert [r["path"] for r in records] == [
        f"{shard}#000000001.jpg",
        f"{shard}#000000002.png",
        f"{shard}#000000003.jpg",
        f"{shard}#000000004.jpg",
    ]
    assert records[2]["error"] in ("truncated image data", "not a readable image (corrupt header)")
    expected = predictions_of_files(
        classic_file,
        tmp_path,
        {"a.jpg": PHOTOS[0].read_bytes(), "b.png": png_of(PHOTOS[1]), "c.jpg": PHOTOS[2].read_bytes()},
    )
    assert [records[i]["predictions"] for i in (0, 1, 3)] == expected
    assert "skipped: " + f"{shard}#000000001.json" in result.stderr and "1 skipped" in result.stderr


def test_a_truncated_shard_keeps_what_it_read_and_says_where_it_broke(classic_file, shard, tmp_path):
    cut = tmp_path / "cut.tar"
    data = shard.read_bytes()
    cut.write_bytes(data[: len(data) // 2 + 700])
    result, records = cli_records(classic_file, cut, PHOTOS[0])
    assert result.exit_code == 1
    *members, broke, after = records
    assert members and all("predictions" in r for r in members if not r["path"].endswith("3.jpg"))
    assert broke["path"].startswith(f"{cut}#") and broke["path"] not in [r["path"] for r in members]
    assert "the shard breaks after this member" in broke["error"] and "truncated" in broke["error"]
    assert after["path"] == str(PHOTOS[0]) and "predictions" in after  # the rest go on


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "not a readable tar shard"),
        (b"no tar at all" * 100, "not a readable tar shard"),
        (None, "an empty tar shard"),
    ],
)
def test_a_shard_that_is_none_is_one_clear_record(classic_file, tmp_path, content, reason):
    path = tmp_path / "bad.tar"
    if content is None:
        write_shard(path, [])
    else:
        path.write_bytes(content)
    result, records = cli_records(classic_file, path, PHOTOS[0])
    assert result.exit_code == 1
    assert records[0]["path"] == str(path) and records[0]["error"].startswith(reason)
    assert "predictions" in records[1]
    assert f"error: {path}: {reason}" in result.stderr and "Traceback" not in result.stderr


def test_a_gzipped_shard_a_brace_pattern_and_a_folder_of_shards(classic_file, tmp_path):
    folder = tmp_path / "shards"
    folder.mkdir()
    for i, photo in enumerate(PHOTOS):
        write_shard(
            folder / f"part-{i:03d}.tar.gz" if i == 1 else folder / f"part-{i:03d}.tar",
            [(f"{i}.jpg", photo.read_bytes())],
            "w:gz" if i == 1 else "w",
        )
    names = ["part-000.tar#0.jpg", "part-001.tar.gz#1.jpg", "part-002.tar#2.jpg"]
    by_folder = [s.path for s in discover([str(folder)])]
    assert by_folder == [f"{folder}/{n}" for n in names]
    pattern = f"{folder}/part-{{000..002}}.tar"
    by_pattern = [s.path for s in discover([pattern])]
    assert by_pattern[0] == f"{folder}/part-000.tar#0.jpg" and by_pattern[2] == f"{folder}/part-002.tar#2.jpg"
    assert (
        list(discover([pattern]))[1].error == "not a readable tar shard (no such file)"
    )  # part-001.tar: it is .tar.gz
    result, records = cli_records(classic_file, folder)
    assert result.exit_code == 0 and [r["path"] for r in records] == by_folder


@pytest.mark.slow
def test_a_shard_over_file_uri_and_http(classic_file, shard):
    _, local = cli_records(classic_file, shard)
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(shard.parent), **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{shard.name}"
        for where in (f"file://{shard}", url):
            _, records = cli_records(classic_file, where)
            assert [r["path"] for r in records] == [r["path"].replace(str(shard), where) for r in local]
            assert [r.get("predictions") for r in records] == [r.get("predictions") for r in local]
    finally:
        server.shutdown()


def _parquet(path: Path, table_dict: dict) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(table_dict), path, row_group_size=2)
    return path


def test_a_hugging_face_image_column_and_a_column_of_paths(classic_file, tmp_path):
    images = [{"bytes": p.read_bytes(), "path": p.name} for p in PHOTOS]
    hf = _parquet(tmp_path / "train.parquet", {"label": [1, 2, 3], "image": images})
    _, records = cli_records(classic_file, hf)
    _, files = cli_records(classic_file, *PHOTOS)
    assert [r["path"] for r in records] == [f"{hf}#{i}" for i in range(3)]
    assert [r["predictions"] for r in records] == [r["predictions"] for r in files]

    for photo in PHOTOS:
        shutil.copy(photo, tmp_path)
    listed = _parquet(tmp_path / "list.parquet", {"id": ["a", "b", "c"], "path": [p.name for p in PHOTOS]})
    _, by_path = cli_records(classic_file, listed)
    assert [r["path"] for r in by_path] == [str(tmp_path / p.name) for p in PHOTOS]
    _, keyed = cli_records(classic_file, "--key-column", "label", hf)
    assert [r["path"] for r in keyed] == ["1", "2", "3"]
    assert [r["predictions"] for r in keyed] == [r["predictions"] for r in files]


def test_a_parquet_file_read_a_row_group_at_a_time_under_the_users_name(tmp_path, monkeypatch):
    """What each Ray task reads: one row group, its rows numbered as in the whole file, under
    the name the user gave (the worker reads the absolute path); a row's relative path shown
    relative to that name and read from the file's real folder."""
    from resnet_cli.inputs.datasets import dataset_of, dataset_sources, row_groups

    for photo in PHOTOS:
        shutil.copy(photo, tmp_path)
    table = _parquet(tmp_path / "mixed.parquet", {"path": [PHOTOS[0].name, PHOTOS[1].name, None]})
    monkeypatch.chdir(tmp_path.parent)
    name = f"{tmp_path.name}/mixed.parquet"
    whole = list(dataset_sources(str(table), name=name))
    assert row_groups(str(table)) == [0, 1] and row_groups(str(tmp_path / "x.tar")) is None
    parts = [s for group in row_groups(str(table)) for s in dataset_sources(str(table), name=name, row_group=group)]
    assert (
        [s.path for s in parts]
        == [s.path for s in whole]
        == [f"{tmp_path.name}/{PHOTOS[0].name}", f"{tmp_path.name}/{PHOTOS[1].name}", f"{name}#2"]
    )
    assert [s.data for s in parts] == [s.data for s in whole] == [p.read_bytes() for p in PHOTOS[:2]] + [None]
    assert whole[2].error == "no image in this row"
    assert dataset_of(f"{name}#7") == name and dataset_of("s3://b/a#1.tar#x#1.jpg") == "s3://b/a#1.tar"
    assert dataset_of("photo#1.jpg") is None and dataset_of("a.tar") is None


def test_the_ray_workers_reader_leaves_out_recorded_members_and_names_the_skipped(shard):
    """A Ray task over a shard: blocks of ``rows`` decoded members with their paths, the .json
    listed as skipped, the members a resumed run recorded left out before decoding."""
    from resnet_cli.engines.ray_worker import FAILED, OK, read_dataset
    from resnet_cli.inputs.datasets import Columns
    from resnet_cli.inputs.decode import DecodeOptions

    part = {"location": str(shard), "name": "000000.tar", "columns": Columns(), "timeout": 5.0, "row_group": None}
    done = frozenset({"000000.tar#000000001.jpg"})
    blocks = list(read_dataset({**part, "done": done, "rows": 2}, DecodeOptions()))
    assert [b["path"] for b in blocks] == [
        ["000000.tar#000000002.png", "000000.tar#000000003.jpg"],
        ["000000.tar#000000004.jpg"],
    ]
    assert [b["skipped"] for b in blocks] == [["000000.tar#000000001.json"], []]
    assert [list(b["status"]) for b in blocks] == [[OK, FAILED], [OK]]
    assert blocks[0]["image"].shape == (2, 224, 224, 3) and blocks[1]["image"].any()


def test_a_parquet_file_that_is_none_empty_or_without_the_column_is_one_line(classic_file, tmp_path):
    import pyarrow as pa

    bogus = tmp_path / "bogus.parquet"
    bogus.write_text("not parquet")
    empty = _parquet(tmp_path / "empty.parquet", {"image": pa.array([], pa.binary())})
    numbers = _parquet(tmp_path / "numbers.parquet", {"x": [1, 2]})
    result, records = cli_records(classic_file, bogus, empty, numbers, "--image-column", "photo", PHOTOS[0])
    assert result.exit_code == 1
    errors = {r["path"]: r["error"] for r in records if "error" in r}
    assert errors[str(bogus)].startswith("not a readable Parquet file")
    assert errors[str(empty)].startswith("no column 'photo' (--image-column)")
    assert errors[str(numbers)].startswith("no column 'photo' (--image-column) in it: x")
    result, records = cli_records(classic_file, empty, numbers)
    assert [r["error"] for r in records] == ["no rows in it", records[1]["error"]]
    assert records[1]["error"].startswith("no image column")


@pytest.mark.slow
def test_kill_9_in_the_middle_of_a_shard_then_resume_gives_every_member_once(classic_file, tmp_path):
    photos = make_folder(tmp_path / "photos", 40, size=(40, 30))
    shard = write_shard(tmp_path / "000000.tar", [(p.name, p.read_bytes()) for p in photos])
    out = tmp_path / "out.jsonl"
    command = cli_command(classic_file, "-k", "1")
    run = subprocess.Popen([*command, "-q", "-o", str(out), str(shard)], stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 6) and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    kept = out.read_text().count("\n")
    assert 6 <= kept < 40
    resumed = subprocess.run(
        [*command, "-o", str(out), "--resume", str(shard)], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    recorded = [json.loads(line)["path"] for line in out.read_text().splitlines()]
    assert sorted(recorded) == sorted(f"{shard}#{p.name}" for p in photos) and len(set(recorded)) == 40
    assert f"{kept} already done" in resumed.stderr
