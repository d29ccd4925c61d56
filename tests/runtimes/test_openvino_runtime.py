"""runtimes.openvino_runtime: OpenVINO on our exported graphs, held to ONNX Runtime fp32 on
real photos — fp32 by probabilities, bf16 and int8 by the cosine of their pooled features."""

import json
import os
import re

import numpy as np
import pytest
from conftest import SAMPLES, cosines, cpu_flags_as, invoke, onnx_config

pytest.importorskip("openvino", reason="OpenVINO is not installed")
pytestmark = pytest.mark.keras


def _runtime(classic_file, **changes):
    from resnet_cli.runtimes.factory import open_runtime

    return open_runtime(onnx_config(classic_file, **changes), batch_size=25)


def test_fp32_equals_onnx_runtime(classic_file, dev_arrays):
    expected = _runtime(classic_file).predict(dev_arrays)
    got = _runtime(classic_file, runtime="openvino").predict(dev_arrays)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    np.testing.assert_array_equal(np.argsort(-got, 1)[:, :5], np.argsort(-expected, 1)[:, :5])


@pytest.mark.parametrize("precision, median, least", [("bf16", 0.999, 0.99), ("int8", 0.995, 0.995)])
def test_reduced_precision_keeps_the_pooled_features(classic_file, dev_arrays, precision, median, least):
    """bf16 and int8 on OpenVINO, judged by the pooled-feature cosine to ONNX Runtime fp32 on
    the dev photos; top-1 agreement only printed beside it (random weights' margins are tiny)."""
    fp32 = _runtime(classic_file, include_top=False, pooling="avg").predict(dev_arrays)
    got = _runtime(classic_file, runtime="openvino", precision=precision, include_top=False, pooling="avg")
    cosine = cosines(got.predict(dev_arrays), fp32)
    top1 = (
        _runtime(classic_file, runtime="openvino", precision=precision).predict(dev_arrays).argmax(1)
        == _runtime(classic_file).predict(dev_arrays).argmax(1)
    ).mean()
    print(
        f"openvino {precision}: pooled cosine median {np.median(cosine):.5f} min {cosine.min():.5f}; top-1 {top1:.2f}"
    )
    assert np.median(cosine) >= median and cosine.min() >= least


def test_the_cli_runs_it_and_says_so(classic_file):
    result = invoke("--runtime", "openvino", "--weights", classic_file, "-f", "jsonl", SAMPLES / "cat.jpg")
    assert result.exit_code == 0, result.stderr
    assert "(openvino fp32)" in result.stderr
    reference = invoke("--runtime", "onnx", "--weights", classic_file, "-f", "jsonl", "-q", SAMPLES / "cat.jpg")
    ours, theirs = (
        [[p["index"] for p in r["predictions"]] for r in map(json.loads, x.stdout.splitlines())]
        for x in (result, reference)
    )
    assert ours == theirs


def test_a_cached_run_imports_no_converter(classic_file):
    """OpenVINO's converter, its telemetry and absl (~0.1 s of a cold start) are not imported on
    a run: the runtime reads our ONNX files and IRs itself; nor is TensorFlow, Keras or onnx."""
    import subprocess
    import sys

    code = (
        "import sys; from click.testing import CliRunner; from resnet_cli.cli import main;"
        f"r = CliRunner().invoke(main, ['--weights', {str(classic_file)!r}, '--runtime', 'openvino', '-f', 'jsonl', "
        f"{str(SAMPLES / 'cat.jpg')!r}]);"
        "assert r.exit_code == 0, r.stderr;"
        "heavy = ('openvino.tools.ovc', 'openvino_telemetry', 'absl', 'tensorflow', 'keras', 'onnx');"
        "print([m for m in heavy if m in sys.modules], 'openvino' in sys.modules)"
    )
    invoke("--runtime", "openvino", "--weights", classic_file, "-q", SAMPLES / "cat.jpg")  # cached
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith("[] True"), run.stdout


def test_a_release_that_needs_its_converter_is_imported_whole():
    """Should ``import openvino`` fail without its converter, it is imported with it: a model
    still compiles and runs, and the converter is importable afterwards."""
    import subprocess
    import sys

    code = """
import sys
class Unguarded:  # openvino/__init__ importing the converter outside its try
    def find_spec(self, name, path=None, target=None):
        if name == "openvino.preprocess" and sys.modules.get("openvino.tools.ovc", 0) is None:
            raise ImportError("needs openvino.tools.ovc")
sys.meta_path.insert(0, Unguarded())
from resnet_cli.backend import import_openvino
ov = import_openvino()
import numpy as np
from openvino import opset13 as ops
x = ops.parameter([1, 3], np.float32)
compiled = ov.Core().compile_model(ov.Model([ops.relu(x)], [x]), "CPU")
print(compiled.create_infer_request().infer({0: np.array([[-1, 0, 2]], np.float32)})[0].tolist())
import openvino.tools.ovc
print(callable(ov.convert_model), "openvino.tools.ovc" in sys.modules)
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["[[0.0, 0.0, 2.0]]", "True True"], run.stdout


@pytest.mark.parametrize(
    "flags, expected",
    [
        ({"avx2", "fma"}, {"fp32": "onnx", "int8": "onnx"}),
        ({"avx2", "avx512f", "avx512_vnni"}, {"fp32": "openvino", "int8": "openvino"}),
        ({"avx2", "avx_vnni"}, {"fp32": "onnx", "int8": "openvino"}),
        ({"avx512f", "avx512_bf16", "avx512_vnni"}, {"fp32": "openvino", "int8": "openvino", "bf16": "openvino"}),
        ({"avx512f", "amx_bf16", "amx_int8"}, {"fp32": "openvino", "int8": "openvino", "bf16": "openvino"}),
    ],
)
def test_auto_takes_the_runtime_the_cpu_flags_say(flags, expected):
    """The documented rule (config.OPENVINO_FLAGS), and the summary says why."""
    from resnet_cli import config
    from resnet_cli.machine import Machine
    from resnet_cli.request import ModelRequest

    machine = Machine(cores=2, cpu_flags=frozenset(flags))
    for precision, runtime in expected.items():
        resolved, _ = config.settle(ModelRequest(precision=precision), machine)
        assert (resolved.runtime, resolved.precision) == (runtime, precision)
        assert resolved.runtime_reason.startswith("auto") and (runtime == "onnx") != (" on " in resolved.runtime_reason)
    v2, _ = config.settle(ModelRequest(model="resnet50v2"), machine)
    assert v2.runtime == "onnx"  # fp32 on the v2 graphs: ONNX Runtime whatever the flags
    without, _ = config.settle(ModelRequest(), Machine(cores=2, cpu_flags=frozenset(flags), openvino=False))
    assert without.runtime == "onnx"


def test_the_summary_names_the_runtime_auto_took(classic_file):
    result = invoke("--weights", classic_file, "-f", "jsonl", SAMPLES / "cat.jpg")
    assert result.exit_code == 0, result.stderr
    assert re.search(r" on cpu \((onnx fp32; auto|openvino fp32; auto: fp32 on avx512f)\); start-up", result.stderr)


def test_openvino_on_a_gpu_is_one_line(classic_file):
    result = invoke("--runtime", "openvino", "--device", "gpu", "--weights", classic_file, SAMPLES / "cat.jpg")
    assert result.exit_code == 1 and "the openvino runtime runs on the CPU" in result.stderr


def test_compiled_models_are_cached_and_cleared(classic_file):
    from resnet_cli.storage import cache_dir

    _runtime(classic_file, runtime="openvino")
    blobs = list((cache_dir() / "openvino").glob("*-fp32-*.blob"))
    assert blobs and all(blob.with_suffix(".sha256").is_file() for blob in blobs)  # checked before each load
    _runtime(classic_file, runtime="openvino")  # the blob verified and imported, no lock
    result = invoke("cache", "clear")
    assert result.exit_code == 0 and not any((cache_dir() / "openvino").glob("*.blob"))


def test_a_head_runs_on_openvino(trained_head, tinted, classic_file):
    head, report = trained_head
    runs = [
        invoke(
            "--runtime", runtime, "--head", head, "--weights", classic_file, "-f", "jsonl", "-q", "-r", tinted / "test"
        )
        for runtime in ("openvino", "onnx")
    ]
    assert all(run.exit_code == 0 for run in runs), runs[0].stderr
    ours, theirs = ([json.loads(line) for line in run.stdout.splitlines()] for run in runs)
    assert [r["predictions"][0]["label"] for r in ours] == [r["predictions"][0]["label"] for r in theirs]
    assert {r["predictions"][0]["label"] for r in ours} <= set(report["classes"])


def test_int8_is_nncfs_model_built_once_whole_and_quietly(classic_file, tmp_path):
    """int8 on OpenVINO is the fp32 graph quantized by NNCF, cached as an IR (.xml + .bin)
    with the digests of both: its progress bars stay off stdout (JSON lines only there), the
    same calibration gives the same bytes, and an altered .bin is rebuilt, never used."""
    import os
    import subprocess
    import sys

    from resnet_cli.storage import cache_dir

    command = [sys.executable, "-m", "resnet_cli", "--weights", str(classic_file), "--runtime", "openvino"]
    command += ["--precision", "int8", "-f", "jsonl", str(SAMPLES / "cat.jpg"), str(SAMPLES / "elephant.jpg")]
    caches = [tmp_path / "a", tmp_path / "b"]
    for cache in caches:  # the fp32 graph copied in: only the quantization runs
        (cache / "onnx").mkdir(parents=True)
        for path in (cache_dir() / "onnx").glob("resnet50-*"):
            if (
                path.suffix in (".onnx", ".json", ".sha256")
                and json.loads(path.with_suffix(".json").read_text()).get("precision") == "fp32"
            ):
                (cache / "onnx" / path.name).write_bytes(path.read_bytes())
    runs = [
        subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, RESNET_CLI_CACHE=str(c)))
        for c in caches
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert [json.loads(line)["path"] for line in run.stdout.splitlines()] == [
            str(SAMPLES / "cat.jpg"),
            str(SAMPLES / "elephant.jpg"),
        ]
        assert "quantizing the model to int8 for OpenVINO" in run.stderr
    (xml_a,), (xml_b,) = (sorted((c / "onnx").glob("*.xml")) for c in caches)
    assert xml_a.name == xml_b.name and xml_a.with_suffix(".bin").read_bytes() == xml_b.with_suffix(".bin").read_bytes()
    weights = bytearray(xml_a.with_suffix(".bin").read_bytes())
    weights[len(weights) // 2] ^= 0xFF
    xml_a.with_suffix(".bin").write_bytes(bytes(weights))
    again = subprocess.run(
        command, capture_output=True, text=True, env=dict(os.environ, RESNET_CLI_CACHE=str(caches[0]))
    )
    assert again.returncode == 0 and "quantizing the model to int8 for OpenVINO" in again.stderr
    assert again.stdout == runs[0].stdout


def test_resnet50v2_int8_on_openvino_keeps_its_pooled_features(family, judged_photos):
    """The other member whose OpenVINO int8 is NNCF's graph (quantize.NNCF_MODELS), against its
    own fp32 graph on ONNX Runtime (whose features are keras.applications' own)."""
    from resnet_cli.runtimes.factory import open_runtime

    member = family("resnet50v2")
    pooled = {"include_top": False, "pooling": "avg"}
    int8 = open_runtime(member.config(runtime="openvino", precision="int8", **pooled), batch_size=12)
    cosine = cosines(int8.predict(judged_photos), member.pooled(judged_photos))
    print(f"resnet50v2 openvino int8 (NNCF): cosine median {np.median(cosine):.5f} min {cosine.min():.5f}")
    assert np.median(cosine) >= 0.995 and cosine.min() >= 0.98


# Run with oneDNN held to AVX2 (ONEDNN_MAX_CPU_ISA, set before OpenVINO loads): the int8
# convolutions' kernels, then each graph's features. Compiled afresh (no cache: a blob of this
# CPU's kernels would be loaded as it is).
ON_AVX2_KERNELS = """
import sys, numpy as np
from resnet_cli.backend import import_openvino
ov, photos = import_openvino(), np.load(sys.argv[1])
for n, graph in enumerate(sys.argv[2:]):
    compiled = ov.Core().compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    kinds = {op.get_rt_info()["primitiveType"].astype(str) for op in compiled.get_runtime_model().get_ops()
             if op.get_rt_info()["layerType"].astype(str) == "Convolution"}
    print(" ".join(sorted(kinds)))
    np.save(f"{sys.argv[1]}.{n}.npy", compiled.create_infer_request().infer({0: photos})[0])
"""


def test_int8_without_vnni_is_exact_on_avx2_kernels(classic_file, dev_arrays, tmp_path):
    """The int8 graphs a CPU without VNNI builds for OpenVINO (NNCF's, and our QDQ graph the
    deeper members run), run by oneDNN's AVX2 int8 kernels: the very numbers this CPU's own
    kernels give (8-bit weights moved by up to 0.07 there), pooled features within 0.995."""
    import subprocess
    import sys

    from resnet_cli.runtimes.model_cache import ensure_onnx_model, ensure_openvino_int8

    with cpu_flags_as("avx avx2 fma"):
        config = onnx_config(classic_file, runtime="openvino", precision="int8", include_top=False, pooling="avg")
    assert config.weight_bits == 7
    graphs = [ensure_openvino_int8(config, quiet=True), ensure_onnx_model(config, quiet=True)]
    photos = dev_arrays[:16]
    np.save(tmp_path / "photos.npy", photos)
    run = subprocess.run(
        [sys.executable, "-c", ON_AVX2_KERNELS, str(tmp_path / "photos.npy"), *map(str, graphs)],
        capture_output=True,
        text=True,
        env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"},
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    for kinds in run.stdout.splitlines():
        assert all("avx2" in kind for kind in kinds.split()) and "_I8" in kinds.upper(), kinds
    fp32 = _runtime(classic_file, include_top=False, pooling="avg").predict(photos)
    from resnet_cli.runtimes.openvino_runtime import compile_model

    for n, graph in enumerate(graphs):
        on_avx2 = np.load(tmp_path / f"photos.npy.{n}.npy")
        here = compile_model(graph, "int8").create_infer_request().infer({0: photos})[0]
        np.testing.assert_array_equal(on_avx2, here)
        cosine = cosines(on_avx2, fp32)
        print(f"{graph.suffix} 7-bit int8 on AVX2 kernels: cosine to fp32 min {cosine.min():.5f}")
        assert cosine.min() >= 0.995
