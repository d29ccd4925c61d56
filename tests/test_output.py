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
