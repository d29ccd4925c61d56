"""The real CLI through Click's CliRunner (stdout and stderr apart) and a real subprocess."""

import csv
import io
import json
import re
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
    return CliRunner().invoke(main, [str(a) for a in args], input=input, prog_name="resnet-classify")


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


def test_summary_prints_the_walkthrough_summary(keras):
    result = invoke("summary")
    assert result.exit_code == 0
    for name in ("conv1", "bn_conv1", "res2a_branch2a", "res2a_branch1", "res5c_branch2c", "avg_pool", "fc1000"):
        assert name in result.stdout
    assert "25,636,712" in result.stdout


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
    assert "bf16 runs on the keras runtime" in onnx.stderr and "Received: --runtime onnx" in onnx.stderr
    export = invoke("export", "--weights", classic_file, "--precision", "bf16", "-o", tmp_path / "m.onnx")
    assert export.exit_code == 2 and "'bf16' is not one of 'fp32', 'int8'" in export.stderr
    assert not (tmp_path / "m.onnx").exists()


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


# ---------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize(
    "args, says",
    [
        (("--offline", "--bn-epsilon", "0", CAT), "'--bn-epsilon': 0.0 is not in the range x>0"),
        (("--offline", "--bn-epsilon", "-1", CAT), "'--bn-epsilon': -1.0 is not in the range x>0"),
        (("--offline", "--resume", CAT), "--resume needs --output"),
        (("--offline", "--precision", "int8", "--runtime", "keras", CAT), "Received: --runtime keras"),
        (("--offline", "--precision", "bf16", "--runtime", "onnx", CAT), "Received: --runtime onnx"),
        (("--offline", "--calibration", SAMPLES, CAT), "--calibration is for --precision int8"),
        (("--offline", "-k", "0", CAT), "0 is not in the range 1<=x<=1000"),
        (("embed", "--offline", "-o", "features.txt", CAT), "must end in .npz or .npy. Received: features.txt"),
        (("--offline", "--ray-actors", "3", CAT), "--ray-actors is for --engine ray"),
        (("--offline", "--ray-address", "nonsense", CAT), "--ray-address is for --engine ray"),
        (("--offline", "-f", "json", "-o", "shards/", CAT), "a folder of shards needs --format jsonl, csv, parquet"),
        (("-q", "summary"), "No such option '-q'"),
    ],
)
def test_usage_errors_exit_2_before_any_work(args, says, tmp_path, monkeypatch):
    """--offline with no weights anywhere: had the run looked for weights, it would exit 1."""
    monkeypatch.chdir(tmp_path)
    result = invoke(*args)
    assert result.exit_code == 2, result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert "Usage: resnet-classify" in result.stderr and says in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, no folder made


def test_option_before_the_subcommand_goes_to_it(classic_file, tmp_path):
    png = tmp_path / "h.png"
    result = invoke("--weights", classic_file, "explain", CAT, "-o", png)
    assert result.exit_code == 0, result.stderr
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"  # a heat-map, never a table of text
    assert result.stdout == ""


def test_implicit_classify_never_swallows_a_subcommand(classic_file, tmp_path):
    """`-o summary` makes "summary" the value of -o, not a photo; a subcommand name after
    options is the subcommand."""
    result = invoke("--weights", classic_file, "-f", "jsonl", "-o", tmp_path / "summary", CAT)
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "summary").read_text())["path"] == CAT


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


# ---------------------------------------------------------------------------- formats and files


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


def test_evaluate_without_labels_says_null_not_zero(classic_file):
    result = invoke("evaluate", "--weights", classic_file, "-f", "json", CAT)
    report = json.loads(result.stdout)
    assert report["images"] == 0 and report["top1"] is None and report["top5"] is None
    assert result.exit_code == 1 and "no labeled images" in result.stderr
    table = invoke("evaluate", "--weights", classic_file, CAT)
    assert "top-1   n/a (no labeled images)" in table.stdout


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


def test_runtime_auto_without_onnxruntime_is_keras(classic_file, monkeypatch):
    from resnet_cli import config
    from resnet_cli.request import ModelRequest

    keras_run = invoke("--weights", classic_file, "--runtime", "keras", "-f", "jsonl", CAT, ELEPHANT)
    monkeypatch.setattr(config, "onnxruntime_available", lambda: False)
    assert config.resolve(ModelRequest(weights=str(classic_file))).runtime == "keras"
    auto = invoke("--weights", classic_file, "-f", "jsonl", CAT, ELEPHANT)
    assert auto.exit_code == 0 and auto.stdout == keras_run.stdout


# ---------------------------------------------------------------------------- help and smaller edges


def test_group_help_shows_the_classify_options():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--top-k", "--format", "--output", "--resume", "--precision [fp32|int8|bf16]", "--engine"):
        assert option in result.stdout


def test_shell_completion_offers_files_for_the_implicit_classify(tmp_path):
    import os

    env = dict(
        os.environ, _RESNET_CLASSIFY_COMPLETE="bash_complete", COMP_WORDS="resnet-classify mixed/m", COMP_CWORD="1"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from resnet_cli.cli import main; main(prog_name='resnet-classify')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert "file,mixed/m" in done.stdout.splitlines(), done.stdout + done.stderr
    env.update(COMP_WORDS="resnet-classify ex", COMP_CWORD="1")
    done = subprocess.run(
        [sys.executable, "-c", "from resnet_cli.cli import main; main(prog_name='resnet-classify')"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert {"plain,explain", "plain,export"} <= set(done.stdout.splitlines())


def test_weights_messages_never_advise_deleting_a_users_file(tmp_path):
    photo = invoke("--weights", CAT, CAT)
    assert (
        photo.exit_code == 1
        and "delete" not in photo.stderr
        and "pass the official file with --weights" in photo.stderr
    )
    folder = invoke("--weights", tmp_path, CAT)
    assert folder.exit_code == 1 and f"{tmp_path}: is a folder, not a weights file" in folder.stderr


def test_explain_suggests_classes(classic_file, tmp_path):
    result = invoke("explain", "--weights", classic_file, CAT, "-o", tmp_path / "h.png", "--class", "elephant")
    assert result.exit_code == 1 and "African_elephant" in result.stderr and "Received: 'elephant'" in result.stderr
    assert not (tmp_path / "h.png").exists()


def test_progress_for_jobs_is_a_log_line_and_none_is_silent(classic_file, monkeypatch):
    """--progress auto off a terminal (a job's log) and log: a stderr line every LOG_INTERVAL
    seconds from the command's start — start-up included — with done/total, rate and the time
    since launch; none: nothing but the summary; stdout untouched."""
    from resnet_cli.commands import progress

    monkeypatch.setattr(progress, "LOG_INTERVAL", 0.05)
    for mode in ("auto", "log"):
        result = invoke("--weights", classic_file, "-f", "jsonl", "--progress", mode, ELEPHANT, CAT)
        assert result.exit_code == 0 and len(result.stdout.splitlines()) == 2
        lines = [line for line in result.stderr.splitlines() if line.startswith("resnet-classify: progress: ")]
        assert lines and re.fullmatch(
            r"resnet-classify: progress: 0(/2)? done, starting \(\d+ s since launch\)", lines[0]
        ), result.stderr
        assert all(
            re.fullmatch(
                r"resnet-classify: progress: \d(/2)? done, (starting|[\d.]+ images/s(, ETA \d+ s)?) \(\d+ s since "
                r"launch\)",
                line,
            )
            for line in lines
        ), lines
    late = progress.LogProgress(launched=0.0)
    late.update(0, total=10)
    late.update(0, advance=4)
    late.first -= 2.0  # four done in the two seconds since the first record
    assert re.fullmatch(
        r"progress: 4/10 done, 2\.0 images/s, ETA 3 s \(\d+ s since launch\)", late.line(late.first + 2.0)
    )
    quiet = invoke("--weights", classic_file, "-f", "jsonl", "--progress", "none", ELEPHANT, CAT)
    assert "progress:" not in quiet.stderr and quiet.stderr.count("\n") == 1  # the summary only
