"""The classify command through the real CLI (CliRunner, and a real subprocess): records equal
the model's, every format, piped output, stdin, precisions and runtimes."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import SAMPLES, invoke, ours

ELEPHANT = str(SAMPLES / "elephant.jpg")
CAT = str(SAMPLES / "cat.jpg")


@pytest.mark.keras
@pytest.mark.parametrize(
    "runtime, photos",
    [("keras", [ELEPHANT, CAT]), ("onnx", [ELEPHANT, CAT]), ("keras", [CAT])],  # one photo: the eager path
)
def test_json_output_matches_the_model(keras, weights, classic_file, sample_arrays, runtime, photos):
    from resnet_cli.inputs.decode import decode
    from resnet_cli.model.imagenet import decode_top_k

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


@pytest.mark.slow
def test_real_subprocess_keeps_stdout_clean(classic_file):
    """Keras/TensorFlow chatter never reaches stdout: it parses as JSON lines."""
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "resnet_cli",
            "--weights",
            str(classic_file),
            "--runtime",
            "keras",
            "-f",
            "jsonl",
            ELEPHANT,
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert [json.loads(line)["path"] for line in run.stdout.splitlines()] == [ELEPHANT]


def test_bf16_without_bf16_hardware_falls_back_to_fp32(classic_file):
    """Where bf16 would only be emulated (slower, less exact), the run says so once on stderr
    and gives exactly the fp32 records."""
    from resnet_cli.backend import cpu_has_bf16, gpu_problem

    if cpu_has_bf16() or gpu_problem() is None:
        pytest.skip("this machine computes in bf16: nothing to fall back from")
    fp32 = invoke("-q", "-f", "jsonl", "--weights", classic_file, ELEPHANT, CAT)
    bf16 = invoke("-q", "-f", "jsonl", "--weights", classic_file, "--precision", "bf16", ELEPHANT, CAT)
    assert bf16.exit_code == 0 and bf16.stdout == fp32.stdout
    assert bf16.stderr.splitlines() == [
        "resnet-classify: warning: --precision bf16: no bf16 arithmetic here (needs an AVX512-BF16/AMX CPU or a "
        "GPU); running fp32"
    ]


def test_bf16_is_refused_where_it_cannot_run(classic_file, tmp_path):
    onnx = invoke("--weights", classic_file, "--runtime", "onnx", "--precision", "bf16", CAT)
    assert onnx.exit_code == 2 and onnx.stdout == ""
    assert "bf16 runs on the openvino or keras runtime" in onnx.stderr and "Received: --runtime onnx" in onnx.stderr
    export = invoke("export", "--weights", classic_file, "--precision", "bf16", "-o", tmp_path / "m.onnx")
    assert export.exit_code == 2 and "'bf16' is not one of 'fp32', 'int8'" in export.stderr
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.keras
def test_the_keras_runtime_runs_on_the_jax_backend(weights, classic_file):
    """The model is Keras 3 only (keras.layers, keras.ops): under KERAS_BACKEND=jax, the CLI
    gives the TensorFlow-backend model's scores (a real subprocess: the backend is per process)."""
    import os

    from resnet_cli.inputs.decode import decode
    from resnet_cli.model.imagenet import decode_top_k

    pytest.importorskip("jax", reason="JAX is not installed")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import keras, sys; assert keras.backend.backend() == 'jax'; from resnet_cli.cli import main; main()",
            "--runtime",
            "keras",
            "--device",
            "cpu",
            "--weights",
            str(classic_file),
            "-f",
            "jsonl",
            "-q",
            "-k",
            "5",
            ELEPHANT,
            CAT,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, KERAS_BACKEND="jax"),
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    expected = decode_top_k(
        ours(weights, preprocess=True).predict(np.stack([decode(ELEPHANT), decode(CAT)]), verbose=0), 5
    )
    for record, top in zip(records, expected):
        assert [p["index"] for p in record["predictions"]] == [p.index for p in top]
        np.testing.assert_allclose([p["score"] for p in record["predictions"]], [p.score for p in top], atol=1e-5)


def test_piped_table_is_never_cut_and_errors_reach_stderr(classic_file, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "20")
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    result = invoke("--weights", classic_file, "-k", 1, CAT, bad)
    label = json.loads(invoke("--weights", classic_file, "-f", "jsonl", "-k", 1, CAT).stdout)["predictions"][0]
    row = next(line for line in result.stdout.splitlines() if line.startswith("1 "))
    assert label["label"] in row and label["wnid"] in row and f"{label['score']:.4f}" in row
    assert f"resnet-classify: error: {bad}: not an image" in result.stderr


def test_stdin_paths_through_the_cli(classic_file, tmp_path):
    result = invoke("--weights", classic_file, "-f", "jsonl", "-", input=f"{CAT}\n\n{ELEPHANT}\n")
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [CAT, ELEPHANT]


def test_no_images_found_is_exit_1(classic_file, tmp_path):
    (tmp_path / "notes.txt").write_text("no photos here")
    result = invoke("--weights", classic_file, "-f", "json", tmp_path)
    assert result.exit_code == 1 and json.loads(result.stdout) == []
    assert "no images found" in result.stderr


@pytest.mark.keras
def test_runtime_auto_without_onnxruntime_is_keras(classic_file, monkeypatch):
    from resnet_cli import config, machine
    from resnet_cli.request import ModelRequest

    keras_run = invoke("--weights", classic_file, "--runtime", "keras", "-f", "jsonl", CAT, ELEPHANT)
    monkeypatch.setattr(machine, "onnxruntime_available", lambda: False)
    monkeypatch.setattr(machine, "openvino_available", lambda: False)
    assert config.resolve(ModelRequest(weights=str(classic_file))).runtime == "keras"
    auto = invoke("--weights", classic_file, "-f", "jsonl", CAT, ELEPHANT)
    assert auto.exit_code == 0 and auto.stdout == keras_run.stdout


@pytest.mark.parametrize("fmt", ["jsonl", "table"])
def test_a_reader_that_goes_away_ends_the_run_quietly(classic_file, tmp_path, fmt):
    """`resnet-classify DIR | head -1`: no error line, exit 141 (as coreutils end), nothing left running."""
    from conftest import make_folder

    make_folder(tmp_path / "photos", 40, size=(40, 30))
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "-q", "-b", "2", "-f", fmt]
    run = subprocess.Popen([*command, str(tmp_path / "photos")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run.stdout.readline()
    run.stdout.close()  # as head does once it has its line
    assert run.wait(timeout=120) == 141
    assert run.stderr.read() == b""


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_the_runtimes_print_nothing_with_a_read_only_home(classic_file, runtime):
    """ORT's telemetry (off) would print a colour-coded device-id line where HOME is read-only,
    OpenVINO's three warnings on the root logger."""
    import os

    pytest.importorskip(runtime if runtime == "openvino" else "onnxruntime")
    env = {**os.environ, "HOME": "/proc/self"}
    env.pop("ORT_DISABLE_TELEMETRY", None)
    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "--runtime", runtime, "-q"]
    command += ["-f", "jsonl"]
    run = subprocess.run([*command, ELEPHANT], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stderr == "", run.stderr
