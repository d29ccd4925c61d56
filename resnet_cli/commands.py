"""What each subcommand does; returns the exit code.

The CLI parses into requests (options.py) and calls these. Each command resolves its one
ModelConfig first (config.resolve), then streams inputs through an engine into a sink.
User errors are raised as UserError/WeightsError: the CLI prints them as one line.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import sys
import threading
import time
from pathlib import Path

from .config import ModelConfig, resolve
from .console import stderr_line
from .errors import UserError
from .images import discover
from .options import InputOptions, ModelRequest, OutputOptions
from .pathset import PathSet
from .output import EXIT_SOME_FAILED, Report, open_sink, prepare_output, recorded_paths, records_only_stdout


class _StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM. Once records flow, the first asks the run to stop after the
    record in hand (records stay whole, the summary is printed); a second one interrupts at
    once. Before the first record (the model loading, stdin still empty) it interrupts at once:
    nothing is half-written yet."""

    def __init__(self):
        self.requested = False
        self.terminated = False
        self.writing = False

    def __call__(self, signum, frame):
        self.terminated = self.terminated or signum == signal.SIGTERM
        if self.requested or not self.writing:
            self.requested = True
            raise KeyboardInterrupt
        self.requested = True


@contextlib.contextmanager
def _graceful_stop():
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _LogProgress:
    """Progress for jobs whose stderr is a log, not a terminal: a line every ``interval``
    seconds from launch — start-up included (a cluster's can take a minute) — with done/total,
    rate and ETA (the rich Progress calls classify makes)."""

    def __init__(self, launched: float):
        import threading

        self.interval, self.launched, self.first = LOG_INTERVAL, launched, None
        self.done, self.total = 0, None
        self.ticking = threading.Event()
        self.ticker = threading.Thread(target=self._tick, daemon=True, name="progress")

    def __enter__(self):
        self.ticker.start()
        return self

    def __exit__(self, *exc_info):
        self.ticking.set()
        self.ticker.join()  # a tick already under way lands before the summary, never after the run
        return None

    def add_task(self, *args, total=None, **fields):
        self.total = total
        return 0

    def update(self, task, advance: int = 0, total=None, **fields):
        if advance and self.first is None:
            self.first = time.perf_counter()
        self.done += advance
        self.total = total if total is not None else self.total

    def _tick(self) -> None:
        """A line at launch + 10 s, + 20 s, … (a late start skips the ticks already past)."""
        tick = int((time.perf_counter() - self.launched) // self.interval) + 1
        while not self.ticking.wait(max(0.0, self.launched + tick * self.interval - time.perf_counter())):
            stderr_line(self.line(time.perf_counter()))
            tick = max(tick + 1, int((time.perf_counter() - self.launched) // self.interval) + 1)

    def line(self, now: float) -> str:
        of = f"/{self.total}" if self.total else ""
        if self.first is None:
            return f"progress: 0{of} done, starting ({now - self.launched:.0f} s since launch)"
        rate = self.done / max(now - self.first, 1e-9)
        eta = f", ETA {(self.total - self.done) / rate:.0f} s" if self.total and rate > 0 else ""
        return f"progress: {self.done}{of} done, {rate:.1f} images/s{eta} ({now - self.launched:.0f} s since launch)"


LOG_INTERVAL = 10.0  # seconds between progress lines when stderr is not a terminal


def _progress(inputs: InputOptions, launched: float):
    """auto: a rich bar on a terminal (transient: gone when done), else a log line every
    LOG_INTERVAL seconds; bar, log or none as asked."""
    mode = inputs.progress
    if mode == "auto":
        mode = "bar" if sys.stderr.isatty() else "log"
    if inputs.quiet or mode == "none":
        return contextlib.nullcontext(None)
    if mode == "log":
        return _LogProgress(launched)
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


def _sources(inputs: InputOptions, skip: PathSet | None = None):
    sources = discover(inputs.inputs, recursive=inputs.recursive, include_hidden=inputs.include_hidden, null=inputs.null)
    return skip.without(sources, lambda source: source.path) if skip else sources


def _peek_batch_size(sources, batch_size: int):
    """A run over fewer inputs than a batch uses a batch that size: one photo, batch 1."""
    head = list(itertools.islice(sources, batch_size + 1))
    size = max(1, min(batch_size, len(head)))
    return size, itertools.chain(head, sources)


def _count_in_background(inputs: InputOptions, progress, task, skip: PathSet | None = None) -> None:
    """Folders make the total unknown up front; count them on the side for the ETA (without
    the inputs a resumed run skips)."""
    if "-" in inputs.inputs:
        return

    def count():
        total = sum(1 for _ in _sources(inputs, skip))
        progress.update(task, total=total)

    threading.Thread(target=count, daemon=True, name="count").start()


def classify(request: ModelRequest, inputs: InputOptions, output: OutputOptions) -> int:
    report = Report()
    if output.output:
        prepare_output(output.output)
    done = recorded_paths(output.output, output.format) if output.resume else None
    if done is not None:
        report.resumed = len(done)
    # A table on a terminal shows the error in its row; anywhere else stdout may be a file or
    # jq, so the terminal gets each error line on stderr.
    echo_errors = output.format != "table" or output.output is not None or not sys.stdout.isatty()
    with contextlib.ExitStack() as stack:
        stop = stack.enter_context(_graceful_stop())
        # Ray and its workers print (to fd 1) from threads and native code: keep stdout for records.
        records_stdout = stack.enter_context(records_only_stdout()) if inputs.engine == "ray" and output.output is None else None
        first, records = [], iter(())
        progress = stack.enter_context(_progress(inputs, report.launched))  # from launch: start-up shows
        task = progress.add_task("classify", total=None, rate=0.0) if progress else None
        if progress:
            _count_in_background(inputs, progress, task, skip=done)
        try:
            config = resolve(request, local=inputs.engine != "ray")
            records = _records(config, inputs, report, skip=done, echo_errors=echo_errors, top_k=output.top_k)
            stack.callback(records.close)
            first = [next(records)]  # opens the runtime: model errors surface before any output
        except StopIteration:
            pass
        except KeyboardInterrupt:  # before any record: the sink still writes a whole (empty) document
            report.interrupted = True
        sink = stack.enter_context(open_sink(output.format, output.output, appending=output.resume, stdout=records_stdout))
        stop.writing = True
        try:
            for record in itertools.chain(first, records) if not report.interrupted else ():
                sink.write(record)
                if progress:
                    elapsed = max(1e-9, time.perf_counter() - report.started)
                    progress.update(task, advance=1, rate=report.classified / elapsed)
                if stop.requested:
                    report.interrupted = True
                    break
        except KeyboardInterrupt:
            report.interrupted = True
        report.terminated = stop.terminated
    if not inputs.quiet or report.interrupted:
        stderr_line(report.summary())
    return report.exit_code


def summary(request: ModelRequest) -> int:
    """Print the model summary, as the original walkthrough did (no weights needed)."""
    from .backend import import_keras

    config = resolve(request, with_weights=False)
    stderr_line("starting Keras…")
    import_keras(config.device)
    from .model import from_config

    from_config(config).summary(print_fn=lambda line, **_: print(line))
    return 0


def _records(config: ModelConfig, inputs: InputOptions, report: Report, skip: PathSet | None = None, echo_errors=True, top_k=5, sources=None, wrap_predict=None):
    """Open the runtime and stream records for the inputs (or the given ``sources``), counted
    in ``report``. ``wrap_predict`` (local engine) changes what the runtime is asked per batch."""
    sources = _sources(inputs, skip) if sources is None else iter(sources)
    if inputs.engine == "ray":
        records = _ray_records(config, inputs, report, sources, top_k)
    else:
        records = _local_records(config, inputs, report, sources, top_k, wrap_predict)
    for record in records:
        report.add(record)
        if record.error is not None and echo_errors:
            stderr_line(f"error: {record.path}: {record.error}")
        yield record


def _local_records(config: ModelConfig, inputs: InputOptions, report: Report, sources, top_k: int, wrap_predict=None):
    from .pipeline import prediction_records, run, vector_records
    from .runtimes.factory import open_runtime

    batch_size, sources = _peek_batch_size(sources, inputs.batch_for(config.device))
    runtime = open_runtime(config, batch_size=batch_size, quiet=inputs.quiet)
    report.ran_on = f"{_device_name(config)} ({config.runtime} {config.precision})"
    report.started = time.perf_counter()
    to_records = prediction_records(top_k, config.labels) if config.include_top else vector_records
    predict = wrap_predict(runtime.predict) if wrap_predict else runtime.predict
    return run(sources, predict, to_records, config.decode, batch_size, inputs.decode_workers(), on_skip=report.skip)


def _device_name(config: ModelConfig) -> str:
    """"cpu", or the GPU's name where the keras runtime runs on one."""
    if config.device != "gpu":
        return "cpu"
    if config.runtime != "keras":
        return "gpu"
    from .backend import gpu_name, import_keras

    return f"gpu {gpu_name(import_keras())}"


def _ray_records(config: ModelConfig, inputs: InputOptions, report: Report, sources, top_k: int):
    from . import ray_engine

    ray_engine.import_ray()  # "how to install" before anything else
    report.ran_on = f"Ray ({config.runtime} {config.precision}, device {config.device})"
    records = ray_engine.records(config, inputs, sources, top_k, on_skip=report.skip)
    for record in records:  # start-up ends with the first result (Ray, actors, their model)
        report.started = time.perf_counter()
        yield record
        break
    yield from records


def evaluate(request: ModelRequest, inputs: InputOptions, labels: str | None = None, fmt: str = "table") -> int:
    """Top-1/top-5 accuracy of the classifier on labeled images."""
    import dataclasses
    import json

    from .evaluate import Accuracy, label_for, read_label_csv, read_label_rows

    try:
        rows = read_label_rows(labels) if labels else None  # an unreadable CSV fails before the weights are looked for
    except (OSError, ValueError) as error:
        raise UserError(f"--labels: {error}") from None
    inputs = dataclasses.replace(inputs, recursive=True)  # folder-per-class layouts are trees
    config = resolve(request, local=inputs.engine != "ray")
    classes = config.labels if config.head is not None else None  # None: ImageNet's
    try:
        csv_labels = read_label_csv(labels, classes, rows) if labels else None
    except ValueError as error:
        raise UserError(f"--labels: {error}") from None
    report, accuracy = Report(), Accuracy(labels=classes)
    for record in _records(config, inputs, report):
        if not record.ok:
            continue
        truth = label_for(record.path, csv_labels, classes)
        if truth is None:
            accuracy.unlabeled += 1
            continue
        accuracy.add(truth, [p.index for p in record.predictions])
    result = accuracy.as_dict()
    if fmt == "json":
        print(json.dumps(result, indent=2))
    else:
        print(f"images  {result['images']}")
        for key, name in (("top1", "top-1"), ("top5", "top-5")):
            print(f"{name}   {result[key]:.4f}" if result[key] is not None else f"{name}   n/a (no labeled images)")
        if accuracy.unlabeled:
            print(f"unlabeled (not counted)  {accuracy.unlabeled}")
        print("worst classes (top-1):")
        for row in result["worst_classes"]:
            wnid = f"{row['wnid']}, " if row["wnid"] else ""
            print(f"  {row['top1']:.2f}  {row['label']} ({wnid}{row['images']} image{'s' if row['images'] != 1 else ''})")
    if not inputs.quiet:
        stderr_line(report.summary())
    if accuracy.images == 0:
        where = "class-name folders" if classes else "wnid folders, or n01440764_… file names"
        stderr_line(f"error: no labeled images (labels come from --labels CSV, {where}).")
        return EXIT_SOME_FAILED
    return report.exit_code


def embed(request: ModelRequest, inputs: InputOptions, output: str, normalize: bool = False) -> int:
    """2048-d pooled features: .npz (features + paths) or .npy with a .txt of paths beside it."""
    import io

    import numpy as np

    from .cache import write_atomic
    from .spec import FEATURES

    prepare_output(output)
    if output.endswith(".npy"):
        prepare_output(str(Path(output).with_suffix(".txt")))
    config = resolve(request, include_top=False, pooling="avg", local=inputs.engine != "ray")
    report = Report()
    paths, vectors = [], []
    for record in _records(config, inputs, report):
        if record.ok:
            paths.append(record.path)
            vectors.append(np.asarray(record.vector, dtype=np.float32))
    features = np.stack(vectors) if vectors else np.zeros((0, FEATURES), np.float32)
    if normalize and len(features):
        features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    buffer = io.BytesIO()
    if output.endswith(".npz"):
        np.savez(buffer, features=features, paths=np.array(paths, dtype=str))
    else:
        np.save(buffer, features)
        write_atomic(Path(output).with_suffix(".txt"), "".join(p + "\n" for p in paths).encode())
    write_atomic(Path(output), buffer.getvalue())
    if not inputs.quiet:
        stderr_line(report.summary().replace("classified", "embedded", 1))
    return report.exit_code


def explain(request: ModelRequest, image: str, output: str, target_class: str | None = None, raw: str | None = None, quiet: bool = False) -> int:
    """Grad-CAM heat-map of one image, blended over the photo, as a PNG."""
    import dataclasses

    import numpy as np

    from .explain import class_activation_map, features_and_scores, load_photo, overlay
    from .images import ImageError, decode
    from .imagenet import class_index, find_class
    from .runtimes.keras_runtime import build_model

    try:
        target = find_class(target_class) if target_class else None
    except ValueError as error:
        raise UserError(f"--class: {error}") from None
    for path in (output, raw):
        if path:
            prepare_output(path)
    config = resolve(dataclasses.replace(request, runtime="keras"))
    try:
        pixels = decode(image, config.decode)
        photo = load_photo(image)
    except ImageError as error:
        stderr_line(f"error: {image}: {error}")
        return EXIT_SOME_FAILED
    if not quiet:
        stderr_line("starting Keras and loading the weights…")
    model = build_model(config)
    features, probabilities = features_and_scores(model, pixels)
    target = int(np.argmax(probabilities)) if target is None else target
    cam = class_activation_map(features, model.get_layer("fc1000").get_weights()[0], target)
    overlay(photo, cam).save(output)
    if raw:
        np.save(raw, cam)
    wnid, label = class_index()[target]
    if not quiet:
        stderr_line(f"{image}: heat-map for {label} ({wnid}, index {target}, score {probabilities[target]:.4f}) → {output}")
    return 0


def export(request: ModelRequest, output: str, quiet: bool = False) -> int:
    """Write the ONNX model (fp32 or int8) the onnx runtime uses: uint8 RGB in, probabilities out."""
    import dataclasses
    import shutil

    from .export import ensure_onnx_model

    prepare_output(output)
    config = resolve(dataclasses.replace(request, runtime="onnx"))
    shutil.copyfile(ensure_onnx_model(config, quiet), output)
    if not quiet:
        size = config.input_size
        stderr_line(f"wrote {output} ({config.precision}; input uint8 [N, {size}, {size}, 3] RGB, output probabilities [N, {len(config.labels)}]; class labels in its metadata)")
    return 0


def train(
    request: ModelRequest,
    inputs: InputOptions,
    output: str,
    labels: str | None = None,
    val_fraction: float = 0.2,
    augment: int = 0,
    seed: int = 0,
    fmt: str = "table",
) -> int:
    """Fit a head (the user's classes) on the pooled features of labeled photos; report its
    accuracy on a held-out split; write it to ``output`` (.npz)."""
    import json

    import numpy as np

    from . import train as training
    from .cache import write_atomic
    from .evaluate import read_label_rows
    from .head import head_bytes

    prepare_output(output)
    try:
        rows = read_label_rows(labels) if labels else None
    except (OSError, ValueError) as error:
        raise UserError(f"--labels: {error}") from None
    (directory,) = inputs.inputs
    sources, names, unlabeled = training.labeled_sources(directory, rows, inputs.include_hidden)
    training.check_counts(names)
    if unlabeled:
        where = "in --labels" if labels else "in a class sub-folder"
        stderr_line(f"warning: {unlabeled} image file(s) under {directory} not {where}: left out")
    config = resolve(request, include_top=False, pooling="avg", local=inputs.engine != "ray")
    class_of = dict(zip((s.path for s in sources), names))
    wrap = (lambda predict: training.augmenting(predict, augment, seed)) if augment else None
    report, paths, vectors = Report(), [], []
    for record in _records(config, inputs, report, sources=sources, wrap_predict=wrap):
        if record.ok:
            paths.append(record.path)
            vectors.append(np.asarray(record.vector, dtype=np.float32).reshape(1 + augment, -1))
    classes = training.check_counts([class_of[p] for p in paths], "images (bad files left out)")
    targets = np.array([classes.index(class_of[p]) for p in paths])
    features = np.stack(vectors)  # (images, 1 + augment, 2048)
    fit_rows, held = training.stratified_split(targets, val_fraction, seed)
    fit = training.fit_head(
        features[fit_rows].reshape(-1, features.shape[-1]), np.repeat(targets[fit_rows], 1 + augment), len(classes), seed
    )
    predicted = training.scores(features[held, 0], fit.kernel, fit.bias).argmax(axis=1)
    result = training.Validation.of(
        classes, targets[held], predicted,
        train_images=len(fit_rows), augmented=len(fit_rows) * augment, C=fit.C, cv_folds=fit.folds, output=output,
    ).as_dict()
    facts = {key: result[key] for key in ("train_images", "augmented", "C", "cv_folds", "val_images", "val_accuracy")}
    write_atomic(Path(output), head_bytes(fit.kernel, fit.bias, classes, config, {**facts, "seed": seed, "val_fraction": val_fraction}))
    print(json.dumps(result, indent=2) if fmt == "json" else training.format_table(result))
    if not inputs.quiet:
        stderr_line(report.summary().replace("classified", "embedded", 1))
    return report.exit_code


def cache(clear: bool = False, fmt: str = "table") -> int:
    """What the model cache holds (size, weights md5, options, last use), or clear it."""
    import json

    from .cache import cache_dir
    from .export import cached_models, clear_cache

    if clear:
        files, size = clear_cache()
        stderr_line(f"removed {files} file(s), {size / 2**20:.0f} MiB, from {cache_dir() / 'onnx'}")
        return 0
    models = cached_models()
    rows = [
        {
            "file": str(m.path),
            "size_mib": round(m.size / 2**20, 1),
            "weights_md5": m.options.get("weights_md5"),
            "precision": m.options.get("precision"),
            "head": m.options.get("head"),
            "options": {k: v for k, v in m.options.items() if k not in ("weights_md5", "precision", "head")},
            "last_used": time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_used)),
        }
        for m in models
    ]
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        what = f"{row['precision'] or '?'}" + (f", head {row['head'][:12]}" if row["head"] else "")
        options = row["options"]
        detail = ", ".join(f"{k}={options[k]}" for k in ("pool1_padding", "bn_epsilon", "include_top", "pooling") if k in options) or "options unknown (an older version's file)"
        print(f"{row['last_used']}  {row['size_mib']:7.1f} MiB  {what:<8}  weights {row['weights_md5'] or '?'}  {detail}  {row['file']}")
    total = sum(m.size for m in models)
    stderr_line(f"{len(models)} cached model(s), {total / 2**20:.0f} MiB in {cache_dir() / 'onnx'} ('resnet-classify cache clear' removes them)")
    return 0
