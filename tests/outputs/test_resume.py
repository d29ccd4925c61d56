"""outputs.resume: what a finished or killed run recorded; a torn last line is cut off."""

import csv
import io

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
