"""How right the classifier is on labeled photos: top-1/top-5 accuracy (evaluate), and a
head's held-out accuracy and confusion table (train)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..model.imagenet import class_index


@dataclass
class Accuracy:
    """Running top-1/top-5 counts, overall and per class."""

    labels: tuple | None = None  # (wnid, label) per class; None: ImageNet's
    images: int = 0
    top1: int = 0
    top5: int = 0
    unlabeled: int = 0
    per_class: dict = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))  # index → [seen, top1, top5]

    def add(self, true_index: int, ranked: list[int]) -> None:
        self.images += 1
        hit1 = bool(ranked) and ranked[0] == true_index
        self.top1 += hit1
        self.top5 += true_index in ranked[:5]
        self.per_class[true_index][0] += 1
        self.per_class[true_index][1] += hit1
        self.per_class[true_index][2] += true_index in ranked[:5]

    def worst(self, count: int = 5) -> list[dict]:
        classes = class_index() if self.labels is None else self.labels
        ranked = sorted(self.per_class.items(), key=lambda kv: (kv[1][1] / kv[1][0], -kv[1][0], kv[0]))
        return [
            {"index": i, "wnid": classes[i][0], "label": classes[i][1], "images": seen, "top1": hits / seen}
            for i, (seen, hits, _) in ranked[:count]
        ]

    def per_class_rows(self) -> list[dict]:
        """Every class with images, worst top-1 first: {class, images, top1, top5}."""
        classes = class_index() if self.labels is None else self.labels
        ranked = sorted(self.per_class.items(), key=lambda kv: (kv[1][1] / kv[1][0], -kv[1][0], kv[0]))
        return [
            {"class": classes[i][1], "images": seen, "top1": hits / seen, "top5": fives / seen}
            for i, (seen, hits, fives) in ranked
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


@dataclass
class Validation:
    """Held-out accuracy, per class and overall, and the confusion table (rows: true class)."""

    classes: list[str]
    confusion: np.ndarray = None  # (classes, classes) counts
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, classes: list[str], truth: np.ndarray, predicted: np.ndarray, **extra) -> Validation:
        confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(confusion, (truth, predicted), 1)
        return cls(classes, confusion, extra)

    def as_dict(self) -> dict:
        total = int(self.confusion.sum())
        per_class = []
        for i, name in enumerate(self.classes):
            seen = int(self.confusion[i].sum())
            per_class.append(
                {"class": name, "images": seen, "accuracy": float(self.confusion[i, i] / seen) if seen else None}
            )
        return {
            **self.extra,
            "classes": list(self.classes),
            "val_images": total,
            "val_accuracy": float(np.trace(self.confusion) / total) if total else None,
            "per_class": per_class,
            "confusion": self.confusion.tolist(),
        }


def format_table(result: dict) -> str:
    """The training report for people."""
    lines = [
        f"classes       {len(result['classes'])}",
        f"train images  {result['train_images']}"
        + (f" (+{result['augmented']} augmented)" if result.get("augmented") else ""),
        f"C (L2)        {result['C']:g}"
        + (
            f", chosen by {result['cv_folds']}-fold cross-validation"
            if result["cv_folds"]
            else " (too few images per class to cross-validate)"
        ),
        f"head          {result['output']}",
    ]
    if not result["val_images"]:
        lines.append("validation    none (--val-fraction 0)")
        return "\n".join(lines)
    lines.append(f"validation    {result['val_images']} images, accuracy {result['val_accuracy']:.4f}")
    width = max(len(name) for name in result["classes"] + ["class"])
    lines.append("")
    lines.append(f"{'class':<{width}}  images  accuracy")
    for row in result["per_class"]:
        accuracy = f"{row['accuracy']:.4f}" if row["accuracy"] is not None else "n/a"
        lines.append(f"{row['class']:<{width}}  {row['images']:>6}  {accuracy:>8}")
    lines.append("")
    lines.append("confusion (rows: true class, columns: predicted)")
    cell = max(5, *(len(str(v)) for row in result["confusion"] for v in row))
    short = [name[:cell] for name in result["classes"]]
    lines.append(" " * width + "  " + " ".join(f"{s:>{cell}}" for s in short))
    for name, row in zip(result["classes"], result["confusion"]):
        lines.append(f"{name:<{width}}  " + " ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)
