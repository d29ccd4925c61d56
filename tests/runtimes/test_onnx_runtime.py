"""runtimes.onnx_runtime: the CPU session loads ORT's optimized graph, cached per machine —
written once, whole, and giving exactly the numbers of optimizing the graph now."""

import numpy as np
import pytest
from conftest import onnx_config


@pytest.fixture
def model(classic_file):
    """The cached fp32 graph, with no optimized form of it cached yet."""
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import optimized_path

    path = ensure_onnx_model(onnx_config(classic_file), quiet=True)
    for companion in (".onnx", ".sha256"):
        optimized_path(path).with_suffix(companion).unlink(missing_ok=True)
    return path


def _scores(session, images):
    return session.run(None, {"images": images})[0]


def test_the_optimized_graph_is_written_once_then_loaded(model, sample_arrays):
    import onnxruntime as ort

    from resnet_cli.runtimes.onnx_runtime import open_session, optimized_path
    from resnet_cli.storage import is_verified

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    expected = _scores(ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]), sample_arrays)
    writing = open_session(model, "cpu")
    optimized = optimized_path(model)
    assert writing._model_path == str(model) and is_verified(optimized)
    assert not list(optimized.parent.glob(".*.tmp"))
    loading = open_session(model, "cpu")
    assert loading._model_path == str(optimized)
    np.testing.assert_array_equal(_scores(writing, sample_arrays), expected)
    np.testing.assert_array_equal(_scores(loading, sample_arrays), expected)


def test_an_altered_optimized_graph_is_never_used(model, sample_arrays):
    from resnet_cli.runtimes.onnx_runtime import open_session, optimized_path

    expected = _scores(open_session(model, "cpu"), sample_arrays)
    optimized = optimized_path(model)
    data = bytearray(optimized.read_bytes())
    data[len(data) // 2] ^= 0xFF
    optimized.write_bytes(bytes(data))
    rebuilt = open_session(model, "cpu")
    assert rebuilt._model_path == str(model)
    np.testing.assert_array_equal(_scores(rebuilt, sample_arrays), expected)
    np.testing.assert_array_equal(_scores(open_session(model, "cpu"), sample_arrays), expected)


def test_an_unwritable_cache_costs_only_the_optimization(model, sample_arrays, monkeypatch, tmp_path):
    from resnet_cli.runtimes.onnx_runtime import open_session

    expected = _scores(open_session(model, "cpu"), sample_arrays)
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("RESNET_CLI_CACHE", str(tmp_path / "cache"))
    np.testing.assert_array_equal(_scores(open_session(model, "cpu"), sample_arrays), expected)


def test_the_key_is_this_machine(model, monkeypatch):
    from resnet_cli.runtimes import onnx_runtime

    here = onnx_runtime.optimized_path(model)
    monkeypatch.setattr(onnx_runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    assert onnx_runtime.optimized_path(model) != here and here.name.startswith(model.stem)
