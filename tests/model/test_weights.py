"""Loading the weight files in both official layouts, finding them, and failing clearly."""

import dataclasses
import hashlib
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import CLASSIC_NAMES, REAL_WEIGHTS, SAMPLES, ours, requires_real_weights

from resnet_cli.model import weights as W
from resnet_cli.model.spec import CLASSIC

pytestmark = pytest.mark.keras


def test_name_mapping_round_trips(keras):
    from resnet_cli.model.resnet import resnet50

    reference = keras.applications.ResNet50(weights=None)
    current = {layer.name for layer in reference.layers if layer.weights}
    classic = {layer.name for layer in resnet50().layers if layer.weights}
    assert {W.classic_name(n) for n in current} == classic
    assert {W.keras_name(n) for n in classic} == current
    assert W.keras_name("res2a_branch1") == "conv2_block1_0_conv"
    assert W.classic_name("conv4_block6_3_bn") == "bn4f_branch2c"


def test_classic_file_layout_and_outputs(keras, weights, classic_file, sample_arrays):
    with h5py.File(classic_file) as f:
        assert list(f.attrs) == ["layer_names"]  # Keras 1: no keras_version, no backend
        assert [n.decode() for n in f.attrs["layer_names"]] == CLASSIC_NAMES
        assert len([n for n in CLASSIC_NAMES if len(f[n].attrs["weight_names"])]) == 107
    loaded = W.read_weights(classic_file)
    assert loaded.keys() == weights.keys()
    for name in weights:
        for a, b in zip(loaded[name], weights[name]):
            np.testing.assert_array_equal(a, b)
    expected = ours(weights, preprocess=True).predict(sample_arrays, verbose=0)
    got = ours(loaded, preprocess=True).predict(sample_arrays, verbose=0)
    np.testing.assert_array_equal(got, expected)


def test_current_keras_layout_gives_the_same_outputs(keras, weights, keras_file, sample_arrays):
    with h5py.File(keras_file) as f:
        assert "conv2_block1_1_conv" in f and "keras_version" in f.attrs
    loaded = W.read_weights(keras_file)
    expected = ours(weights, preprocess=True).predict(sample_arrays, verbose=0)
    np.testing.assert_array_equal(ours(loaded, preprocess=True).predict(sample_arrays, verbose=0), expected)


def test_truncated_file_names_file_and_md5(classic_file, tmp_path):
    broken = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    broken.write_bytes(classic_file.read_bytes()[:5_000_000])
    with pytest.raises(W.WeightsError) as caught:
        W.read_weights(broken)
    message = str(caught.value)
    assert str(broken) in message and CLASSIC.md5 in message and "truncated" in message


def test_not_hdf5_is_a_clear_error(tmp_path):
    bogus = tmp_path / "weights.h5"
    bogus.write_text("<html>404</html>")
    with pytest.raises(W.WeightsError, match="cannot read the weights"):
        W.read_weights(bogus)


def test_missing_layer_and_wrong_shape(keras, weights):
    from resnet_cli.model.resnet import resnet50

    partial = {k: v for k, v in weights.items() if k != "res4c_branch2b"}
    with pytest.raises(W.WeightsError, match="res4c_branch2b"):
        W.load_into(resnet50(), partial)
    wrong = dict(weights, fc1000=[np.zeros((2048, 10), "float32"), np.zeros(10, "float32")])
    with pytest.raises(W.WeightsError, match=r"fc1000 expects .*\(2048, 1000\).*Received"):
        W.load_into(resnet50(), wrong)


def test_full_file_serves_a_model_without_top(keras, weights, sample_arrays):
    from resnet_cli.model.resnet import resnet50

    model = resnet50(include_top=False, pooling="avg", preprocess=True)
    W.load_into(model, weights)  # fc1000 in the file is simply not needed
    full = ours(weights, preprocess=True)
    pooled = keras.Model(full.input, full.get_layer("flatten").output).predict(sample_arrays, verbose=0)
    np.testing.assert_allclose(model.predict(sample_arrays, verbose=0), pooled, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------- locating


def test_explicit_then_env_then_cache(tmp_path, monkeypatch, classic_file):
    other = tmp_path / "other.h5"
    other.write_bytes(b"x")
    monkeypatch.setenv(W.ENV_VAR, str(other))
    assert W.locate(classic_file).path == classic_file
    assert W.locate().path == other
    monkeypatch.delenv(W.ENV_VAR)
    cached = W.keras_cache_dir() / CLASSIC.file_name
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"not the official file")
    try:
        with pytest.raises(W.WeightsError, match=f"md5.*{CLASSIC.md5}"):
            W.locate(offline=True)
    finally:
        cached.unlink()


def test_cache_file_with_official_md5_is_accepted(monkeypatch):
    data = b"pretend weights"
    spec = W.WeightsSpec(CLASSIC.file_name, "https://example.invalid/w.h5", hashlib.md5(data).hexdigest(), "classic")
    monkeypatch.setattr(W, "OFFICIAL", (spec,))
    cached = W.keras_cache_dir() / spec.file_name
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(data)
    try:
        resolved = W.locate(offline=True)
        assert resolved.path == cached and resolved.md5 == spec.md5
    finally:
        cached.unlink()


def test_offline_without_file_says_where_to_put_what():
    with pytest.raises(W.WeightsError) as caught:
        W.locate(offline=True)
    message = str(caught.value)
    for fact in (CLASSIC.file_name, CLASSIC.md5, CLASSIC.url, str(W.keras_cache_dir()), "--weights"):
        assert fact in message


def test_download_goes_through_get_file_with_md5(monkeypatch, classic_file):
    calls = []

    def fake_get_file(fname, origin, file_hash=None, cache_subdir=None):
        calls.append((fname, origin, file_hash, cache_subdir))
        return str(classic_file)

    import keras

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    resolved = W.locate()
    ((fname, origin, file_hash, subdir),) = calls
    assert fname == f".{CLASSIC.file_name}.{os.getpid()}.part"  # a name of its own, renamed when whole
    assert (origin, file_hash, subdir) == (CLASSIC.url, CLASSIC.md5, "models")
    assert resolved.path == classic_file


def test_concurrent_downloads_fetch_once_and_never_show_a_partial_file(monkeypatch, classic_file, tmp_path):
    """Four runs on an empty Keras cache at once: one download, every run gets the whole file."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    downloads = []

    def slow_get_file(fname, origin, file_hash=None, cache_subdir=None):
        downloads.append(fname)
        target = W.keras_cache_dir() / fname
        data = classic_file.read_bytes()
        with open(target, "wb") as handle:  # written in pieces, as a download is
            for start in range(0, len(data), len(data) // 4):
                handle.write(data[start : start + len(data) // 4])
                threading.Event().wait(0.05)
        return str(target)

    monkeypatch.setattr(keras.utils, "get_file", slow_get_file)
    monkeypatch.setattr(W, "OFFICIAL", (dataclasses.replace(CLASSIC, md5=W.file_md5(classic_file)),))
    monkeypatch.setattr(W, "default_weights", lambda model, include_top=True: W.OFFICIAL[0])
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: W.locate(), range(4)))
    assert len(downloads) == 1
    assert {r.path for r in results} == {(W.keras_cache_dir() / CLASSIC.file_name).resolve()}
    assert W.file_md5(results[0].path) == W.file_md5(classic_file)
    assert not list(W.keras_cache_dir().glob("*.part"))


def test_download_failure_is_the_clear_message(monkeypatch):
    def no_network(spec, timeout):
        raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(W, "_download", no_network)
    with pytest.raises(W.WeightsError, match="download failed: URL fetch failure.*md5 a7b3fe"):
        W.locate()


def test_cli_without_weights_offline_is_one_line_exit_1():
    from click.testing import CliRunner

    from resnet_cli.cli import main

    result = CliRunner().invoke(main, ["--offline", str(SAMPLES / "elephant.jpg")])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert CLASSIC.md5 in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1


@requires_real_weights
def test_real_weights_elephant_top1():
    from click.testing import CliRunner

    from resnet_cli.cli import main

    result = CliRunner().invoke(main, ["--weights", str(REAL_WEIGHTS), "-f", "json", str(SAMPLES / "elephant.jpg")])
    assert result.exit_code == 0, result.stderr
    import json

    top1 = json.loads(result.stdout)[0]["predictions"][0]
    assert top1["wnid"] in {"n02504458", "n01871265", "n02504013"}  # African elephant, tusker, Indian elephant


def test_download_chatter_goes_to_stderr_not_into_the_records(monkeypatch, classic_file):
    """Keras' get_file prints "Downloading data from …" and a progress bar on stdout; a first
    run piped into jq must still get only records."""
    import json

    import keras
    from click.testing import CliRunner

    from resnet_cli.cli import main

    def chatty_get_file(fname, origin, file_hash=None, cache_subdir=None):
        print(f"Downloading data from {origin}")  # what Keras does
        return str(classic_file)

    monkeypatch.setattr(keras.utils, "get_file", chatty_get_file)
    result = CliRunner().invoke(main, ["-f", "jsonl", "-q", str(SAMPLES / "elephant.jpg")])
    assert result.exit_code == 0, result.stderr
    assert [json.loads(line)["path"] for line in result.stdout.splitlines()] == [str(SAMPLES / "elephant.jpg")]
    assert f"Downloading data from {CLASSIC.url}" in result.stderr


def test_keras_tmp_fallback_is_searched(monkeypatch, tmp_path, classic_file):
    """Keras' get_file writes to /tmp/.keras when the home is not writable; --offline must
    find the file there."""
    import shutil

    home, fallback = tmp_path / "home", tmp_path / "tmp-keras"
    monkeypatch.setattr(W, "_keras_homes", lambda: (home, fallback))
    real_access = os.access
    monkeypatch.setattr(
        W.os, "access", lambda p, mode: False if Path(p) in (home, home.parent) else real_access(p, mode)
    )
    assert W.keras_cache_dir() == fallback / "models"
    data = classic_file.read_bytes()
    spec = W.WeightsSpec(CLASSIC.file_name, "https://example.invalid/w.h5", hashlib.md5(data).hexdigest(), "classic")
    monkeypatch.setattr(W, "OFFICIAL", (spec,))
    (fallback / "models").mkdir(parents=True)
    shutil.copy(classic_file, fallback / "models" / spec.file_name)
    assert W.locate(offline=True).path == (fallback / "models" / spec.file_name).resolve()


def test_a_server_that_never_answers_is_the_one_line_within_the_timeout(monkeypatch):
    """Behind a proxy that accepts and never answers: connect-and-read within --timeout, one
    retry, then the missing-weights line — Keras' real get_file against a silent local server."""
    import socket
    import threading
    import time

    from keras.src.utils.file_utils import get_file

    server = socket.create_server(("127.0.0.1", 0))
    held = []
    threading.Thread(target=lambda: [held.append(server.accept()) for _ in range(8)], daemon=True).start()
    from resnet_cli.backend import import_keras

    monkeypatch.setattr(import_keras().utils, "get_file", get_file)  # the conftest's no-network stand-in off
    spec = dataclasses.replace(CLASSIC, url=f"http://127.0.0.1:{server.getsockname()[1]}/w.h5")
    monkeypatch.setattr(W, "default_weights", lambda model, include_top=True: spec)
    started = time.monotonic()
    with pytest.raises(W.WeightsError, match=r"not on this machine \(download failed: .*timed out"):
        W.locate(timeout=0.5)
    assert time.monotonic() - started < 10 and len(held) == 2  # tried twice, each within the bound
    assert not list(W.keras_cache_dir().glob("*.part"))
    server.close()


def test_a_weights_download_that_drips_ends_at_the_timeout(tmp_path, monkeypatch, drip):
    """A server that sends a byte a second never lets a read time out: the weights download
    still ends, as stalled, within a --timeout window or two, and says so."""
    import dataclasses
    import time

    import keras
    from keras.src.utils.file_utils import get_file

    from resnet_cli.model import weights as W
    from resnet_cli.model.spec import default_weights

    url, _ = drip
    monkeypatch.setattr(keras.utils, "get_file", get_file)  # the real one, to 127.0.0.1 only
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    spec = dataclasses.replace(default_weights(), url=url)
    started = time.monotonic()
    with pytest.raises(W.Stalled, match=r"the download stalled: under 64 KiB in 2 s \(--timeout\)"):
        W._download(spec, timeout=2)
    assert time.monotonic() - started < 20  # two tries, each ended at its second window
    assert not list((tmp_path / "keras" / "models").glob("*.part"))
