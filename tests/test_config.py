"""Resolving the one ModelConfig: the device (a GPU faked where the machine has none), the
runtime and precision that follow from it, and the batch a device gets."""

import json
import re
import sys

import pytest
import tomllib
from click.testing import CliRunner
from conftest import ROOT, SAMPLES

from resnet_cli.cli import main


def _resolve(classic_file, **asked):
    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest

    return resolve(ModelRequest(weights=str(classic_file), **asked))


@pytest.fixture
def fake_gpu(monkeypatch):
    """A machine where Keras sees a GPU (and ONNX Runtime has no CUDA build)."""
    monkeypatch.setattr("resnet_cli.config.gpu_problem", lambda device="auto": None)
    monkeypatch.setattr("resnet_cli.config.onnxruntime_has_cuda", lambda: False)


def test_auto_takes_the_gpu_with_the_keras_runtime(classic_file, fake_gpu, capsys):
    config = _resolve(classic_file)
    assert (config.device, config.runtime, config.precision) == ("gpu", "keras", "fp32")
    bf16 = _resolve(classic_file, precision="bf16")
    assert (bf16.device, bf16.runtime, bf16.precision) == ("gpu", "keras", "bf16")
    assert "warning" not in capsys.readouterr().err  # no fallback on a GPU
    int8 = _resolve(classic_file, precision="int8")  # no CUDA ONNX Runtime: int8 on the CPU, as there
    assert (int8.device, int8.runtime) == ("cpu", _resolve(classic_file, precision="int8", device="cpu").runtime)
    assert _resolve(classic_file, device="cpu").device == "cpu"


def test_onnx_runtime_uses_the_gpu_only_in_its_cuda_build(classic_file, fake_gpu, monkeypatch):
    from resnet_cli.errors import UserError

    with pytest.raises(UserError, match="this ONNX Runtime build has no CUDA provider .pip install onnxruntime-gpu"):
        _resolve(classic_file, runtime="onnx", device="gpu")
    assert _resolve(classic_file, runtime="onnx").device == "cpu"
    monkeypatch.setattr("resnet_cli.config.onnxruntime_has_cuda", lambda: True)
    assert (
        _resolve(classic_file, runtime="onnx").device,
        _resolve(classic_file, precision="int8", device="gpu").runtime,
    ) == ("gpu", "onnx")


def test_no_gpu_means_the_cpu_or_one_line_saying_what_to_install(classic_file, monkeypatch):
    from resnet_cli.errors import UserError

    monkeypatch.setattr(
        "resnet_cli.config.gpu_problem", lambda device="auto": "the Keras backend (tensorflow) sees no GPU"
    )
    config = _resolve(classic_file)
    assert (config.device, config.runtime) == ("cpu", _resolve(classic_file, device="cpu").runtime)
    with pytest.raises(UserError, match=r'sees no GPU\. For GPU support: pip install "resnet-cli\[gpu\]"'):
        _resolve(classic_file, device="gpu")


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


def test_threads_beyond_the_cores_is_one_warning(classic_file, capsys):
    import os

    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest

    resolve(ModelRequest(weights=str(classic_file), threads=(os.cpu_count() or 1) * 32))
    assert capsys.readouterr().err.count("warning: --threads") == 1
    resolve(ModelRequest(weights=str(classic_file), threads=1))
    assert capsys.readouterr().err == ""
