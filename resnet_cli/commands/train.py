"""train: fit a head (the user's classes) on the pooled features of labeled photos, report its
accuracy on a held-out split, write it (.npz)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import engines
from ..config import resolve
from ..console import stderr_line
from ..errors import ExitStatus, UserError, user_file
from ..model.head import head_bytes
from ..outputs.destination import prepare_output
from ..outputs.html_report import ThumbnailStore, write_validation_page
from ..outputs.report import Report
from ..plan import make_plan
from ..request import EngineOptions, InputOptions, ModelRequest
from ..storage import write_atomic
from ..training import fit as fitting
from ..training.labels import check_counts, labeled_sources, read_label_rows
from ..training.metrics import Validation, format_table
from .stream import counted, skipper

FACTS = ("train_images", "augmented", "C", "cv_folds", "val_images", "val_accuracy")


MEANINGFUL_PER_CLASS = 5  # held-out photos per class below which the accuracy says little


def _warn_if_too_few(held_targets: np.ndarray, classes: int) -> None:
    """A held-out split of one or two photos per class gives accuracies like 0.5 or 1.0 by chance."""
    if not len(held_targets):
        return
    fewest = int(np.bincount(held_targets, minlength=classes).min())
    if fewest < MEANINGFUL_PER_CLASS:
        stderr_line(
            f"warning: the validation split holds {len(held_targets)} photos, {fewest} in the smallest class: "
            f"its accuracy means little below {MEANINGFUL_PER_CLASS} per class (add photos, or raise --val-fraction)"
        )


def train(
    request: ModelRequest,
    inputs: InputOptions,
    asked: EngineOptions,
    output: str,
    labels: str | None = None,
    val_fraction: float = 0.2,
    augment: int = 0,
    seed: int = 0,
    fmt: str = "table",
    report: str | None = None,
) -> ExitStatus:
    prepare_output(output)
    if report:
        prepare_output(report)
    try:
        rows = read_label_rows(labels) if labels else None
    except (OSError, ValueError) as error:
        raise UserError(f"--labels: {error}") from None
    (directory,) = inputs.inputs
    sources, names, unlabeled = labeled_sources(directory, rows, inputs.include_hidden)
    check_counts(names)
    if unlabeled:
        where = "in --labels" if labels else "in a class sub-folder"
        stderr_line(f"warning: {unlabeled} image file(s) under {directory} not {where}: left out")
    config = resolve(request, include_top=False, pooling="avg", local=asked.engine != "ray")
    class_of = dict(zip((s.path for s in sources), names))
    wrap = (lambda predict: fitting.augmenting(predict, augment, seed)) if augment else None
    run, paths, vectors = Report(verb="embedded"), [], []
    pictures = ThumbnailStore() if report else None
    plan = make_plan(config, inputs, asked, thumbnails=report is not None, per_batch=wrap)
    with engines.open(plan) as engine:
        for record in counted(engine, engine.records(sources, skipper(inputs, run)), run):
            if record.ok:
                paths.append(record.path)
                vectors.append(np.asarray(record.vector, dtype=np.float32).reshape(1 + augment, -1))
                if pictures is not None:
                    pictures.add(record.thumbnail)
    classes = check_counts([class_of[p] for p in paths], "images (bad files left out)")
    targets = np.array([classes.index(class_of[p]) for p in paths])
    features = np.stack(vectors)  # (images, 1 + augment, 2048)
    fit_rows, held = fitting.stratified_split(targets, val_fraction, seed)
    train_features = features[fit_rows].reshape(-1, features.shape[-1])
    fit = fitting.fit_head(train_features, np.repeat(targets[fit_rows], 1 + augment), len(classes), seed)
    held_scores = fitting.scores(features[held, 0], fit.kernel, fit.bias)
    predicted = held_scores.argmax(axis=1)
    _warn_if_too_few(targets[held], len(classes))
    result = Validation.of(
        classes,
        targets[held],
        predicted,
        train_images=len(fit_rows),
        augmented=len(fit_rows) * augment,
        C=fit.C,
        cv_folds=fit.folds,
        output=output,
    ).as_dict()
    training = {**{key: result[key] for key in FACTS}, "seed": seed, "val_fraction": val_fraction}
    with user_file(output):
        write_atomic(Path(output), head_bytes(fit.kernel, fit.bias, classes, config, training))
    if report:
        with user_file(report):
            write_validation_page(
                report, result, classes, [paths[i] for i in held], targets, fit_rows, held, held_scores, pictures
            )
    print(json.dumps(result, indent=2) if fmt == "json" else format_table(result))
    if not inputs.quiet:
        stderr_line(run.summary())
    return run.exit_status
