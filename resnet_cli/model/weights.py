"""The pretrained ImageNet weights: which files exist, where to find them, how to read them.

Weights are read with h5py into ``{our layer name: [arrays]}`` — no Keras needed — so the
same reader feeds the Keras model and the ONNX exporter. Both official ResNet50 layouts are
understood (the classic Keras-1 file, ``res2a_branch2a`` …, and the current keras.applications
file, ``conv2_block1_1_conv`` …, read under the classic names); the other members' files keep
keras.applications' names, which are ours for them.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import stderr_line
from ..errors import WeightsError, user_file
from ..storage import file_md5
from .spec import (
    ARCHITECTURES,
    BLOCK_LETTERS,
    DEFAULT,
    DEFAULT_MODEL,
    OFFICIAL,
    WeightsSpec,
    architecture,
    default_weights,
    weighted_layers,
)

ENV_VAR = "RESNET_CLI_WEIGHTS"


@dataclass(frozen=True)
class ResolvedWeights:
    """A weight file found on this machine: its absolute path, md5, and the official spec it
    matches (else the model's own file's, whose numerics apply to any file of that model)."""

    path: Path
    spec: WeightsSpec
    md5: str


# ---------------------------------------------------------------------------- layer names

_KERAS_NAME = re.compile(r"conv(\d)_block(\d+)_(\d)_(conv|bn)")
_CLASSIC_NAME = re.compile(r"(res|bn)(\d)([a-f])_branch(1|2a|2b|2c)")
_BRANCH_TO_INDEX = {"1": "0", "2a": "1", "2b": "2", "2c": "3"}
_INDEX_TO_BRANCH = {v: k for k, v in _BRANCH_TO_INDEX.items()}
_FIXED = {"conv1_conv": "conv1", "conv1_bn": "bn_conv1", "predictions": "fc1000"}


def classic_name(keras_name: str) -> str:
    """keras.applications layer name → classic name (conv2_block1_0_bn → bn2a_branch1)."""
    if keras_name in _FIXED:
        return _FIXED[keras_name]
    match = _KERAS_NAME.fullmatch(keras_name)
    if not match or int(match.group(2)) > len(BLOCK_LETTERS):
        return keras_name
    stage, block, index, kind = match.groups()
    prefix = "res" if kind == "conv" else "bn"
    return f"{prefix}{stage}{BLOCK_LETTERS[int(block) - 1]}_branch{_INDEX_TO_BRANCH[index]}"


def keras_name(classic: str) -> str:
    """Classic layer name → keras.applications name (res2a_branch2a → conv2_block1_1_conv)."""
    for current, old in _FIXED.items():
        if old == classic:
            return current
    match = _CLASSIC_NAME.fullmatch(classic)
    if not match:
        return classic
    prefix, stage, letter, branch = match.groups()
    kind = "conv" if prefix == "res" else "bn"
    return f"conv{stage}_block{BLOCK_LETTERS.index(letter) + 1}_{_BRANCH_TO_INDEX[branch]}_{kind}"


# ---------------------------------------------------------------------------- reading


def _official_for(path: Path) -> WeightsSpec | None:
    return next((s for s in OFFICIAL if s.file_name == path.name), None)


def _corrupt(path: Path, reason: str) -> WeightsError:
    """The message for a file that is not usable weights. Deleting it is advised only for a
    file in the Keras cache (ours to fetch again), never for a file the user named."""
    spec = _official_for(path) or DEFAULT
    expected = ", ".join(f"{s.md5} ({s.layout} layout)" for s in OFFICIAL if s.file_name == spec.file_name)
    in_cache = Path(path).resolve().parent in {d.resolve() for d in keras_cache_dirs()}
    advice = "delete it to have it downloaded again" if in_cache else "pass the official file with --weights"
    return WeightsError(
        f"{path}: cannot read the weights ({reason}). The official {spec.file_name} has md5 {expected}; {advice}."
    )


def read_weights(path: Path, model: str = DEFAULT_MODEL) -> dict[str, list[np.ndarray]]:
    """An HDF5 weight file (classic or current Keras layout) of ``model`` → {our layer name:
    arrays}, checked to hold every layer of that network's backbone.

    Arrays come in the file's ``weight_names`` order: kernel, bias (Conv2D, Dense; v2's
    convolutions before a BN have no bias); gamma, beta, moving mean, moving variance
    (BatchNormalization).
    """
    rename = classic_name if architecture(model).layer_names == "classic" else str
    import h5py

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file.")
    try:
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle  # noqa: SIM401 (h5py)
            if "layer_names" not in root.attrs:
                raise _corrupt(path, "no 'layer_names' attribute: not a Keras HDF5 weight file")
            weights = {}
            for raw_name in root.attrs["layer_names"]:
                name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
                group = root[name]
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group.attrs.get("weight_names", [])]
                if names:
                    weights[rename(name)] = [np.asarray(group[n]) for n in names]
    except WeightsError:
        raise
    except (OSError, KeyError, ValueError) as error:
        raise _corrupt(path, f"truncated or corrupt HDF5 file: {error}") from None
    if not weights:
        raise _corrupt(path, "the file holds no layer weights")
    check_layers(weights, model, path)
    return weights


def guess_model(layer_names) -> str | None:
    """Which member of the family a file's layer names are of: the deepest whose backbone
    they hold, or None."""
    names = set(layer_names) | {classic_name(n) for n in layer_names}
    fits = [a for a in ARCHITECTURES.values() if set(weighted_layers(a, include_top=False)) <= names]
    return max(fits, key=lambda a: (sum(a.blocks), a.version)).name if fits else None


def check_layers(weights: dict, model: str, source: Path | str) -> None:
    """One line when the file lacks layers of ``model`` — naming the model it holds, if any."""
    missing = [name for name in weighted_layers(model, include_top=False) if name not in weights]
    if not missing:
        return
    shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
    guess = guess_model(weights)
    hint = f" It holds {guess} weights: pass --model {guess}." if guess and guess != model else ""
    raise WeightsError(f"{source}: the file has no weights for layer(s) {shown} of {model}.{hint}")


def load_into(model, weights: dict[str, list[np.ndarray]], source: Path | str = "weights") -> None:
    """Set every weighted layer of ``model`` from ``weights`` by layer name, checking shapes.

    Layers the file has but the model lacks (fc1000 for a model without top) are ignored.
    """
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in weights]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise WeightsError(f"{source}: the file has no weights for layer(s) {shown}.")
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = weights[layer.name]
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            raise WeightsError(f"{source}: layer {layer.name} expects weights of shapes {expected}. Received: {found}.")
        layer.set_weights(arrays)


# ---------------------------------------------------------------------------- finding


def _keras_homes() -> tuple[Path, Path]:
    """``$KERAS_HOME`` (default ``~/.keras``), and the fallback Keras' get_file uses when
    that is not writable: ``/tmp/.keras``."""
    import tempfile

    home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    return home, Path("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()) / ".keras"


def keras_cache_dir() -> Path:
    """Where keras.utils.get_file puts models: ``$KERAS_HOME/models``, or ``/tmp/.keras/models``
    when that home cannot be written (Keras creates the home when it is missing)."""
    home, fallback = _keras_homes()
    existing = next(p for p in (home, *home.parents) if p.exists())
    return (home if os.access(existing, os.W_OK) else fallback) / "models"


def keras_cache_dirs() -> list[Path]:
    """Every folder a downloaded file may be in (the home's, then the fallback)."""
    return list(dict.fromkeys(h / "models" for h in _keras_homes()))


def missing_message(include_top: bool, reason: str, offline: bool = True, model: str = DEFAULT_MODEL) -> str:
    spec = default_weights(model, include_top)
    size = f", {spec.size:,} bytes" if spec.size else ""
    last = "or run without --offline to download it" if offline else "or retry once the network is up"
    return (
        f"the {architecture(model).title} ImageNet weights are not on this machine ({reason}). Put {spec.file_name} "
        f"(md5 {spec.md5}{size}, from {spec.url}) in {keras_cache_dir()}/, or pass --weights PATH, "
        f"or set {ENV_VAR}=PATH; {last}."
    )


def _checked(path: Path, spec: WeightsSpec) -> ResolvedWeights:
    digest = file_md5(path)
    matching = [s for s in OFFICIAL if s.file_name == spec.file_name and s.md5 == digest]
    if not matching:
        raise _corrupt(path, f"md5 is {digest}, not the official file's")
    return ResolvedWeights(path.resolve(), matching[0], digest)


DOWNLOAD_TIMEOUT = 30.0  # seconds to connect and for each read (--timeout); one retry


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Every socket opened meanwhile connects and reads within ``seconds`` (get_file has no
    timeout of its own: a proxy that accepts and never answers would hold a run for ever)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


MIN_PACE = 64 << 10  # bytes: a weights download that gains less in one --timeout window has stalled


class Stalled(TimeoutError):
    pass


@contextlib.contextmanager
def _pace_guard(partial: Path, timeout: float):
    """End a download that stalls — under MIN_PACE bytes written to ``partial`` in any
    ``timeout`` window, however steadily a byte a second comes (a per-read timeout never fires
    then) — by interrupting the main thread's read (a real signal wakes it). The main thread
    only: elsewhere the per-read timeout is all."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    done = threading.Event()

    def size() -> int:
        try:
            return partial.stat().st_size
        except OSError:
            return 0

    def watch() -> None:
        last = size()
        if done.wait(timeout):  # the first window is the per-read timeout's (a server that never answers)
            return
        while not done.wait(timeout):
            now = size()
            if now - last < MIN_PACE:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGALRM)
                return
            last = now

    def stalled(signum, frame):
        raise Stalled(f"the download stalled: under {MIN_PACE >> 10} KiB in {timeout:g} s (--timeout)")

    previous = signal.signal(signal.SIGALRM, stalled)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        signal.signal(signal.SIGALRM, previous)


def _download(spec: WeightsSpec, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """The network boundary: Keras' get_file with its md5 check, within ``timeout`` to connect
    and per read, ended if it stalls (``_pace_guard``), tried twice. Its "Downloading data
    from …" line and progress bar go to stderr: stdout carries only records.

    Several runs at once download once: the others wait on a lock file, then find the file.
    get_file writes to a name of this process's own, renamed into place when whole, so no run
    ever sees (or md5-fails on) another's partial download."""
    import sys

    from filelock import FileLock

    from ..backend import import_keras

    folder = keras_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.file_name
    with FileLock(str(folder / f".{spec.file_name}.lock")):
        if target.is_file():
            return target
        partial = f".{spec.file_name}.{os.getpid()}.part"
        keras = import_keras()
        for attempt in (1, 2):
            try:
                with (
                    _socket_timeout(timeout),
                    _pace_guard(folder / partial, timeout),
                    contextlib.redirect_stdout(sys.stderr),
                ):
                    got = Path(keras.utils.get_file(partial, spec.url, file_hash=spec.md5, cache_subdir="models"))
                break
            except Exception as error:  # noqa: BLE001 - whatever failed, once more, then the one line
                (folder / partial).unlink(missing_ok=True)
                if attempt == 2:
                    raise
                stderr_line(f"warning: the weights download failed ({_first_line(error)}); trying once more")
        if got.name != partial:  # a get_file that keeps its own files (tests) returns them as they are
            return got
        os.replace(got, target)
        return target


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def locate(
    explicit: str | os.PathLike | None = None,
    offline: bool = False,
    include_top: bool = True,
    timeout: float = DOWNLOAD_TIMEOUT,
    model: str = DEFAULT_MODEL,
) -> ResolvedWeights:
    """Find ``model``'s weights: ``--weights``, then ``$RESNET_CLI_WEIGHTS``, then the Keras
    cache, then (unless offline) download its official file (for ResNet50 the classic one)
    with its md5 check."""
    for given, origin in ((explicit, "--weights"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if given:
            path = Path(given).expanduser()
            if path.is_dir():
                raise WeightsError(f"{path}: is a folder, not a weights file (from {origin}).")
            if not path.is_file():
                raise WeightsError(f"{path}: no such weights file (from {origin}).")
            with user_file(str(path)):
                md5 = file_md5(path)
            official = _official_for(path)
            spec = official if official is not None and official.model == model else default_weights(model)
            return ResolvedWeights(path.resolve(), spec, md5)
    wanted = [s for s in OFFICIAL if s.model == model and (s.include_top or not include_top)]
    for folder in keras_cache_dirs():
        for spec in wanted:
            path = folder / spec.file_name
            if path.is_file():
                return _checked(path, spec)
    if offline:
        raise WeightsError(missing_message(include_top, "--offline, and none in the Keras cache", model=model))
    spec = default_weights(model)
    try:
        path = _download(spec, timeout)
    except Exception as error:  # noqa: BLE001 - any download failure is the same story for the user
        reason = f"download failed: {_first_line(error)}"
        raise WeightsError(missing_message(include_top, reason, offline=False, model=model)) from None
    return ResolvedWeights(path.resolve(), spec, spec.md5)
