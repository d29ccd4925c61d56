"""Shared fixtures: random weights written in the official layouts, real photos, a clean
environment (own cache, own Keras home) so no test ever touches the network or the user's files."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_images"
SHARED = ROOT.parent / "shared"
DEV = SHARED / "images" / "imagenet-dev"
CLASSIC_NAMES = json.loads((Path(__file__).parent / "data" / "classic_layer_names.json").read_text())


def _real_weights() -> Path | None:
    """The real pretrained file, if this machine has it (never on our CI machines)."""
    candidates = [os.environ.get("RESNET_CLI_WEIGHTS")]
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
    candidates.append(str(keras_home / "models" / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


REAL_WEIGHTS = _real_weights()
requires_real_weights = pytest.mark.skipif(
    REAL_WEIGHTS is None,
    reason="the real pretrained resnet50_weights_tf_dim_ordering_tf_kernels.h5 is not on this machine "
    "(set RESNET_CLI_WEIGHTS or put it in ~/.keras/models to run this test)",
)


# The fast lane (make test-fast): no TensorFlow and no Keras in the process — importing either
# fails — and the tests that need them (markers keras, slow, ray) are not collected.
FAST_LANE = os.environ.get("RESNET_CLI_TEST_LANE") == "fast"


class _Unimportable:
    """A meta-path finder that refuses ``names`` (and their submodules)."""

    def __init__(self, *names):
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ImportError(f"{name}: not in the fast lane (make test-fast); mark the test keras")
        return None


if FAST_LANE:
    sys.meta_path.insert(0, _Unimportable("tensorflow", "keras"))


def pytest_collection_modifyitems(config, items):
    if not FAST_LANE:
        return
    kept = [
        item
        for item in items
        if not any(item.get_closest_marker(m) for m in ("keras", "slow", "ray"))
        and not {"trained_head", "tinted"} & set(getattr(item, "fixturenames", ()))  # training a head: ~20 s a worker
    ]
    config.hook.pytest_deselected(items=[item for item in items if item not in kept])
    items[:] = kept


@pytest.fixture(autouse=True, scope="session")
def isolated_environment(tmp_path_factory):
    """Own cache and Keras home for the whole session; no stray weights from the environment."""
    base = tmp_path_factory.mktemp("env")
    saved = {k: os.environ.get(k) for k in ("RESNET_CLI_CACHE", "KERAS_HOME", "RESNET_CLI_WEIGHTS")}
    os.environ["RESNET_CLI_CACHE"] = str(base / "cache")
    os.environ["KERAS_HOME"] = str(base / "keras")
    os.environ.pop("RESNET_CLI_WEIGHTS", None)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if FAST_LANE:  # the download goes through Keras, which cannot be imported here
        yield
    else:
        from resnet_cli.backend import import_keras

        keras = import_keras()
        real_get_file = keras.utils.get_file

        def no_network(*args, **kwargs):
            raise OSError("tests never touch the network (a test forgot --weights?)")

        keras.utils.get_file = no_network  # tests that exercise the download replace it themselves
        yield
        keras.utils.get_file = real_get_file
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def keras():
    from resnet_cli.backend import import_keras

    return import_keras()


@pytest.fixture(scope="session")
def sample_arrays():
    from resnet_cli.inputs.decode import decode

    return np.stack([decode(str(p)) for p in sorted(SAMPLES.glob("*.jpg"))])


@pytest.fixture(scope="session")
def weights(keras, sample_arrays):
    """Random weights (classic names) that give photo-dependent, unsaturated predictions."""
    from weight_files import random_weights

    return random_weights(sample_arrays, seed=7)


@pytest.fixture(scope="session")
def classic_file(request, sample_arrays, tmp_path_factory):
    """ResNet50 in the official file's classic layout: the ``weights`` fixture's (Keras-made);
    in the fast lane, the same recipe by numpy and h5py alone."""
    from weight_files import numpy_classic_file, write_weights

    path = tmp_path_factory.mktemp("classic") / "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
    if FAST_LANE:
        return numpy_classic_file(path, sample_arrays, CLASSIC_NAMES, seed=7)
    return write_weights(path, request.getfixturevalue("weights"), "classic", CLASSIC_NAMES)


@pytest.fixture(scope="session")
def keras_file(weights, tmp_path_factory):
    from weight_files import write_weights

    return write_weights(tmp_path_factory.mktemp("keras") / "current_layout.h5", weights, "keras")


@pytest.fixture(scope="session")
def dev_images(tmp_path_factory):
    """(paths, class indices) of real photos: the 100 ImageNet dev photos where ../shared is
    beside the repo; on a clone without it, 28 photos made from sample_images/ (each sample
    as it is, mirrored, cropped, and turned and tinted), named like ImageNet files
    (``n01440764_1.JPEG``, one class each) so the wnid-based tests run too."""
    if (DEV / "labels.csv").is_file():
        with open(DEV / "labels.csv") as handle:
            rows = list(csv.DictReader(handle))
        return [str(DEV / r["file"]) for r in rows], [int(r["class_index"]) for r in rows]
    from PIL import Image, ImageOps

    from resnet_cli.model.imagenet import class_index

    folder = tmp_path_factory.mktemp("dev-from-samples")
    variants = [
        lambda im: im,
        ImageOps.mirror,
        lambda im: im.crop((im.width // 8, im.height // 8, im.width * 7 // 8, im.height * 7 // 8)),
        lambda im: Image.blend(
            im.rotate(12, expand=True), Image.new("RGB", im.rotate(12, expand=True).size, (40, 90, 160)), 0.25
        ),
    ]
    paths, labels = [], []
    for n, sample in enumerate(sorted(SAMPLES.glob("*.jpg"))):
        photo = Image.open(sample).convert("RGB")
        for k, variant in enumerate(variants):
            index = (37 * (n * len(variants) + k)) % 1000
            path = folder / f"{class_index()[index][0]}_{k}.JPEG"
            variant(photo).save(path, quality=90)
            paths.append(str(path))
            labels.append(index)
    return paths, labels


@pytest.fixture(scope="session")
def dev_arrays(dev_images):
    from resnet_cli.inputs.decode import decode

    return np.stack([decode(p) for p in dev_images[0]])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row by row, the cosine between two sets of feature vectors: how reduced precision is
    judged (random weights' logit margins are too small for top-1 agreement to mean much)."""
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def preprocess_caffe(rgb: np.ndarray) -> np.ndarray:
    """The numpy reference of caffe preprocessing: RGB in [0, 255] → BGR float32 minus the
    ImageNet means, the arithmetic of Keras' preprocess_input(mode="caffe")."""
    from resnet_cli.model.spec import CAFFE_MEAN_BGR

    bgr = np.asarray(rgb, dtype=np.float32)[..., ::-1]
    return bgr - np.asarray(CAFFE_MEAN_BGR, dtype=np.float32)


def ours(weights, **kwargs):
    """Our model with ``weights`` set by name."""
    from resnet_cli.model.resnet import resnet50
    from resnet_cli.model.weights import load_into

    model = resnet50(**kwargs)
    load_into(model, weights)
    return model


TINTS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220), "grey": None}


@pytest.fixture(scope="session")
def tinted(dev_images, tmp_path_factory):
    """train/<tint>/ and test/<tint>/ folders of real photos made grey or tinted red, green or
    blue: classes a linear probe separates even on random-weight features. Different photos
    in train and test (20 and 10 per class with the full dev set)."""
    from PIL import Image, ImageOps

    root = tmp_path_factory.mktemp("tinted")
    paths = dev_images[0]
    split = min(20, len(paths) * 2 // 3)
    for index, path in enumerate(paths[: split + 10]):
        photo = ImageOps.grayscale(Image.open(path).convert("RGB")).convert("RGB")
        photo.thumbnail((320, 320))
        for name, colour in TINTS.items():
            folder = root / ("train" if index < split else "test") / name
            folder.mkdir(parents=True, exist_ok=True)
            image = photo if colour is None else Image.blend(photo, Image.new("RGB", photo.size, colour), 0.35)
            image.save(folder / Path(path).with_suffix(".jpg").name, quality=90)
    return root


@pytest.fixture(scope="session")
def trained_head(tinted, classic_file, tmp_path_factory):
    """(head file, train's JSON report): `train` run through the real CLI on ``tinted/train``."""
    from click.testing import CliRunner

    from resnet_cli.cli import main

    head = tmp_path_factory.mktemp("head") / "tints.npz"
    result = CliRunner().invoke(
        main, ["train", "--weights", str(classic_file), str(tinted / "train"), "-o", str(head), "-f", "json", "-q"]
    )
    assert result.exit_code == 0, result.stderr
    return head, json.loads(result.stdout)


def invoke(*args, input=None):
    """The real CLI through Click's CliRunner (stdout and stderr apart), arguments as text."""
    from click.testing import CliRunner

    from resnet_cli.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], input=input, prog_name="resnet-classify")


def cli_command(classic_file, *args, command: str | None = None) -> list:
    """The CLI as a subprocess runs it (signals, kill -9, pipes): ONNX Runtime, batches of 2."""
    words = [command] if command else []
    return [
        sys.executable,
        "-m",
        "resnet_cli",
        *words,
        "--weights",
        str(classic_file),
        "--runtime",
        "onnx",
        "-b",
        "2",
        *args,
    ]


def make_folder(folder: Path, count: int, size=(64, 48)) -> list[Path]:
    """``count`` small PNGs of the elephant photo, each turned a degree further."""
    from PIL import Image

    folder.mkdir()
    base = Image.open(SAMPLES / "elephant.jpg").convert("RGB").resize(size)
    paths = []
    for i in range(count):
        path = folder / f"img{i:05d}.png"
        base.rotate(i % 360).save(path)
        paths.append(path)
    return paths


@contextlib.contextmanager
def cpu_flags_as(flags: str):
    """Decide, in this process, as a CPU with ``flags`` (space-separated) would."""
    from resnet_cli import backend

    saved = os.environ.get("RESNET_CLI_CPU_FLAGS")
    os.environ["RESNET_CLI_CPU_FLAGS"] = flags
    backend.cpu_flags.cache_clear()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("RESNET_CLI_CPU_FLAGS")
        else:
            os.environ["RESNET_CLI_CPU_FLAGS"] = saved
        backend.cpu_flags.cache_clear()


def onnx_config(classic_file, model=None, **changes):
    """The resolved config of a default onnx run on ``classic_file`` (a file of ``model``,
    default ResNet50), with ``changes``."""
    import dataclasses

    from resnet_cli.config import resolve
    from resnet_cli.request import ModelRequest

    return dataclasses.replace(resolve(ModelRequest(model=model, weights=str(classic_file), runtime="onnx")), **changes)


def onnx_session(classic_file, model=None, **changes):
    """An ONNX Runtime session on the cached model of ``onnx_config``."""
    from resnet_cli.runtimes.model_cache import ensure_onnx_model
    from resnet_cli.runtimes.onnx_runtime import open_session

    return open_session(ensure_onnx_model(onnx_config(classic_file, model, **changes), quiet=True))


@pytest.fixture(scope="session")
def keras_probabilities(keras, weights, dev_arrays):
    """Our Keras model's scores on the dev photos: what the other runtimes are held to."""
    return ours(weights, preprocess=True).predict(dev_arrays, verbose=0, batch_size=25)


def held(done, universe) -> set:
    """The members of ``universe`` an on-disk PathSet holds, checking it holds nothing else."""
    members = {path for path in universe if path in done}
    assert len(done) == len(members), (len(done), members)
    return members


def reference(keras, weights, **kwargs):
    """keras.applications.ResNet50 with our weights copied in through the name mapping."""
    from resnet_cli.model.weights import keras_name

    model = keras.applications.ResNet50(weights=None, **kwargs)
    for name, arrays in weights.items():
        if kwargs.get("include_top", True) or name != "fc1000":
            model.get_layer(keras_name(name)).set_weights(arrays)
    return model


@pytest.fixture(scope="session")
def twenty_photos(tmp_path_factory, dev_images):
    """20 real photos and an empty file (bar 12-io-parquet)."""
    import shutil

    folder = tmp_path_factory.mktemp("twenty")
    for path in dev_images[0][:20]:
        shutil.copy(path, folder)
    (folder / "empty.jpg").write_bytes(b"")
    return folder


class Member:
    """One member of the family on random but well-scaled weights: keras.applications' own
    model (the independent reference) and its weights written in the official file's layout."""

    def __init__(self, name: str, folder: Path, photos: np.ndarray):
        import keras
        from weight_files import well_scaled, write_weights

        from resnet_cli.model.spec import architecture, file_name

        self.name, self.arch = name, architecture(name)
        self.module = keras.applications.resnet_v2 if self.arch.version == 2 else keras.applications.resnet
        self.reference = getattr(keras.applications, self.arch.title)(weights=None)
        weights = well_scaled(self.reference, self.preprocess(photos), seed=11)
        layer_names = [layer.name for layer in self.reference.layers]
        self.file = write_weights(folder / file_name(name), weights, "keras", layer_names)

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """keras.applications' own preprocess_input for this member."""
        return self.module.preprocess_input(np.array(rgb, dtype=np.float32))

    def probabilities(self, rgb: np.ndarray) -> np.ndarray:
        return np.asarray(self.reference(self.preprocess(rgb), training=False))  # eager: no tracing of 150 layers

    def config(self, **changes):
        """The resolved config of an onnx run on this member's file, with ``changes``."""
        return onnx_config(self.file, self.name, **changes)

    def session(self, **changes):
        """An ONNX Runtime session on the cached export of ``config(**changes)``."""
        return onnx_session(self.file, self.name, **changes)

    def pooled(self, rgb: np.ndarray) -> np.ndarray:
        import keras

        probe = keras.Model(self.reference.input, self.reference.get_layer("avg_pool").output)
        return np.asarray(probe(self.preprocess(rgb), training=False))


@pytest.fixture(scope="session")
def family(keras, dev_arrays, tmp_path_factory):
    """``family(name)``: that member (built once per session). BatchNorm statistics come from
    the first 16 dev photos; tests judge on the others."""
    members = {}

    def member(name: str) -> Member:
        if name not in members:
            members[name] = Member(name, tmp_path_factory.mktemp(name), dev_arrays[:16])
        return members[name]

    return member


@pytest.fixture(scope="session")
def judged_photos(dev_arrays):
    """Photos the family's BatchNorm statistics were not taken on."""
    return dev_arrays[16:28]


@pytest.fixture
def drip():
    """(URL, requested): a server on 127.0.0.1 that sends the elephant photo a byte a second
    (a Content-Length of 100 MB, so it never ends on its own: no read ever times out), and an
    Event set once a client is waiting on it."""
    import http.server
    import threading
    import time

    requested = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000000")
            self.end_headers()
            requested.set()
            try:
                for byte in (SAMPLES / "elephant.jpg").read_bytes()[:600]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(1)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/drip.jpg", requested
    server.shutdown()
