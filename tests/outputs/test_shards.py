"""outputs.shards: part-N files rotate, a resumed run continues after them, a folder with records
needs --resume."""

import json

from conftest import held

from resnet_cli.outputs.destination import settle
from resnet_cli.outputs.resume import recorded_paths
from resnet_cli.outputs.shards import ShardSink
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
    assert held(recorded_paths(f"{folder}/", "jsonl"), [f"photo{i}.jpg" for i in range(6)] + ["torn"]) == {
        f"photo{i}.jpg" for i in range(5)
    }
    assert (folder / "part-00002.jsonl").read_text().endswith("}\n")  # the torn line is cut
    destination = settle(f"{folder}/", None, resume=True)
    assert destination.format == "jsonl"  # what the folder holds
    resumed = destination.open_sink()
    resumed.write(Record("photo5.jpg", error="x"))
    resumed.close()
    destination.finish(completed=True)
    assert json.loads((folder / "part-00003.jsonl").read_text())["path"] == "photo5.jpg"


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
