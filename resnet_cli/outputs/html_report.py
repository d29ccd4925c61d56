"""The HTML page of evaluate --report and train --report: accuracy, per-class top-1 (and top-5),
the confusions as a heat-map, the class counts, and the misclassified photos beside their true
and predicted classes. Self-contained and escaped as the classify report is (outputs.html);
memory stays bounded: at most MISSES_SHOWN tiles are kept, train's thumbnails wait on disk."""

from __future__ import annotations

import math
import os
import secrets
import tempfile
from collections import Counter
from pathlib import Path

from ..records import Record
from ..storage import write_atomic
from .html import facts_section, page_end, page_start, text, tile

MISSES_SHOWN = 500  # misclassified photos in the page; the rest are counted
HEAT_CLASSES = 30  # classes at most in the heat-map: those of the most frequent confusions
HEAT_STYLE = (
    "table{border-collapse:collapse;margin:8px 16px;background:#fff}td,th{border:1px solid #ddd;padding:2px 6px;"
    "font-size:12px;text-align:right}th,td:first-child{text-align:left;font-weight:500}section{padding:0 16px}"
    + "".join(f".h{i}{{background:rgb(255,{255 - 22 * i},{255 - 22 * i})}}" for i in range(10))
)


class AccuracyPage:
    """Collects what the page needs as records stream: the misclassified photos (to a temporary
    file), the confusion counts; ``write`` makes the page."""

    def __init__(self, path: str, labels, title: str):
        self.path, self.labels, self.title = path, labels, title
        self.misses: list[str] = []  # the tiles of the first MISSES_SHOWN (a few MB at most)
        self.missed = 0
        self.confusions: Counter = Counter()

    def add(self, record: Record, truth: int) -> None:
        """A labeled photo and its predictions; a miss (top-1 not the truth) is kept for the page."""
        predicted = record.predictions[0].index if record.predictions else -1
        if predicted == truth:
            return
        self.confusions[truth, predicted] += 1
        self.missed += 1
        if self.missed <= MISSES_SHOWN:
            self.misses.append(tile(record, note=f"true: {self._name(truth)}"))

    def _name(self, index: int) -> str:
        wnid, label = self.labels[index] if 0 <= index < len(self.labels) else (None, "?")
        return f"{label} ({wnid})" if wnid else label

    def write(self, facts: list[tuple[str, object]], per_class: list[dict], counts: dict | None = None) -> None:
        """The page, whole or not at all: ``facts`` (name, value) at the top, ``per_class`` rows
        ({class, images, top1[, top5]}) worst first, ``counts`` (class → train/val images)."""
        nonce = secrets.token_urlsafe(16)
        more = self.missed - MISSES_SHOWN
        parts = [
            page_start(self.title, nonce, HEAT_STYLE) + "</header>\n",
            facts_section(facts),
            self._heat_map(),
            f"<section id=misses><h2>Misclassified ({self.missed})</h2></section>\n<main id=grid>\n",
            *self.misses,
            "</main>\n",
            f"<p class=more>{more} more not shown (at most {MISSES_SHOWN}).</p>\n" if more > 0 else "",
            self._per_class(per_class, counts),
            page_end(nonce),
        ]
        write_atomic(Path(self.path), "".join(parts).encode("utf-8"))

    def _per_class(self, rows: list[dict], counts: dict | None) -> str:
        with_top5 = any("top5" in row for row in rows)
        head = "<tr><th>class</th><th>images</th><th>top-1</th>" + ("<th>top-5</th>" if with_top5 else "")
        head += "<th>train</th><th>held out</th>" if counts else ""
        body = []
        for row in rows:
            cells = [text(row["class"]), row["images"], share(row.get("top1"), 3)]
            cells += [share(row.get("top5"), 3)] if with_top5 else []
            cells += list(counts.get(row["class"], (0, 0))) if counts else []
            body.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        return f"<section id=classes><h2>Per class</h2><table>{head}</tr>{''.join(body)}</table></section>\n"

    def _heat_map(self) -> str:
        """Rows the true class, columns the predicted one, for the classes of the most frequent
        confusions (1,000 classes do not fit a page); darker is more."""
        if not self.confusions:
            return "<section id=confusions><h2>Confusions</h2><p>none</p></section>\n"
        classes: list[int] = []
        for (truth, predicted), _ in self.confusions.most_common():
            for index in (truth, predicted):
                if index not in classes and len(classes) < HEAT_CLASSES:
                    classes.append(index)
        top = max(self.confusions.values())
        head = "<tr><th>true ↓ predicted →</th>" + "".join(f"<th>{text(self._name(c))}</th>" for c in classes)
        body = []
        for truth in classes:
            cells = []
            for predicted in classes:
                count = self.confusions.get((truth, predicted), 0)
                shade = math.ceil(9 * count / top) if count else 0
                cells.append(f"<td class=h{shade}>{count or ''}</td>")
            body.append(f"<tr><th>{text(self._name(truth))}</th>{''.join(cells)}</tr>")
        return (
            f"<section id=confusions><h2>Confusions (the {len(classes)} classes of the most frequent)</h2>"
            f"<table>{head}</tr>{''.join(body)}</table></section>\n"
        )


class ThumbnailStore:
    """Thumbnails by their order of arrival, kept in a temporary file (train keeps one per photo
    until the split's misses are known)."""

    def __init__(self):
        self.file = tempfile.TemporaryFile()
        self.spans: list[tuple[int, int]] = []

    def add(self, thumbnail: bytes | None) -> None:
        data = thumbnail or b""
        self.spans.append((self.file.tell(), len(data)))
        self.file.write(data)

    def get(self, index: int) -> bytes | None:
        start, length = self.spans[index]
        self.file.seek(start)
        data = self.file.read(length)
        self.file.seek(0, os.SEEK_END)
        return data or None

    def close(self) -> None:
        self.file.close()


def share(value, places: int = 4) -> str:
    """An accuracy for the page: n/a where there was nothing to count (0 would read as a result)."""
    return "n/a" if value is None else f"{value:.{places}f}"


def write_validation_page(report, result, classes, held_paths, targets, fit_rows, held, held_scores, pictures) -> None:
    """train --report: the held-out split's page, with the class counts of both splits."""
    from ..model.imagenet import decode_top_k

    labels = tuple((None, name) for name in classes)
    page = AccuracyPage(report, labels, "resnet-classify train")
    for path, index, truth, scores in zip(held_paths, held, targets[held], held_scores):
        predictions = decode_top_k(scores[None], min(5, len(classes)), labels)[0]
        page.add(Record(path, predictions=predictions, thumbnail=pictures.get(int(index))), int(truth))
    pictures.close()
    counts = {
        name: (int((targets[fit_rows] == c).sum()), int((targets[held] == c).sum())) for c, name in enumerate(classes)
    }
    rows = sorted(
        ({"class": row["class"], "images": row["images"], "top1": row["accuracy"]} for row in result["per_class"]),
        key=lambda row: (row["top1"] if row["top1"] is not None else 2.0, row["class"]),
    )
    facts = [(name, result[key]) for key, name in (("val_images", "held-out images"), ("train_images", "train images"))]
    facts.append(("held-out accuracy", share(result["val_accuracy"])))
    page.write([*facts, ("C (L2)", result["C"]), ("head", result["output"])], rows, counts)
