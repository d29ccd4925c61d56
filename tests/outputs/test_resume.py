"""outputs.resume: what a finished or killed run recorded; a torn last line is cut off."""

import csv
import io

import pytest
from conftest import SAMPLES, invoke

ELEPHANT = SAMPLES / "elephant.jpg"
ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


def test_resume_cuts_a_torn_last_line(tmp_path):
    from resnet_cli.outputs.resume import recorded_paths

    out = tmp_path / "out.jsonl"
    out.write_text('{"path": "a.jpg", "predictions": []}\n{"path": "b.j')
    done = recorded_paths(str(out), "jsonl")
    assert len(done) == 1 and "a.jpg" in done and "b.j" not in done
    assert out.read_text() == '{"path": "a.jpg", "predictions": []}\n'


def test_csv_resume_appends_without_a_second_header(classic_file, tmp_path):
    out = tmp_path / "r.csv"
    assert invoke("--weights", classic_file, "-q", "-k", 2, "-o", out, CAT).exit_code == 0
    result = invoke("--weights", classic_file, "-k", 2, "-o", out, "--resume", CAT, ELEPHANT)
    assert result.exit_code == 0, result.stderr
    assert "1 already done" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["path"] for r in rows] == [CAT, CAT, ELEPHANT, ELEPHANT]
    assert out.read_text().count("path,rank") == 1


def test_resume_never_mixes_formats(classic_file, tmp_path):
    out = tmp_path / "r.jsonl"
    invoke("--weights", classic_file, "-q", "-o", out, CAT)
    before = out.read_bytes()
    result = invoke("--weights", classic_file, "-f", "csv", "-o", out, "--resume", CAT, ELEPHANT)
    assert result.exit_code == 2 and "holds jsonl records" in result.stderr and result.stdout == ""
    assert out.read_bytes() == before


def _records(out, fmt) -> list[tuple[str, bool]]:
    """(path, ok) of every record an output holds, in order (shards in their order)."""
    import json
    from pathlib import Path

    files = sorted(Path(out).glob(f"part-*.{fmt}")) if Path(out).is_dir() else [Path(out)]
    found = []
    for file in files:
        if fmt == "jsonl":
            found += [(r["path"], r.get("error") is None) for r in map(json.loads, file.read_text().splitlines())]
        elif fmt == "csv":
            rows = csv.DictReader(io.StringIO(file.read_text()))
            found += list(dict.fromkeys((r["path"], not r["error"]) for r in rows))
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(file).to_pylist()
            found += [(r["path"], r["error"] is None) for r in table]
    return found


@pytest.mark.parametrize(
    "fmt, target", [("jsonl", "r.jsonl"), ("csv", "r.csv"), ("parquet", "r.parquet"), ("jsonl", "shards/")]
)
def test_resume_runs_the_failed_inputs_again_and_keeps_one_record_each(classic_file, tmp_path, fmt, target):
    """A photo that was broken and is fixed since: --resume classifies it, and the output ends
    with one record per input, the latest; --keep-errors counts the error as done."""
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "a.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes())
    (photos / "b.jpg").write_bytes(b"half a photo")
    out = f"{tmp_path}/{target}"
    run = ["--weights", classic_file, "-f", fmt, "-o", out]
    assert invoke(*run, photos).exit_code == 1
    assert sorted(_records(out, fmt)) == [(str(photos / "a.jpg"), True), (str(photos / "b.jpg"), False)]
    kept = invoke(*run, "--resume", "--keep-errors", photos)
    assert kept.exit_code == 0 and "2 already done" in kept.stderr
    (photos / "b.jpg").write_bytes((SAMPLES / "elephant.jpg").read_bytes())  # fixed
    (photos / "c.jpg").write_bytes((SAMPLES / "cat.jpg").read_bytes())  # new
    again = invoke(*run, "--resume", photos)
    assert again.exit_code == 0, again.stderr
    assert (
        "2 classified" in again.stderr
        and "1 already done" in again.stderr
        and "1 earlier errors retried" in again.stderr
    )
    assert sorted(_records(out, fmt)) == [(str(photos / name), True) for name in ("a.jpg", "b.jpg", "c.jpg")]


def test_keep_errors_without_resume_is_a_usage_error(classic_file, tmp_path):
    result = invoke("--weights", classic_file, "--keep-errors", "-o", tmp_path / "r.jsonl", CAT)
    assert result.exit_code == 2 and "--keep-errors is for --resume" in result.stderr
