"""What each subcommand does, given a resolved ``Options``; returns the exit code.

The CLI only parses into Options and calls these. User errors become one stderr line and an
exit code here, never a traceback.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import threading
import time
from pathlib import Path

from .errors import UserError
from .images import discover
from .options import Options
from .output import EXIT_SOME_FAILED, Report, open_sink, recorded_paths, stderr_line


class _StopFlag:
    """First Ctrl-C asks the run to stop after the batch in hand (records stay whole);
    a second one interrupts at once."""

    def __init__(self):
        self.requested = False

    def __call__(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def _graceful_sigint():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, flag)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress(options: Options):
    """A rich progress bar on stderr when it is a terminal (transient: gone when done)."""
    show = options.progress if options.progress is not None else sys.stderr.isatty()
    if options.quiet or not show:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("classifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.1f} img/s"),
        TimeRemainingColumn(),
        console=Console(file=sys.stderr),
        transient=True,
    )


def _sources(options: Options, skip: set[str] = frozenset()):
    sources = discover(options.inputs, recursive=options.recursive, include_hidden=options.include_hidden)
    return (s for s in sources if s.path not in skip)


def _peek_batch_size(sources, batch_size: int):
    """A run over fewer inputs than a batch uses a batch that size: one photo, batch 1."""
    head = list(itertools.islice(sources, batch_size + 1))
    size = max(1, min(batch_size, len(head)))
    return size, itertools.chain(head, sources)


def _count_in_background(options: Options, progress, task) -> None:
    """Folders make the total unknown up front; count them on the side for the ETA."""
    if "-" in options.inputs:
        return

    def count():
        total = sum(1 for _ in _sources(options))
        progress.update(task, total=total)

    threading.Thread(target=count, daemon=True, name="count").start()


def classify(options: Options) -> int:
    report = Report()
    done: set[str] = set()
    if options.resume:
        if not options.output:
            raise UserError("--resume needs --output FILE (the file to continue).")
        try:
            done = recorded_paths(options.output, options.format)
        except ValueError as error:
            raise UserError(str(error)) from None
        report.resumed = len(done)
    # In table format the table row is the error line; elsewhere stdout may be a file or jq.
    echo_errors = options.format != "table" or options.output is not None
    records = _records(options, report, skip=done, echo_errors=echo_errors, top_k=options.top_k)
    try:
        first = next(records, None)  # opens the runtime: weights errors surface before any output
    except KeyboardInterrupt:
        records.close()
        raise
    try:
        sink = open_sink(options.format, options.output, appending=options.resume)
    except (OSError, ValueError) as error:
        records.close()
        raise UserError(f"--output: {error}") from None
    try:
        with _graceful_sigint() as stop, _progress(options) as progress:
            task = progress.add_task("classify", total=None, rate=0.0) if progress else None
            if progress:
                _count_in_background(options, progress, task)
            try:
                for record in itertools.chain([first] if first else [], records):
                    sink.write(record)
                    if progress:
                        elapsed = max(1e-9, time.perf_counter() - report.started)
                        progress.update(task, advance=1, rate=report.classified / elapsed)
                    if stop.requested:
                        report.interrupted = True
                        break
            except KeyboardInterrupt:
                report.interrupted = True
            finally:
                records.close()
    finally:
        sink.close()
    if not options.quiet or report.interrupted:
        stderr_line(report.summary())
    return report.exit_code


def summary(options: Options) -> int:
    """Print the model summary, as the original walkthrough did (no weights needed)."""
    from .runtimes.keras_runtime import import_keras

    import_keras(options.device)
    from .model import resnet50

    from .weights import DEFAULT

    model = resnet50(**DEFAULT.numerics(options.pool1_padding, options.bn_epsilon))
    model.summary(print_fn=lambda line, **_: print(line))
    return 0


def _records(options: Options, report: Report, skip=frozenset(), echo_errors=True, include_top=True, pooling=None, top_k=5):
    """Open the runtime and stream records for the inputs, counted in ``report``."""
    if options.engine == "ray":
        records = _ray_records(options, report, skip, top_k)
    else:
        records = _local_records(options, report, skip, include_top, pooling, top_k)
    for record in records:
        report.add(record)
        if record.error is not None and echo_errors:
            stderr_line(f"error: {record.path}: {record.error}")
        yield record


def _local_records(options: Options, report: Report, skip, include_top: bool, pooling, top_k: int):
    from .pipeline import prediction_records, run, vector_records
    from .runtimes.factory import open_runtime

    batch_size, sources = _peek_batch_size(_sources(options, skip), options.batch_size)
    runtime = open_runtime(options, batch_size=batch_size, include_top=include_top, pooling=pooling)
    report.started = time.perf_counter()
    to_records = prediction_records(top_k) if include_top else vector_records
    return run(sources, runtime.predict, to_records, options.decode, batch_size, options.decode_workers(), on_skip=report.skip)


def _ray_records(options: Options, report: Report, skip, top_k: int):
    from . import ray_engine
    from .weights import locate

    ray_engine.import_ray()  # "how to install" before anything else
    locate(options.weights, offline=options.offline)  # weights errors on the driver, as one line
    report.started = time.perf_counter()
    yield from ray_engine.records(options, _sources(options, skip), top_k, on_skip=report.skip)


def evaluate(options: Options) -> int:
    """Top-1/top-5 accuracy of the classifier on labeled images."""
    import json

    from .evaluate import Accuracy, label_for, read_label_csv

    try:
        csv_labels = read_label_csv(options.labels) if options.labels else None
    except (OSError, ValueError) as error:
        raise UserError(f"--labels: {error}") from None
    options = _replace(options, recursive=True)  # folder-per-wnid layouts are trees
    report, accuracy = Report(), Accuracy()
    for record in _records(options, report):
        if not record.ok:
            continue
        truth = label_for(record.path, csv_labels)
        if truth is None:
            accuracy.unlabeled += 1
            continue
        accuracy.add(truth, [p.index for p in record.predictions])
    result = accuracy.as_dict()
    if options.format == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"images  {result['images']}")
        print(f"top-1   {result['top1']:.4f}")
        print(f"top-5   {result['top5']:.4f}")
        if accuracy.unlabeled:
            print(f"unlabeled (not counted)  {accuracy.unlabeled}")
        print("worst classes (top-1):")
        for row in result["worst_classes"]:
            print(f"  {row['top1']:.2f}  {row['label']} ({row['wnid']}, {row['images']} images)")
    if not options.quiet:
        stderr_line(report.summary())
    if accuracy.images == 0:
        stderr_line("error: no labeled images (labels come from --labels CSV, wnid folders, or n01440764_… file names).")
        return EXIT_SOME_FAILED
    return report.exit_code


def embed(options: Options) -> int:
    """2048-d pooled features: .npz (features + paths) or .npy with a .txt of paths beside it."""
    import io

    import numpy as np

    from .cache import write_atomic

    if not options.output:
        raise UserError("embed needs -o FILE (.npz, or .npy plus FILE.txt of paths).")
    if not options.output.endswith((".npz", ".npy")):
        raise UserError(f"-o must end in .npz or .npy. Received: {options.output}")
    report = Report()
    paths, vectors = [], []
    for record in _records(options, report, include_top=False, pooling="avg"):
        if record.ok:
            paths.append(record.path)
            vectors.append(np.asarray(record.vector, dtype=np.float32))
    features = np.stack(vectors) if vectors else np.zeros((0, 2048), np.float32)
    if options.normalize and len(features):
        features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    buffer = io.BytesIO()
    if options.output.endswith(".npz"):
        np.savez(buffer, features=features, paths=np.array(paths, dtype=str))
    else:
        np.save(buffer, features)
        write_atomic(Path(options.output).with_suffix(".txt"), "".join(p + "\n" for p in paths).encode())
    write_atomic(Path(options.output), buffer.getvalue())
    if not options.quiet:
        stderr_line(report.summary().replace("classified", "embedded", 1))
    return report.exit_code


def explain(options: Options) -> int:
    """Grad-CAM heat-map of one image, blended over the photo, as a PNG."""
    import numpy as np

    from .explain import class_activation_map, features_and_scores, load_photo, overlay
    from .images import ImageError, decode
    from .imagenet import class_index, find_class
    from .runtimes.keras_runtime import build_model
    from .weights import locate

    (path,) = options.inputs
    if not options.output:
        raise UserError("explain needs -o FILE.png.")
    try:
        target = find_class(options.target_class) if options.target_class else None
    except ValueError as error:
        raise UserError(f"--class: {error}") from None
    try:
        image = decode(path, resize=options.decode.resize, interpolation=options.decode.interpolation)
        photo = load_photo(path)
    except ImageError as error:
        stderr_line(f"error: {path}: {error}")
        return EXIT_SOME_FAILED
    model = build_model(locate(options.weights, offline=options.offline), pool1_padding=options.pool1_padding, bn_epsilon=options.bn_epsilon, device=options.device)
    features, probabilities = features_and_scores(model, image)
    target = int(np.argmax(probabilities)) if target is None else target
    cam = class_activation_map(features, model.get_layer("fc1000").get_weights()[0], target)
    overlay(photo, cam).save(options.output)
    if options.raw:
        np.save(options.raw, cam)
    wnid, label = class_index()[target]
    if not options.quiet:
        stderr_line(f"{path}: heat-map for {label} ({wnid}, index {target}, score {probabilities[target]:.4f}) → {options.output}")
    return 0


def export(options: Options) -> int:
    """Write the ONNX model (fp32 or int8) the onnx runtime uses: uint8 RGB in, probabilities out."""
    import shutil

    from .runtimes.onnx_runtime import export_config, model_path
    from .weights import locate

    if not options.output:
        raise UserError("export needs -o FILE.onnx.")
    if options.precision == "bf16":
        raise UserError("export writes fp32 or int8 ONNX models. Received: --precision bf16")
    weights = locate(options.weights, offline=options.offline)
    model = model_path(weights, export_config(options, weights), options.calibration)
    if isinstance(model, bytes):
        Path(options.output).write_bytes(model)
    else:
        shutil.copyfile(model, options.output)
    if not options.quiet:
        stderr_line(f"wrote {options.output} ({options.precision}; input uint8 [N, 224, 224, 3] RGB, output probabilities [N, 1000])")
    return 0


def _replace(options: Options, **changes) -> Options:
    import dataclasses

    return dataclasses.replace(options, **changes)


__all__ = ["UserError", "classify", "summary", "evaluate", "embed", "explain", "export", "EXIT_SOME_FAILED"]
