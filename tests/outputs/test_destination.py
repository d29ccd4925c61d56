"""outputs.destination: -o checked once (format from -f, the records there, the extension); URIs."""

import csv
import io
import json

import pytest
from conftest import SAMPLES, held, invoke

from resnet_cli.outputs.resume import recorded_paths

ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


def test_a_shard_folder_needs_a_format_shards_can_hold(tmp_path):
    from resnet_cli.outputs.destination import output_format

    with pytest.raises(
        ValueError, match="^a folder of shards needs --format jsonl, csv, parquet, html. Received: --format json$"
    ):
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


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_output_to_a_uri_file_and_shards_with_resume(classic_file, twenty_photos, tmp_path, fmt):
    """-o to a URI goes through pyarrow.fs (file:// here; s3:// and gs:// the same way): one
    file or a shard folder, in every format, and --resume reads what is there back."""
    from click.testing import CliRunner

    from resnet_cli.cli import main

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
    shards = sorted(p.name for p in (tmp_path / "shards").iterdir())
    assert shards == [f"part-00000.{fmt}", f"part-00001.{fmt}", "settings.json"]
    assert held(recorded_paths(folder, fmt), photos) == set(photos)


def test_format_follows_the_output_extension(classic_file, tmp_path):
    for name, check in [
        ("r.jsonl", lambda t: json.loads(t.splitlines()[0])),
        ("r.json", json.loads),
        ("r.csv", lambda t: next(csv.DictReader(io.StringIO(t)))),
    ]:
        out = tmp_path / name
        assert invoke("--weights", classic_file, "-q", "-o", out, CAT).exit_code == 0
        parsed = check(out.read_text())
        assert (parsed[0] if isinstance(parsed, list) else parsed)["path"] == CAT


@pytest.mark.parametrize("command", ["classify", "embed", "explain", "export"])
def test_unwritable_output_is_one_line_before_the_work(classic_file, tmp_path, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    target = {"classify": "out.jsonl", "embed": "f.npz", "explain": "h.png", "export": "m.onnx"}[command]
    args = {"classify": [CAT, "-o"], "embed": [CAT, "-o"], "explain": [CAT, "-o"], "export": ["-o"]}[command]
    result = invoke(command, "--weights", classic_file, *args, blocker / target)
    assert result.exit_code == 1 and result.stdout == ""
    assert (
        result.stderr
        == f"resnet-classify: error: cannot write {blocker / target} ({blocker} is a file, not a folder)\n"
    )


def test_missing_parent_folders_are_made_by_every_command(classic_file, tmp_path):
    for command, args, name in [
        ("classify", [CAT, "-o"], "r.csv"),
        ("embed", [CAT, "-o"], "f.npz"),
        ("export", ["-o"], "m.onnx"),
    ]:
        target = tmp_path / command / "deeper" / name
        result = invoke(command, "--weights", classic_file, "-q", *args, target)
        assert result.exit_code == 0, result.stderr
        assert target.stat().st_size > 0


@pytest.mark.parametrize("name", ["r.json", "r.html"])
def test_advice_on_an_output_that_cannot_be_continued_is_never_resume(classic_file, tmp_path, name):
    """A json or html output that holds records: --overwrite is the way, and --resume says why
    it is not (no advice to add --resume, then a refusal of it; no format the user never asked)."""
    out = tmp_path / name
    assert invoke("--weights", classic_file, "-q", "-o", out, SAMPLES / "cat.jpg").exit_code == 0
    again = invoke("--weights", classic_file, "-q", "-o", out, SAMPLES / "cat.jpg")
    assert again.exit_code == 2 and "add --overwrite" in again.stderr and "add --resume" not in again.stderr
    fmt = name.split(".")[1]
    resumed = invoke("--weights", classic_file, "-q", "-o", out, "--resume", SAMPLES / "cat.jpg")
    assert resumed.exit_code == 2 and f"holds {fmt} records, which cannot be continued" in resumed.stderr
    assert "Received: --format table" not in resumed.stderr
    assert invoke("--weights", classic_file, "-q", "-o", out, "--overwrite", SAMPLES / "cat.jpg").exit_code == 0
