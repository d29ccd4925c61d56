"""runtimes.model_cache: never stale, never imports TensorFlow once cached, one build for many
runs at once, listed and cleared."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import SAMPLES, cpu_flags_as, invoke, onnx_session


def test_corrupt_cache_is_rebuilt(classic_file, sample_arrays):
    from resnet_cli.storage import cache_dir

    first = onnx_session(classic_file).run(None, {"images": sample_arrays})[0]
    cached = sorted((cache_dir() / "onnx").glob("*.onnx"))
    assert cached
    for path in cached:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF  # flip a bit in the middle of the weights
        path.write_bytes(bytes(data))
    second = onnx_session(classic_file).run(None, {"images": sample_arrays})[0]
    np.testing.assert_array_equal(first, second)


def test_cached_onnx_run_imports_neither_tensorflow_nor_onnx(classic_file):
    """A cached run needs ONNX Runtime only: not Keras, and not the onnx package (its version
    for the cache key is read from the installed metadata; importing it costs ~0.6 s)."""
    code = (
        "import sys; from click.testing import CliRunner; from resnet_cli.cli import main;"
        f"r = CliRunner().invoke(main, ['--weights', {str(classic_file)!r}, '--runtime', 'onnx', '-f', 'jsonl', "
        f"{str(SAMPLES / 'cat.jpg')!r}]);"
        "assert r.exit_code == 0, r.stderr;"
        "print([m for m in ('tensorflow', 'keras', 'onnx', 'ml_dtypes') if m in sys.modules])"
    )
    onnx_session(classic_file)  # the model in the cache (exporting it does need onnx)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("[]"), run.stdout


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_four_runs_at_once_on_an_empty_cache(classic_file, tmp_path, precision):
    """Bar 12-io-concurrent-cold-cache: four processes build the same model at once (int8 from
    a cache without even the fp32 model): one builds, the others wait and reuse it; all exit 0
    with identical records, no traceback, and the cache holds whole files only."""
    import os

    env = dict(os.environ, RESNET_CLI_CACHE=str(tmp_path / "cache"))
    command = [
        sys.executable,
        "-m",
        "resnet_cli",
        "--weights",
        str(classic_file),
        "--runtime",
        "onnx",
        "--precision",
        precision,
        "-f",
        "jsonl",
        "-k",
        "3",
        str(SAMPLES / "cat.jpg"),
        str(SAMPLES / "elephant.jpg"),
    ]
    runs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)
    ]
    outcomes = [run.communicate(timeout=600) + (run.returncode,) for run in runs]
    for stdout, stderr, code in outcomes:
        assert code == 0 and "Traceback" not in stderr, stderr
        assert len(stdout.splitlines()) == 2
    assert len({stdout for stdout, _, _ in outcomes}) == 1
    models = sorted((tmp_path / "cache" / "onnx").glob("*.onnx"))
    assert len(models) == (2 if precision == "int8" else 1)
    assert not [
        p for p in (tmp_path / "cache" / "onnx").iterdir() if p.suffix not in (".onnx", ".sha256", ".json", ".lock")
    ]


def test_cache_lists_what_it_holds_and_clears_it(classic_file, tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    from resnet_cli.cli import main
    from resnet_cli.storage import file_md5

    monkeypatch.setenv("RESNET_CLI_CACHE", str(tmp_path / "cache"))
    run = CliRunner().invoke(main, ["--weights", str(classic_file), "-q", "-f", "json", str(SAMPLES / "cat.jpg")])
    assert run.exit_code == 0, run.stderr
    listed = CliRunner().invoke(main, ["cache", "-f", "json"])
    (entry,) = json.loads(listed.stdout)
    assert entry["weights_md5"] == file_md5(classic_file) and entry["precision"] == "fp32" and entry["size_mib"] > 50
    assert entry["options"]["pool1_padding"] == "same" and entry["file"].startswith(str(tmp_path / "cache"))
    table = CliRunner().invoke(main, ["cache"])
    assert file_md5(classic_file) in table.stdout and "1 cached model(s)" in table.stderr
    import re

    assert int(re.search(r"compiled forms of them, (\d+) MiB", table.stderr)[1]) > 50  # ORT's optimized graph
    cleared = CliRunner().invoke(main, ["cache", "clear"])
    assert (
        cleared.exit_code == 0 and "removed 5 file(s)" in cleared.stderr
    )  # graph, options, digest; ORT's graph, digest
    assert json.loads(CliRunner().invoke(main, ["cache", "-f", "json"]).stdout) == []


def test_the_cache_key_and_file_name_carry_the_model(classic_file):
    import dataclasses

    from conftest import onnx_config

    from resnet_cli.runtimes.model_cache import graph_key, graph_options

    config = onnx_config(classic_file)
    options = graph_options(config)
    assert options["model"] == "resnet50" and options["preprocessing"] == "caffe"
    other = graph_options(dataclasses.replace(config, model="resnet50v2", preprocessing="tf"))
    assert graph_key(other) != graph_key(options)


def _int8_weight_range(path) -> tuple[int, int]:
    """The least and greatest int8 weight the quantized graph holds."""
    import onnx
    from onnx import numpy_helper

    weights = [
        numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer if t.data_type == onnx.TensorProto.INT8
    ]
    return min(int(w.min()) for w in weights), max(int(w.max()) for w in weights)


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_one_cache_for_an_avx2_and_a_vnni_machine(classic_file, tmp_path, monkeypatch, runtime):
    """A cache shared by an AVX2 machine and a VNNI one (their flags stood in for): each builds
    and uses its own int8 graph — 7-bit weights without VNNI, 8-bit with it — never the other's;
    the summary and the listing say which."""
    import json

    monkeypatch.setenv("RESNET_CLI_CACHE", str(tmp_path / "cache"))
    machines = {"avx2": "avx avx2 fma", "vnni": "avx avx2 fma avx512f avx512bw avx512_vnni", "avx2 again": "avx2 fma"}
    args, runs = ["--runtime", runtime, "--precision", "int8", "--weights", classic_file, SAMPLES / "cat.jpg"], {}
    for machine, flags in machines.items():
        with cpu_flags_as(flags):
            runs[machine] = invoke(*args, "-f", "jsonl")
        assert runs[machine].exit_code == 0, runs[machine].stderr
    assert f"({runtime} int8, 7-bit weights: no VNNI)" in runs["avx2"].stderr
    assert f"({runtime} int8, 8-bit weights)" in runs["vnni"].stderr
    assert "quantizing" in runs["vnni"].stderr and "quantizing" not in runs["avx2 again"].stderr
    assert runs["avx2 again"].stdout == runs["avx2"].stdout
    listed = json.loads(invoke("cache", "-f", "json").stdout)
    int8 = {entry["options"]["weight_bits"]: entry["file"] for entry in listed if entry["precision"] == "int8"}
    assert sorted(int8) == [7, 8]
    table = invoke("cache").stdout
    assert "int8 7-bit" in table and "int8 8-bit" in table
    if runtime == "onnx":
        low, high = _int8_weight_range(int8[7])
        assert low >= -64 and high <= 64  # |2 · 255 · 64| ≤ 32,767: every pair's sum within 16 bits
        low, high = _int8_weight_range(int8[8])
        assert max(-low, high) > 64


def _flip(path) -> None:
    """3 × 64 bytes inverted across ``path``, as a bad disk or a stray write would leave it."""
    data = bytearray(path.read_bytes())
    for start in (len(data) // 4, len(data) // 2, 3 * len(data) // 4):
        data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "runtime, precision, kind",
    [
        ("onnx", "fp32", "onnx/*.onnx"),  # the exported graph
        ("onnx", "fp32", "onnxruntime/*.onnx"),  # ONNX Runtime's optimized form of it
        pytest.param("onnx", "int8", "onnx/*.onnx", marks=pytest.mark.slow),  # the quantized graph, its fp32 source
        ("openvino", "fp32", "openvino/*.blob"),  # OpenVINO's compiled model
        pytest.param("openvino", "int8", "onnx/*.bin", marks=pytest.mark.slow),  # NNCF's IR (its weights)
        pytest.param("openvino", "int8", "openvino/*.blob", marks=pytest.mark.slow),
    ],
)
def test_a_damaged_cached_file_is_rebuilt_with_one_line_and_the_records_stay_right(
    classic_file, tmp_path, monkeypatch, runtime, precision, kind
):
    monkeypatch.setenv("RESNET_CLI_CACHE", str(tmp_path / "cache"))
    run = ["--weights", classic_file, "--runtime", runtime, "--precision", precision, "-f", "jsonl"]
    photos = [SAMPLES / "cat.jpg", SAMPLES / "elephant.jpg"]
    first = invoke(*run, *photos)
    assert first.exit_code == 0, first.stderr
    damaged = sorted((tmp_path / "cache").glob(kind))
    assert damaged, kind
    for path in damaged:
        _flip(path)
    again = invoke(*run, *photos)
    assert again.exit_code == 0 and again.stdout == first.stdout
    assert again.stderr.count("is damaged") >= 1 and "Traceback" not in again.stderr
    third = invoke(*run, *photos)  # rebuilt whole: no word of damage any more
    assert third.stdout == first.stdout and "damaged" not in third.stderr
