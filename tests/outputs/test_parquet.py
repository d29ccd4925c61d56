"""outputs.parquet: rows equal the JSON records; shards, resume and usage errors."""

import json

import pytest


def _parquet_rows(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


@pytest.mark.slow
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
    assert first.exit_code == again.exit_code == 1, again.stderr  # empty.jpg failed, and again when --resume retried it
    paths = [row["path"] for part in sorted((tmp_path / "out").glob("part-*.parquet")) for row in _parquet_rows(part)]
    assert sorted(paths) == photos  # each input once
    single = tmp_path / "one.parquet"
    CliRunner().invoke(main, [*common, "-o", str(single), *photos[:3]])
    CliRunner().invoke(main, [*common, "-o", str(single), "--resume", *photos[:6]])
    assert sorted(row["path"] for row in _parquet_rows(single)) == photos[:6]  # the retried error's record last
    piped = CliRunner().invoke(main, [*common, *photos[:1]])
    assert piped.exit_code == 2 and "--format parquet needs --output" in piped.stderr
    odd = CliRunner().invoke(main, ["--weights", str(classic_file), "-o", "nosuch://bucket/out.jsonl", *photos[:1]])
    assert odd.exit_code == 2 and "-o: cannot open nosuch://bucket/out.jsonl" in odd.stderr
