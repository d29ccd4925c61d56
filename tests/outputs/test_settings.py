"""outputs.settings: an output knows how its records were made, and --resume refuses to mix."""

import json

import pytest
from conftest import SAMPLES, invoke

CAT, ELEPHANT = str(SAMPLES / "cat.jpg"), str(SAMPLES / "elephant.jpg")


@pytest.mark.parametrize("target", ["r.jsonl", "r.csv", "r.parquet", "shards/"])
@pytest.mark.parametrize(
    "change, named",
    [
        (["-k", "3"], "-k/--top-k: 5 there, 3 now"),
        (["--resize", "crop"], "--resize: stretch there, crop now"),
        (["--pool1-padding", "pad1"], "--pool1-padding: same there, pad1 now"),
        pytest.param(["--precision", "int8"], "--precision: fp32 there, int8 now", marks=pytest.mark.slow),
    ],
)
def test_resume_with_other_settings_is_a_usage_error_naming_each(classic_file, tmp_path, target, change, named):
    out = f"{tmp_path}/{target}"
    run = ["--weights", classic_file, "--runtime", "onnx", "-o", out]
    assert invoke(*run, CAT).exit_code == 0
    before = sorted(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "settings" not in p.name)
    mixed = invoke(*run, "--resume", *change, CAT, ELEPHANT)
    assert mixed.exit_code == 2 and named in mixed.stderr and "--overwrite" in mixed.stderr, mixed.stderr
    assert sorted(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "settings" not in p.name) == before
    same = invoke(*run, "--resume", CAT, ELEPHANT)
    assert same.exit_code == 0 and "1 already done" in same.stderr
    replaced = invoke(*run, "--overwrite", *change, CAT)
    assert replaced.exit_code == 0, replaced.stderr
    assert invoke(*run, "--resume", *change, ELEPHANT).exit_code == 0  # the output's settings are the new ones now


def test_the_settings_are_beside_the_file_in_parquet_and_on_the_page(classic_file, tmp_path):
    import pyarrow.parquet as pq

    run = ["--weights", classic_file, "--runtime", "onnx", "-q", "-k", "3"]
    assert invoke(*run, "-o", tmp_path / "r.jsonl", CAT).exit_code == 0
    settings = json.loads((tmp_path / "r.jsonl.settings.json").read_text())
    assert settings["model"] == "resnet50" and settings["top_k"] == 3 and settings["runtime"] == "onnx"
    assert len(settings["weights_md5"]) == 32 and settings["precision"] == "fp32"
    assert invoke(*run, "-o", tmp_path / "r.parquet", CAT).exit_code == 0
    metadata = pq.read_schema(tmp_path / "r.parquet").metadata
    assert json.loads(metadata[b"resnet_classify"]) == settings
    assert invoke(*run, "-o", f"{tmp_path}/shards/", CAT).exit_code == 0
    assert json.loads((tmp_path / "shards" / "settings.json").read_text()) == settings
    page = invoke(*run, "-f", "html", CAT)
    assert "made with" in page.stdout and "top_k 3" in page.stdout


def test_an_output_from_before_settings_were_recorded_resumes(classic_file, tmp_path):
    out = tmp_path / "r.jsonl"
    run = ["--weights", classic_file, "-q", "-o", out]
    assert invoke(*run, CAT).exit_code == 0
    (tmp_path / "r.jsonl.settings.json").unlink()
    resumed = invoke(*run, "--resume", "-k", "2", CAT, ELEPHANT)
    assert resumed.exit_code == 0 and (tmp_path / "r.jsonl.settings.json").is_file()


def test_resume_with_a_head_on_imagenet_records_is_refused(classic_file, trained_head, tmp_path):
    """The issue's first case: ImageNet records, then --resume --head: never one file of both."""
    head, _ = trained_head
    out = tmp_path / "r.jsonl"
    assert invoke("--weights", classic_file, "-q", "-o", out, CAT).exit_code == 0
    mixed = invoke("--weights", classic_file, "-q", "-o", out, "--resume", "--head", head, CAT, ELEPHANT)
    assert mixed.exit_code == 2 and "--head: none there, " in mixed.stderr, mixed.stderr
    assert len(out.read_text().splitlines()) == 1


@pytest.mark.parametrize("target", ["r.jsonl", "shards/"])
def test_a_killed_runs_half_written_files_are_removed(classic_file, tmp_path, target):
    """kill -9 between write_atomic's temporary and its rename leaves a hidden file: the next
    run on that output removes it."""
    out = f"{tmp_path}/{target}"
    assert invoke("--weights", classic_file, "-q", "-o", out, CAT).exit_code == 0
    folder = tmp_path / "shards" if target.endswith("/") else tmp_path
    stale = folder / (".settings.json.999.tmp" if target.endswith("/") else ".r.jsonl.settings.json.999.tmp")
    stale.write_text("{")
    half = folder / (".part-00000.jsonl.retry" if target.endswith("/") else ".r.jsonl.retry")  # a killed rewrite
    half.write_text('{"path": ')
    assert invoke("--weights", classic_file, "-q", "-o", out, "--resume", CAT, ELEPHANT).exit_code == 0
    assert not stale.exists() and not half.exists()
