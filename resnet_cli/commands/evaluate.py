"""evaluate: top-1 / top-5 accuracy of the classifier on labeled photos."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .. import engines
from ..config import resolve
from ..console import stderr_line
from ..errors import ExitStatus, UserError, user_file
from ..outputs.destination import prepare_output
from ..outputs.html_report import AccuracyPage, share
from ..outputs.report import Report
from ..plan import make_plan
from ..request import EngineOptions, InputOptions, ModelRequest
from ..training.labels import csv_key, label_for, read_label_csv, read_label_rows, unmatched_entries
from ..training.metrics import Accuracy
from .stream import counted, skipper, sources


def evaluate(
    request: ModelRequest,
    inputs: InputOptions,
    asked: EngineOptions,
    labels: str | None = None,
    fmt: str = "table",
    report: str | None = None,
) -> ExitStatus:
    if report:
        prepare_output(report)
    try:
        rows = read_label_rows(labels) if labels else None  # an unreadable CSV fails before the weights are looked for
    except (OSError, ValueError) as error:
        raise UserError(f"--labels: {error}") from None
    inputs = dataclasses.replace(inputs, recursive=True)  # folder-per-class layouts are trees
    config = resolve(request, local=asked.engine != "ray")
    classes = config.labels if config.head is not None else None  # None: ImageNet's
    try:
        csv_labels = read_label_csv(labels, classes, rows) if labels else None
    except ValueError as error:
        raise UserError(f"--labels: {error}") from None
    _check_some_labeled(inputs, csv_labels, classes)
    run, accuracy, used = Report(), Accuracy(labels=classes), set()
    page = AccuracyPage(report, config.labels, "resnet-classify evaluate") if report else None
    with engines.open(make_plan(config, inputs, asked, thumbnails=page is not None)) as engine:
        for record in counted(engine, engine.records(sources(inputs), skipper(inputs, run)), run):
            if csv_labels:
                used.add(csv_key(record.path, csv_labels))
            if not record.ok:
                continue
            truth = label_for(record.path, csv_labels, classes)
            if truth is None:
                accuracy.unlabeled += 1
                continue
            accuracy.add(truth, [p.index for p in record.predictions])
            if page:
                page.add(record, truth)
    if csv_labels and (missing := unmatched_entries(rows, labels, used)):
        shown = ", ".join(missing[:3]) + (", …" if len(missing) > 3 else "")
        stderr_line(f"warning: {len(missing)} file(s) in {labels} name none of the inputs (not counted): {shown}")
    result = accuracy.as_dict()
    if page:
        facts = [("images", result["images"]), ("top-1", share(result["top1"])), ("top-5", share(result["top5"]))]
        with user_file(report):
            page.write(
                [*facts, ("unlabeled (not counted)", accuracy.unlabeled), ("run", run.summary())],
                accuracy.per_class_rows(),
            )
    print(json.dumps(result, indent=2) if fmt == "json" else _table(result, accuracy.unlabeled))
    if not inputs.quiet:
        stderr_line(run.summary())
    if accuracy.images == 0:
        where = "class-name folders" if classes else "wnid folders, or n01440764_… file names"
        stderr_line(f"error: no labeled images (labels come from --labels CSV, {where}).")
        return ExitStatus.SOME_FAILED
    return run.exit_status


def _check_some_labeled(inputs: InputOptions, csv_labels, classes) -> None:
    """Before the model runs: at least one input has a label, else one line naming what the
    folders are called and what the labels would have to be (paths on stdin are not read twice)."""
    if "-" in inputs.inputs:
        return
    folders, seen = [], 0
    for source in sources(inputs):
        seen += 1
        if label_for(source.path, csv_labels, classes) is not None:
            return
        folder = Path(source.path).parent.name
        if folder not in folders:
            folders.append(folder)
    if not seen:
        return
    named = ", ".join(folders[:5]) + (f" and {len(folders) - 5} more" if len(folders) > 5 else "")
    if csv_labels:
        wanted = "file names listed in --labels"
    elif classes:
        wanted = f"folders named like the head's classes ({', '.join(name for _, name in classes[:5])}…)"
    else:
        wanted = "ImageNet wnid folders (n01440764/…) or n01440764_… file names"
    raise UserError(f"none of the {seen} inputs has a label: their folders are {named}; labels come from {wanted}.")


def _table(result: dict, unlabeled: int) -> str:
    lines = [f"images  {result['images']}"]
    for key, name in (("top1", "top-1"), ("top5", "top-5")):
        lines.append(f"{name}   {result[key]:.4f}" if result[key] is not None else f"{name}   n/a (no labeled images)")
    if unlabeled:
        lines.append(f"unlabeled (not counted)  {unlabeled}")
    lines.append("worst classes (top-1):")
    for row in result["worst_classes"]:
        wnid = f"{row['wnid']}, " if row["wnid"] else ""
        images = f"{row['images']} image{'s' if row['images'] != 1 else ''}"
        lines.append(f"  {row['top1']:.2f}  {row['label']} ({wnid}{images})")
    return "\n".join(lines)
