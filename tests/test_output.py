"""Shard folders: rotation, resume reading every shard, whole records only."""

import json

import pytest

from resnet_cli.output import ShardSink, open_sink, recorded_paths
from resnet_cli.records import Record


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
    assert recorded_paths(f"{folder}/", "jsonl") == {f"photo{i}.jpg" for i in range(5)}
    assert (folder / "part-00002.jsonl").read_text().endswith("}\n")  # the torn line is cut
    resumed = open_sink("jsonl", f"{folder}/", appending=True)
    resumed.write(Record("photo5.jpg", error="x"))
    resumed.close()
    assert json.loads((folder / "part-00003.jsonl").read_text())["path"] == "photo5.jpg"


def test_a_shard_folder_needs_a_line_format(tmp_path):
    with pytest.raises(ValueError, match="Received: --format json"):
        open_sink("json", f"{tmp_path}/out/")


def test_output_format_from_flag_extension_and_existing_records(tmp_path):
    from resnet_cli.output import output_format

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
    with pytest.raises(ValueError, match="--resume needs --format jsonl or csv. Received: --format json"):
        output_format(None, str(tmp_path / "new.json"), resume=True)


def test_records_only_stdout_sends_everything_else_to_stderr():
    """While Ray runs, whatever the process prints to fd 1 — Python prints and native writes
    alike — goes to stderr; the records' own stream still reaches stdout."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "from resnet_cli.output import records_only_stdout\n"
        "with records_only_stdout() as records:\n"
        "    print('python noise')\n"
        "    os.write(1, b'native noise\\n')\n"
        "    records.write('{\"path\": \"a.jpg\"}\\n')\n"
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
    from resnet_cli.output import output_format

    assert output_format(None, f"{tmp_path / 'empty'}/") == "jsonl"  # an empty folder is fine
