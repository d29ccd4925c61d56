"""Labels for images (CSV, wnid folders, wnid file-name prefixes) → top-1/top-5 accuracy."""

from __future__ import annotations

import csv
import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .imagenet import NUM_CLASSES, class_index

_WNID = re.compile(r"n\d{8}")


def _wnid_to_index() -> dict[str, int]:
    return {wnid: i for i, (wnid, _) in enumerate(class_index())}


@functools.lru_cache(maxsize=4)
def _lookup(labels) -> dict[str, int]:
    """Names a label may be given by → class index: ImageNet wnids, or a head's class names."""
    if labels is None:
        return _wnid_to_index()
    return {label: i for i, (_, label) in enumerate(labels)}


def _class_of(value: str, labels=None) -> int:
    value = value.strip()
    count = NUM_CLASSES if labels is None else len(labels)
    if value.isdigit() and int(value) < count:
        return int(value)
    index = _lookup(labels).get(value)
    if index is None:
        kind = "ImageNet wnid" if labels is None else "class of the head"
        raise ValueError(f"not a class index or {kind}. Received: {value!r}")
    return index


def read_label_rows(path: str) -> list[tuple[int, str, str]]:
    """``file,label`` rows (header optional; a ``class_index``, ``wnid``, ``label`` or
    ``class`` column is used when named) → (line, file name or relative path, label as written)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(enumerate(csv.reader(handle), start=1))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0][1]]
    named = [name for name in ("class_index", "wnid", "label", "class") if name in header]
    column = 1
    if named:
        column = header.index(named[0])
        rows = rows[1:]
    return [(line, row[0].strip(), row[column].strip()) for line, row in rows if len(row) > column and row[0].strip()]


def read_label_csv(path: str, labels=None, rows=None) -> dict[str, int]:
    """A label CSV (see ``read_label_rows``; ``rows`` when already read) → {file: class
    index}; ``labels``: a head's (wnid, label) pairs, or None for ImageNet (index or wnid)."""
    mapped = {}
    for line, name, value in read_label_rows(path) if rows is None else rows:
        try:
            mapped[name] = _class_of(value, labels)
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: {error}") from None
    return mapped


def label_for(path: str, csv_labels: dict[str, int] | None = None, labels=None) -> int | None:
    """The true class of an image: from the CSV (by relative path or file name); else, for a
    head, the nearest folder named like one of its classes; for ImageNet, its folder's wnid
    (ImageNet train layout), else a wnid prefix of its file name."""
    p = Path(path)
    if csv_labels:
        for key in (path, p.name):
            if key in csv_labels:
                return csv_labels[key]
        return None
    lookup = _lookup(labels)
    if labels is not None:
        return next((lookup[folder.name] for folder in p.parents if folder.name in lookup), None)
    if p.parent.name in lookup:
        return lookup[p.parent.name]
    match = _WNID.match(p.name)
    return lookup.get(match.group(0)) if match else None


@dataclass
class Accuracy:
    """Running top-1/top-5 counts, overall and per class."""

    labels: tuple | None = None  # (wnid, label) per class; None: ImageNet's
    images: int = 0
    top1: int = 0
    top5: int = 0
    unlabeled: int = 0
    per_class: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0]))  # index → [seen, top1]

    def add(self, true_index: int, ranked: list[int]) -> None:
        self.images += 1
        hit1 = bool(ranked) and ranked[0] == true_index
        self.top1 += hit1
        self.top5 += true_index in ranked[:5]
        self.per_class[true_index][0] += 1
        self.per_class[true_index][1] += hit1

    def worst(self, count: int = 5) -> list[dict]:
        classes = class_index() if self.labels is None else self.labels
        ranked = sorted(self.per_class.items(), key=lambda kv: (kv[1][1] / kv[1][0], -kv[1][0], kv[0]))
        return [
            {"index": i, "wnid": classes[i][0], "label": classes[i][1], "images": seen, "top1": hits / seen}
            for i, (seen, hits) in ranked[:count]
        ]

    def as_dict(self) -> dict:
        """Accuracies are null when no image had a label: 0.0 would read as a real result."""
        n = self.images
        return {
            "images": self.images,
            "top1": self.top1 / n if n else None,
            "top5": self.top5 / n if n else None,
            "unlabeled": self.unlabeled,
            "worst_classes": self.worst(),
        }
