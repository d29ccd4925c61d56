"""Resolving the one ModelConfig: the device (a GPU faked where the machine has none), the
runtime and precision that follow from it, and the batch a device gets."""

import json
import re
import subprocess
import sys

import pytest
import tomllib
from click.testing import CliRunner
from conftest import ROOT, SAMPLES

from resnet_cli.cli import main


def _settle(machine=None, local=True, **asked):
    """``settle`` on a Machine of given facts: no weights file, no Keras, no probe."""
    from resnet_cli.config import settle
    from resnet_cli.machine import Machine
    from resnet_cli.request import ModelRequest

    return settle(ModelRequest(**asked), machine or Machine(cores=4, cpu_flags=frozenset({"avx2", "fma"})), local=local)


AVX2 = frozenset({"avx", "avx2", "fma"})
AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8", "amx_tile"})


def _machine(**facts):
    from resnet_cli.machine import Machine

    return Machine(**{"cores": 4, "cpu_flags": AVX2, **facts})


def test_settling_is_pure_and_needs_no_keras_or_weights():
    """The config module and settle import no numeric backend; resolve's I/O is all before it."""
    code = (
        "import sys; from resnet_cli.config import settle; from resnet_cli.machine import Machine; "
        "from resnet_cli.request import ModelRequest; "
        "config, _ = settle(ModelRequest(precision='int8'), Machine(cores=3)); "
        "print(config.runtime, config.device, config.threads, config.weight_bits, "
        "[m for m in ('keras', 'tensorflow', 'onnxruntime', 'openvino', 'jax') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["onnx", "cpu", "3", "7", "[]"]


@pytest.mark.parametrize(
    "facts, precision, expected",
    [
        ({"cpu_flags": AMX}, "fp32", ("openvino", "auto: fp32 on avx512f")),
        ({"cpu_flags": AMX}, "int8", ("openvino", "auto: int8 on amx_int8")),
        ({"cpu_flags": AMX}, "bf16", ("openvino", "auto: bf16 on amx_bf16")),
        ({"cpu_flags": AMX, "openvino": False}, "fp32", ("onnx", "auto")),
        ({"cpu_flags": AMX, "openvino": False}, "bf16", ("keras", "auto: OpenVINO is not installed")),
        ({}, "fp32", ("onnx", "auto")),
        ({}, "int8", ("onnx", "auto")),
        ({"onnxruntime": False}, "fp32", ("keras", "auto: ONNX Runtime is not installed")),
    ],
)
def test_auto_takes_a_runtime_by_the_machines_facts(facts, precision, expected):
    config, _ = _settle(_machine(**facts), precision=precision, device="cpu")
    assert (config.runtime, config.runtime_reason) == expected


def test_bf16_without_bf16_arithmetic_is_fp32_and_a_warning():
    config, warnings = _settle(_machine(), precision="bf16")
    assert config.precision == "fp32" and config.runtime == "onnx"
    assert len(warnings) == 1 and warnings[0].startswith("warning: --precision bf16: no bf16 arithmetic here")
    assert _settle(_machine(cpu_flags=AMX, openvino=False), precision="bf16")[0].precision == "bf16"


def test_auto_takes_the_gpu_with_the_keras_runtime():
    gpu = _machine(keras_gpu_problem=None)
    config, warnings = _settle(gpu)
    assert (config.device, config.runtime, config.precision) == ("gpu", "keras", "fp32")
    bf16, warnings = _settle(gpu, precision="bf16")
    assert (bf16.device, bf16.runtime, bf16.precision, warnings) == ("gpu", "keras", "bf16", ())  # no fallback
    int8, _ = _settle(gpu, precision="int8")  # no CUDA ONNX Runtime: int8 on the CPU, as there
    assert (int8.device, int8.runtime, int8.weight_bits) == ("cpu", "onnx", 7)
    assert _settle(gpu, device="cpu")[0].device == "cpu"


def test_onnx_runtime_uses_the_gpu_only_in_its_cuda_build():
    from resnet_cli.errors import UserError

    with pytest.raises(UserError, match="this ONNX Runtime build has no CUDA provider .pip install onnxruntime-gpu"):
        _settle(_machine(keras_gpu_problem=None), runtime="onnx", device="gpu")
    assert _settle(_machine(keras_gpu_problem=None), runtime="onnx")[0].device == "cpu"
    cuda = _machine(onnxruntime_cuda=True)
    assert _settle(cuda, runtime="onnx")[0].device == "gpu"
    int8, _ = _settle(cuda, precision="int8", device="gpu")
    assert (int8.runtime, int8.weight_bits) == ("onnx", 8)


def test_no_gpu_means_the_cpu_or_one_line_saying_what_to_install():
    from resnet_cli.errors import UserError

    blind = _machine(keras_gpu_problem="the Keras backend (tensorflow) sees no GPU")
    assert _settle(blind)[0].device == "cpu"
    with pytest.raises(UserError, match=r'sees no GPU\. For GPU support: pip install "resnet-cli\[gpu\]"'):
        _settle(blind, device="gpu")
    with pytest.raises(UserError, match="the openvino runtime runs on the CPU here"):
        _settle(_machine(), runtime="openvino", device="gpu")


def test_only_the_gpus_a_run_could_use_are_asked_about():
    from resnet_cli.config import gpu_questions
    from resnet_cli.request import ModelRequest

    assert gpu_questions(ModelRequest(device="cpu")) == frozenset()
    assert gpu_questions(ModelRequest(runtime="openvino")) == frozenset()
    assert gpu_questions(ModelRequest(runtime="onnx")) == {"onnx"}
    assert gpu_questions(ModelRequest(precision="int8")) == {"onnx"}
    assert gpu_questions(ModelRequest()) == {"keras"}


def test_threads_are_settled_to_the_cores_and_too_many_is_one_warning():
    config, warnings = _settle(_machine(cores=6))
    assert (config.threads, warnings) == (6, ())
    assert _settle(_machine(cores=6), threads=2)[0].threads == 2
    config, warnings = _settle(_machine(cores=6), threads=64)
    assert config.threads == 64 and len(warnings) == 1 and warnings[0].startswith("warning: --threads 64 on 6 cores")


def test_a_ray_run_leaves_device_threads_and_int8_form_to_the_cluster():
    config, _ = _settle(_machine(cores=6), local=False, precision="int8")
    assert (config.device, config.threads, config.weight_bits) == ("auto", 0, None)


@pytest.mark.keras
def test_gpu_problem_in_plain_words(monkeypatch):
    from resnet_cli import backend

    monkeypatch.setattr(backend, "gpu_driver_present", lambda: False)
    assert backend.gpu_problem() == "no GPU driver on this machine (no /dev/nvidiactl)"
    monkeypatch.setattr(backend, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(backend, "jax_gpu_installed", lambda: False)
    monkeypatch.setattr(
        backend.importlib.util, "find_spec", lambda name, *a: None if name == "nvidia" else sys.modules.get(name)
    )
    assert backend.gpu_problem() == "no GPU build of a Keras backend is installed"
    monkeypatch.setattr(backend, "jax_gpu_installed", lambda: True)
    monkeypatch.setattr(backend, "has_gpu", lambda keras: False)
    assert backend.gpu_problem().startswith("the Keras backend (") and backend.gpu_problem().endswith(") sees no GPU")
    monkeypatch.setattr(backend, "has_gpu", lambda keras: True)
    assert backend.gpu_problem() is None


def test_a_chosen_keras_backend_is_respected(monkeypatch, tmp_path):
    from resnet_cli import backend

    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert not backend._backend_chosen()
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "tensorflow"}))
    assert backend._backend_chosen()
    (tmp_path / "keras.json").unlink()
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backend._backend_chosen()


def test_the_gpu_extra_installs_keras_on_jax_with_cuda():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("jax[cuda13]") for requirement in extras["gpu"])
    assert "resnet-cli[gpu]" in (ROOT / "README.md").read_text()


def test_without_a_gpu(classic_file):
    """Bar 13-gpu-without-gpu: --device gpu is one line naming what to install (exit 1,
    nothing on stdout); --device auto classifies on the CPU with --device cpu's records, and
    the summary names the device."""
    from resnet_cli.backend import gpu_problem

    if gpu_problem() is None:
        pytest.skip("this machine has a GPU Keras can use")
    photos = [str(SAMPLES / "cat.jpg"), str(SAMPLES / "elephant.jpg")]
    common = ["--weights", str(classic_file), "-f", "jsonl", *photos]
    gpu = CliRunner().invoke(main, ["--device", "gpu", *common])
    assert gpu.exit_code == 1 and gpu.stdout == "" and "Traceback" not in gpu.stderr
    (line,) = gpu.stderr.splitlines()
    assert line.startswith("resnet-classify: error: --device gpu: ") and 'pip install "resnet-cli[gpu]"' in line
    auto = CliRunner().invoke(main, ["--device", "auto", *common])
    cpu = CliRunner().invoke(main, ["--device", "cpu", *common])
    assert auto.exit_code == cpu.exit_code == 0 and auto.stdout == cpu.stdout and len(auto.stdout.splitlines()) == 2
    assert re.search(r" on cpu \((onnx|openvino) fp32; auto[^)]*\); start-up [\d.]+ s$", auto.stderr.rstrip()), (
        auto.stderr
    )
