"""The Python API: a classifier loaded once and called many times, with the CLI's options and
defaults resolved the same way (``config.resolve`` → ``plan.make_plan`` → ``engines.open``),
so its records are the CLI's records.

    from resnet_cli import Classifier

    with Classifier() as classifier:
        record = classifier.classify("elephant.jpg")
        print(record.predictions[0].label, record.predictions[0].score)
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, Union

from .config import ModelConfig, resolve
from .errors import InputError
from .inputs.discover import Source, discover
from .plan import RunPlan, make_plan
from .records import Record
from .request import DEVICES, PRECISIONS, RUNTIMES, EngineOptions, InputOptions, ModelRequest, conflicts

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from .engines import Engine

# What one input may be: a path, URL or URI (str or os.PathLike), an encoded image's bytes, a
# binary file object, a Pillow image, or a uint8 (H, W, 3) RGB / (H, W) grey numpy array.
ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, Any, "Image.Image", "np.ndarray"]
Errors = Literal["record", "raise"]

__all__ = ["Classifier", "ImageInput", "InputError"]


class Classifier:
    """A ResNet with its runtime open, for many calls: ``classify`` (top-k classes), ``embed``
    (pooled features), ``stream`` (records of an iterable, in order, with bounded memory).

    The options are the CLI's (``resnet-classify classify --help``), with its defaults: the
    weights' own preprocessing, the fastest runtime installed for this CPU, ResNet50 unless
    ``model`` or the ``head`` says otherwise. The weights are located (and downloaded unless
    ``offline``) and the runtime opened here, so a bad option or a missing file raises now,
    not at the first photo. Thread-safe: calls from several threads decode side by side and
    take turns at the model."""

    def __init__(
        self,
        model: str | None = None,
        *,
        weights: str | os.PathLike | None = None,
        runtime: str = "auto",
        precision: str = "fp32",
        device: str = "auto",
        top_k: int = 5,
        head: str | os.PathLike | None = None,
        threads: int = 0,
        batch_size: int | None = None,
        workers: int = 0,
        offline: bool = False,
        resize: str | None = None,
        interpolation: str | None = None,
        pool1_padding: str | None = None,
        bn_epsilon: float | None = None,
        fast_decode: bool = False,
        timeout: float = 30.0,
        calibration: str | os.PathLike | None = None,
        quiet: bool = True,
    ):
        for name, value, allowed in (("runtime", runtime, RUNTIMES), ("precision", precision, PRECISIONS)):
            _check_choice(name, value, allowed)
        _check_choice("device", device, DEVICES)
        _check_count("top_k", top_k)
        if batch_size is not None:
            _check_count("batch_size", batch_size)
        self.request = ModelRequest(
            model=model,
            weights=_text(weights),
            offline=offline,
            pool1_padding=pool1_padding,
            bn_epsilon=bn_epsilon,
            resize=resize,
            interpolation=interpolation,
            fast_decode=fast_decode,
            fetch_timeout=timeout,
            runtime=runtime,
            precision=precision,
            device=device,
            threads=threads,
            calibration=_text(calibration),
            head=_text(head),
        )
        problem = conflicts(self.request)
        if problem:
            raise ValueError(problem)
        self.top_k = top_k
        self.config: ModelConfig = resolve(self.request)
        self._asked = EngineOptions(batch_size=batch_size, workers=workers)
        self._quiet = quiet
        self._engines: dict[bool, Engine] = {}
        self._opening = threading.Lock()
        self._engine(features=False)

    @property
    def labels(self) -> tuple[str, ...]:
        """The class names, by output index (ImageNet's, or the head's)."""
        return tuple(label for _, label in self.config.labels)

    @property
    def ran_on(self) -> str:
        """The device and runtime the model runs on, as the CLI's summary names them."""
        return self._engines[False].ran_on

    def classify(
        self, inputs: ImageInput | Iterable[ImageInput], *, top_k: int | None = None, errors: Errors = "record"
    ) -> Record | list[Record]:
        """The top-k classes of one input (a Record) or of many (a list, in order; a folder's
        path counts as many: its images, as the CLI lists them). A bad input is a Record with
        ``error`` set, or with ``errors="raise"`` an ``InputError``."""
        single = _is_one(inputs)
        records = list(self.stream([inputs] if single else inputs, top_k=top_k, errors=errors))
        return records[0] if single and len(records) == 1 and not _is_folder(inputs) else records

    def embed(self, inputs: ImageInput | Iterable[ImageInput], *, errors: Errors = "record") -> Record | list[Record]:
        """The pooled features (``Record.vector``, float32, the ``embed`` command's) of one
        input or of many, as ``classify`` takes them."""
        single = _is_one(inputs)
        records = list(self.stream([inputs] if single else inputs, errors=errors, features=True))
        return records[0] if single and len(records) == 1 and not _is_folder(inputs) else records

    def stream(
        self,
        inputs: Iterable[ImageInput],
        *,
        top_k: int | None = None,
        errors: Errors = "record",
        features: bool = False,
    ) -> Iterator[Record]:
        """A record per input of ``inputs`` (read lazily: a generator of millions is fine), in
        order, a few batches held at a time; ``features``: pooled features, not classes."""
        _check_choice("errors", errors, ("record", "raise"))
        if top_k is not None:
            _check_count("top_k", top_k)
        engine = self._engine(features)
        for record in engine.records(_sources(inputs), top_k=None if features else top_k or self.top_k):
            if errors == "raise" and record.error is not None:
                raise InputError(record.path, record.error)
            yield record

    def close(self) -> None:
        """Let the runtimes go (their memory is freed once nothing else holds them)."""
        with self._opening:
            for engine in self._engines.values():
                engine.close()
            self._engines.clear()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        config = self.config
        return f"Classifier(model={config.model!r}, runtime={config.runtime!r}, precision={config.precision!r})"

    def plan(self, features: bool = False) -> RunPlan:
        """The run plan the engine reads: batches run at their own size (a lone photo is one
        photo's work), decoded ahead of the model."""
        config = self.config.features("avg") if features else self.config
        return make_plan(config, InputOptions(quiet=self._quiet), self._asked, top_k=self.top_k, variable_batch=True)

    def _engine(self, features: bool) -> Engine:
        from .engines import open as open_engine

        with self._opening:
            if features not in self._engines:
                engine = open_engine(self.plan(features))
                engine.start()
                self._engines[features] = engine
            return self._engines[features]


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}. Received: {value!r}")


def _check_count(name: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a whole number ≥ 1. Received: {value!r}")


def _text(path: str | os.PathLike | None) -> str | None:
    return None if path is None else os.fspath(path)


def _is_one(inputs: object) -> bool:
    """One input, not a collection of them (a path, bytes, a file, an image, an array)."""
    import numpy as np

    return (
        isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview, np.ndarray))
        or hasattr(inputs, "read")
        or _is_pillow(inputs)
        or not isinstance(inputs, Iterable)
    )


def _is_pillow(item: object) -> bool:
    return type(item).__module__.startswith("PIL.")


def _is_folder(item: object) -> bool:
    return isinstance(item, (str, os.PathLike)) and os.path.isdir(item)


def _sources(inputs: Iterable[ImageInput]) -> Iterator[Source]:
    """Sources of the inputs, lazily: paths, URLs and URIs as the CLI finds them (a folder: its
    images); anything in memory as a Source holding it, named for the records."""
    import numpy as np

    for item in inputs:
        if isinstance(item, (str, os.PathLike)):
            yield from discover((os.fspath(item),))
        elif isinstance(item, (bytes, bytearray, memoryview)):
            yield Source("<bytes>", data=bytes(item))
        elif isinstance(item, np.ndarray):
            yield Source("<array>", data=item)
        elif _is_pillow(item):
            yield Source(getattr(item, "filename", "") or "<image>", data=item)
        elif hasattr(item, "read"):
            name = getattr(item, "name", None)
            yield Source(os.fsdecode(name) if isinstance(name, (str, bytes)) else "<file>", data=item.read())
        else:
            yield Source(f"<{type(item).__name__}>", error=f"not an image: a {type(item).__name__}")
