"""evaluate: top-1 / top-5 accuracy of the classifier on labeled photos."""

from __future__ import annotations

import dataclasses
import json

from ..config import resolve
from ..console import stderr_line
from ..errors import ExitStatus, UserError
from ..outputs.report import Report
from ..request import InputOptions, ModelRequest
from ..training.labels import label_for, read_label_csv, read_label_rows
from ..training.metrics import Accuracy
from .stream import records


def evaluate(request: ModelRequest, inputs: InputOptions, labels: str | None = None, fmt: str = "table") -> ExitStatus:
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
    for record in records(config, inputs, report):
        if not record.ok:
            continue
        truth = label_for(record.path, csv_labels, classes)
        if truth is None:
            accuracy.unlabeled += 1
            continue
        accuracy.add(truth, [p.index for p in record.predictions])
    result = accuracy.as_dict()
    print(json.dumps(result, indent=2) if fmt == "json" else _table(result, accuracy.unlabeled))
    if not inputs.quiet:
        stderr_line(report.summary())
    if accuracy.images == 0:
        where = "class-name folders" if classes else "wnid folders, or n01440764_… file names"
        stderr_line(f"error: no labeled images (labels come from --labels CSV, {where}).")
        return ExitStatus.SOME_FAILED
    return report.exit_status


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
