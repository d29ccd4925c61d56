"""Labels for images (CSV, wnid folders, wnid file-name prefixes) → top-1/top-5 accuracy."""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .imagenet import NUM_CLASSES, class_index

_WNID = re.compile(r"n\d{8}")


def _wnid_to_index() -> dict[str, int]:
    return {wnid: i for i, (wnid, _) in enumerate(class_index())}


def _class_of(value: str) -> int:
    value = value.strip()
    if value.isdigit() and int(value) < NUM_CLASSES:
        return int(value)
    index = _wnid_to_index().get(value)
    if index is None:
        raise ValueError(f"not a class index or ImageNet wnid. Received: {value!r}")
    return index


def read_label_csv(path: str) -> dict[str, int]:
    """``file,class_index`` or ``file,wnid`` (header optional; a ``class_index`` or ``wnid``
    column is used when named) → {file name or relative path: class index}."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return {}
    header = [h.strip().lower() for h in rows[0]]
    if "class_index" in header or "wnid" in header:
        column = header.index("class_index") if "class_index" in header else header.index("wnid")
        rows = rows[1:]
    else:
        column = 1
    labels = {}
    for line, row in enumerate(rows, start=2):
        if len(row) <= column or not row[0].strip():
            continue
        try:
            labels[row[0].strip()] = _class_of(row[column])
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: {error}") from None
    return labels


def label_for(path: str, csv_labels: dict[str, int] | None = None) -> int | None:
    """The true class of an image: from the CSV (by relative path or file name), else its
    folder's wnid (ImageNet train layout), else a wnid prefix of its file name."""
    p = Path(path)
    if csv_labels:
        for key in (path, p.name):
            if key in csv_labels:
                return csv_labels[key]
        return None
    lookup = _wnid_to_index()
    if p.parent.name in lookup:
        return lookup[p.parent.name]
    match = _WNID.match(p.name)
    return lookup.get(match.group(0)) if match else None


@dataclass
class Accuracy:
    """Running top-1/top-5 counts, overall and per class."""

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
        classes = class_index()
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
