"""backend: the machine's facts read cheaply and once (CPU flags, GPU driver), and Keras'
backend left to the user's choice."""

import pytest

from resnet_cli import backend


def test_cpu_flags_are_read_once_and_a_stand_in_wins(monkeypatch):
    backend.cpu_flags.cache_clear()
    monkeypatch.delenv("RESNET_CLI_CPU_FLAGS", raising=False)
    real = backend.cpu_flags()
    assert backend.cpu_flags() is real  # memoised
    if open("/proc/cpuinfo").read().count("flags"):
        assert "fpu" in real or "sse2" in real
    monkeypatch.setenv("RESNET_CLI_CPU_FLAGS", "avx2 fma")
    assert backend.cpu_flags() is real  # read once per process
    backend.cpu_flags.cache_clear()
    try:
        assert backend.cpu_flags() == {"avx2", "fma"} and not backend.cpu_has_bf16()
        monkeypatch.setenv("RESNET_CLI_CPU_FLAGS", "avx512f amx_bf16")
        backend.cpu_flags.cache_clear()
        assert backend.cpu_has_bf16()
    finally:
        monkeypatch.delenv("RESNET_CLI_CPU_FLAGS")
        backend.cpu_flags.cache_clear()


def test_no_gpu_driver_is_said_without_importing_a_backend(monkeypatch):
    monkeypatch.setattr(backend, "gpu_driver_present", lambda: False)
    assert backend.gpu_problem("gpu") == "no GPU driver on this machine (no /dev/nvidiactl)"


@pytest.mark.parametrize("keras_json, chosen", [('{"backend": "jax"}', True), ('{"floatx": "float32"}', False)])
def test_a_backend_in_keras_json_counts_as_chosen(tmp_path, monkeypatch, keras_json, chosen):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "keras.json").write_text(keras_json)
    assert backend._backend_chosen() is chosen
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert backend._backend_chosen()
