"""The real CLI through Click's CliRunner (stdout and stderr apart) and a real subprocess."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import SAMPLES, ours
from resnet_cli.cli import main

ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


def invoke(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input)


def test_help_and_version_do_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from resnet_cli.cli import main;"
        "r = CliRunner().invoke(main, ['--help']); assert r.exit_code == 0, r.output;"
        "r2 = CliRunner().invoke(main, ['--version']); assert r2.exit_code == 0;"
        "heavy = [m for m in ('tensorflow', 'keras', 'onnxruntime', 'numpy') if m in sys.modules];"
        "print(r2.stdout.strip()); print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "resnet-classify, version" in out
    assert out.strip().endswith("[]")


def test_no_input_is_a_usage_error():
    result = invoke("classify")
    assert result.exit_code == 2 and "Missing argument 'PATHS…'" in result.stderr and result.stdout == ""


@pytest.mark.parametrize(
    "runtime, photos",
    [("keras", [ELEPHANT, CAT]), ("onnx", [ELEPHANT, CAT]), ("keras", [CAT])],  # one photo: the eager path
)
def test_json_output_matches_the_model(keras, weights, classic_file, sample_arrays, runtime, photos):
    from resnet_cli.imagenet import decode_top_k
    from resnet_cli.images import decode

    result = invoke("--weights", classic_file, "--runtime", runtime, "-f", "json", "-k", 3, *photos)
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["path"] for r in records] == photos
    expected = ours(weights, preprocess=True).predict(np.stack([decode(p) for p in photos]), verbose=0)
    for record, top in zip(records, decode_top_k(expected, 3)):
        assert [p["index"] for p in record["predictions"]] == [p.index for p in top]
        assert set(record["predictions"][0]) == {"rank", "index", "wnid", "label", "score"}
        np.testing.assert_allclose([p["score"] for p in record["predictions"]], [p.score for p in top], atol=1e-4)
    assert f"{len(photos)} classified, 0 failed" in result.stderr


def test_formats_jsonl_csv_table(classic_file):
    common = ("--weights", classic_file, "-k", 2, ELEPHANT)
    lines = invoke(*common, "-f", "jsonl").stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["path"] == ELEPHANT
    rows = list(csv.DictReader(io.StringIO(invoke(*common, "-f", "csv").stdout)))
    assert [r["rank"] for r in rows] == ["1", "2"] and rows[0]["path"] == ELEPHANT and rows[0]["error"] == ""
    table = invoke(*common)
    assert table.exit_code == 0 and ELEPHANT in table.stdout and "score" in table.stdout
    assert json.loads(lines[0])["predictions"][0]["label"] in table.stdout


def test_folder_skips_non_images_and_reports_bad_ones(classic_file, tmp_path):
    import shutil

    shutil.copy(ELEPHANT, tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 20)
    result = invoke("--weights", classic_file, "-f", "jsonl", tmp_path)
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["path"] for r in records] == [str(tmp_path / "a.jpg"), str(tmp_path / "broken.jpg")]
    assert "error" in records[1] and "predictions" in records[0]
    assert result.exit_code == 1
    assert f"error: {tmp_path / 'broken.jpg'}:" in result.stderr
    assert "1 classified, 1 failed, 1 skipped" in result.stderr
    assert "Traceback" not in result.stderr


def test_summary_prints_the_walkthrough_summary(keras):
    result = invoke("summary")
    assert result.exit_code == 0
    for name in ("conv1", "bn_conv1", "res2a_branch2a", "res2a_branch1", "res5c_branch2c", "avg_pool", "fc1000"):
        assert name in result.stdout
    assert "25,636,712" in result.stdout


def test_real_subprocess_keeps_stdout_clean(classic_file):
    """Keras/TensorFlow chatter never reaches stdout: it parses as JSON lines."""
    run = subprocess.run(
        [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "--runtime", "keras", "-f", "jsonl", ELEPHANT],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["path"] for line in run.stdout.splitlines()] == [ELEPHANT]


def test_user_errors_are_one_line(classic_file, tmp_path):
    cases = [
        ("--runtime", "onnx", "--precision", "int8", "--calibration", tmp_path / "nowhere", ELEPHANT),
        ("--weights", tmp_path, ELEPHANT),
    ]
    for args in cases:
        result = invoke("--weights", classic_file, *args)
        assert result.exit_code == 1, (args, result.stderr)
        assert result.stderr.startswith("resnet-classify: error: ") and result.stderr.count("\n") == 1, result.stderr
        assert result.stdout == ""


def test_bf16_without_bf16_hardware_falls_back_to_fp32(classic_file):
    """Where bf16 would only be emulated (slower, less exact), the run says so once on stderr
    and gives exactly the fp32 records."""
    from resnet_cli.backend import cpu_has_bf16, gpu_driver_present, gpu_visible

    if cpu_has_bf16() or (gpu_driver_present() and gpu_visible()):
        pytest.skip("this machine computes in bf16: nothing to fall back from")
    fp32 = invoke("-q", "-f", "jsonl", "--weights", classic_file, ELEPHANT, CAT)
    bf16 = invoke("-q", "-f", "jsonl", "--weights", classic_file, "--precision", "bf16", ELEPHANT, CAT)
    assert bf16.exit_code == 0 and bf16.stdout == fp32.stdout
    assert bf16.stderr.splitlines() == [
        "resnet-classify: warning: --precision bf16: no bf16 arithmetic here (needs an AVX512-BF16/AMX CPU or a GPU); running fp32"
    ]


def test_bf16_is_refused_where_it_cannot_run(classic_file, tmp_path):
    onnx = invoke("--weights", classic_file, "--runtime", "onnx", "--precision", "bf16", CAT)
    assert onnx.exit_code == 2 and onnx.stdout == ""
    assert "bf16 runs on the keras runtime" in onnx.stderr and "Received: --runtime onnx" in onnx.stderr
    export = invoke("export", "--weights", classic_file, "--precision", "bf16", "-o", tmp_path / "m.onnx")
    assert export.exit_code == 2 and "'bf16' is not one of 'fp32', 'int8'" in export.stderr
    assert not (tmp_path / "m.onnx").exists()


def test_the_keras_runtime_runs_on_the_jax_backend(weights, classic_file):
    """The model is Keras 3 only (keras.layers, keras.ops): under KERAS_BACKEND=jax, the CLI
    gives the TensorFlow-backend model's scores (a real subprocess: the backend is per process)."""
    import os

    from resnet_cli.imagenet import decode_top_k
    from resnet_cli.images import decode

    pytest.importorskip("jax", reason="JAX is not installed")
    done = subprocess.run(
        [sys.executable, "-c", "import keras, sys; assert keras.backend.backend() == 'jax'; from resnet_cli.cli import main; main()",
         "--runtime", "keras", "--device", "cpu", "--weights", str(classic_file), "-f", "jsonl", "-q", "-k", "5", ELEPHANT, CAT],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, KERAS_BACKEND="jax"),
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    expected = decode_top_k(ours(weights, preprocess=True).predict(np.stack([decode(ELEPHANT), decode(CAT)]), verbose=0), 5)
    for record, top in zip(records, expected):
        assert [p["index"] for p in record["predictions"]] == [p.index for p in top]
        np.testing.assert_allclose([p["score"] for p in record["predictions"]], [p.score for p in top], atol=1e-5)
