"""Shard folders: rotation, resume reading every shard, whole records only."""

import json

import pytest

from resnet_cli.outputs.destination import open_sink
from resnet_cli.outputs.resume import recorded_paths
from resnet_cli.outputs.shards import ShardSink
from resnet_cli.records import Record


def held(done, universe) -> set:
    """The members of ``universe`` an on-disk PathSet holds, checking it holds nothing else."""
    members = {path for path in universe if path in done}
    assert len(done) == len(members), (len(done), members)
    return members


def test_shards_rotate_and_resume_continues_after_them(tmp_path):
    folder = tmp_path / "out"
    sink = ShardSink(str(folder), "jsonl", records_per_shard=2)
    for i in range(5):
        sink.write(Record(f"photo{i}.jpg", error="x"))
    sink.close()
    parts = sorted(p.name for p in folder.iterdir())
    assert parts == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert [len(p.read_text().splitlines()) for p in sorted(folder.iterdir())] == [2, 2, 1]
    (folder / "part-00002.jsonl").open("a").write('{"path": "torn')  # a killed writer
    assert held(recorded_paths(f"{folder}/", "jsonl"), [f"photo{i}.jpg" for i in range(6)] + ["torn"]) == {
        f"photo{i}.jpg" for i in range(5)
    }
    assert (folder / "part-00002.jsonl").read_text().endswith("}\n")  # the torn line is cut
    resumed = open_sink("jsonl", f"{folder}/", appending=True)
    resumed.write(Record("photo5.jpg", error="x"))
    resumed.close()
    assert json.loads((folder / "part-00003.jsonl").read_text())["path"] == "photo5.jpg"


def test_a_shard_folder_needs_a_line_format(tmp_path):
    from resnet_cli.outputs.destination import output_format

    with pytest.raises(ValueError, match="^a folder of shards needs --format jsonl, csv, parquet. Received: --format json$"):
        output_format("json", f"{tmp_path}/out/")


def test_output_format_from_flag_extension_and_existing_records(tmp_path):
    from resnet_cli.outputs.destination import output_format

    assert output_format(None, None) == "table"
    assert output_format(None, str(tmp_path / "a.JSONL")) == "jsonl"
    assert output_format(None, str(tmp_path / "a.csv")) == "csv"
    assert output_format(None, f"{tmp_path}/shards/") == "jsonl"
    assert output_format("csv", str(tmp_path / "a.jsonl")) == "csv"  # -f wins when nothing is there yet
    existing = tmp_path / "old.txt"
    existing.write_text('{"path": "a.jpg", "error": "x"}\n')
    assert output_format(None, str(existing), resume=True) == "jsonl"
    with pytest.raises(ValueError, match="holds jsonl records"):
        output_format("csv", str(existing), resume=True)
    with pytest.raises(ValueError, match="--resume needs --format jsonl, csv, parquet. Received: --format json"):
        output_format(None, str(tmp_path / "new.json"), resume=True)


def test_records_only_stdout_sends_everything_else_to_stderr():
    """While Ray runs, whatever the process prints to fd 1 — Python prints and native writes
    alike — goes to stderr; the records' own stream still reaches stdout."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "from resnet_cli.console import records_only_stdout\n"
        "with records_only_stdout() as records:\n"
        "    print('python noise')\n"
        "    os.write(1, b'native noise\\n')\n"
        '    records.write(\'{"path": "a.jpg"}\\n\')\n'
        "print('after')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == '{"path": "a.jpg"}\nafter\n'
    assert "python noise" in done.stderr and "native noise" in done.stderr


def test_a_shard_folder_with_records_needs_resume(tmp_path):
    from click.testing import CliRunner
    from conftest import SAMPLES

    from resnet_cli.cli import main

    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "part-00000.jsonl").write_text('{"path": "a.jpg", "predictions": []}\n')
    result = CliRunner().invoke(main, ["-o", f"{folder}/", str(SAMPLES / "cat.jpg")])
    assert result.exit_code == 2 and "add --resume to continue it" in result.stderr and result.stdout == ""
    assert sorted(p.name for p in folder.iterdir()) == ["part-00000.jsonl"]
    (tmp_path / "empty").mkdir()
    from resnet_cli.outputs.destination import output_format

    assert output_format(None, f"{tmp_path / 'empty'}/") == "jsonl"  # an empty folder is fine


@pytest.fixture(scope="module")
def twenty_photos(tmp_path_factory, dev_images):
    """20 real photos and an empty file (bar 12-io-parquet)."""
    import shutil

    folder = tmp_path_factory.mktemp("twenty")
    for path in dev_images[0][:20]:
        shutil.copy(path, folder)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


def _parquet_rows(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def test_parquet_rows_equal_the_json_records(classic_file, twenty_photos, tmp_path):
    """Bar 12-io-parquet: -f parquet -o FILE and -o file:///…: one row per input (21), the
    JSON records' top-5 indices and error texts; readable by pyarrow (and so pandas, DuckDB)."""
    from click.testing import CliRunner

    from resnet_cli.cli import main

    common = ["--weights", str(classic_file), "-q", str(twenty_photos)]
    reference = json.loads(CliRunner().invoke(main, [*common, "-f", "json"]).stdout)
    for target in (["-f", "parquet", "-o", str(tmp_path / "a.parquet")], ["-o", f"file://{tmp_path}/b.parquet"]):
        result = CliRunner().invoke(main, [*common, *target])
        assert result.exit_code == 1 and result.stdout == "", result.stderr  # the empty file failed
    for name in ("a.parquet", "b.parquet"):
        rows = _parquet_rows(tmp_path / name)
        assert len(rows) == 21 == len(reference)
        for row, record in zip(rows, reference):
            assert row["path"] == record["path"] and row["error"] == record.get("error")
            assert [p["index"] for p in row["predictions"]] == [p["index"] for p in record.get("predictions", [])]
            assert [p["label"] for p in row["predictions"]] == [p["label"] for p in record.get("predictions", [])]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial file left


def test_parquet_shards_resume_and_usage(classic_file, twenty_photos, tmp_path):
    from click.testing import CliRunner

    from resnet_cli.cli import main

    photos = sorted(str(p) for p in twenty_photos.iterdir())
    common = ["--weights", str(classic_file), "-q", "-f", "parquet"]
    first = CliRunner().invoke(main, [*common, "-o", f"{tmp_path}/out/", *photos[:5]])
    again = CliRunner().invoke(main, [*common, "-o", f"{tmp_path}/out/", "--resume", *photos])
    assert first.exit_code == 1 and again.exit_code == 0, again.stderr  # empty.jpg failed in the first run
    paths = [row["path"] for part in sorted((tmp_path / "out").glob("part-*.parquet")) for row in _parquet_rows(part)]
    assert sorted(paths) == photos  # each input once
    single = tmp_path / "one.parquet"
    CliRunner().invoke(main, [*common, "-o", str(single), *photos[:3]])
    CliRunner().invoke(main, [*common, "-o", str(single), "--resume", *photos[:6]])
    assert [row["path"] for row in _parquet_rows(single)] == photos[:6]
    piped = CliRunner().invoke(main, [*common, *photos[:1]])
    assert piped.exit_code == 2 and "--format parquet needs --output" in piped.stderr
    odd = CliRunner().invoke(main, ["--weights", str(classic_file), "-o", "nosuch://bucket/out.jsonl", *photos[:1]])
    assert odd.exit_code == 2 and "-o: cannot open nosuch://bucket/out.jsonl" in odd.stderr


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_output_to_a_uri_file_and_shards_with_resume(classic_file, twenty_photos, tmp_path, fmt):
    """-o to a URI goes through pyarrow.fs (file:// here; s3:// and gs:// the same way): one
    file or a shard folder, in every format, and --resume reads what is there back."""
    from click.testing import CliRunner

    from resnet_cli.cli import main
    from resnet_cli.outputs.resume import recorded_paths

    photos = sorted(str(p) for p in twenty_photos.iterdir() if p.name != "empty.jpg")
    common = ["--weights", str(classic_file), "-q", "-f", fmt]
    target = f"file://{tmp_path}/one.{fmt}"
    for chunk, resume in ((photos[:4], []), (photos[:9], ["--resume"])):
        result = CliRunner().invoke(main, [*common, "-o", target, *resume, *chunk])
        assert result.exit_code == 0, result.stderr
    assert (
        held(recorded_paths(target, fmt), photos)
        == set(photos[:9])
        == held(recorded_paths(str(tmp_path / f"one.{fmt}"), fmt), photos)
    )
    folder = f"file://{tmp_path}/shards/"
    for chunk, resume in ((photos[:3], []), (photos, ["--resume"])):
        result = CliRunner().invoke(main, [*common, "-o", folder, *resume, *chunk])
        assert result.exit_code == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [f"part-00000.{fmt}", f"part-00001.{fmt}"]
    assert held(recorded_paths(folder, fmt), photos) == set(photos)
