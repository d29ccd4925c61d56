"""Labels for photos: a CSV (file,label), ImageNet's wnid folders or file-name prefixes, or a
head's class-name folders; and the labeled photos of a training folder."""

from __future__ import annotations

import csv
import functools
import os
import re
from pathlib import Path

from ..errors import UserError
from ..inputs.decode import IMAGE_EXTENSIONS
from ..inputs.discover import Source, discover
from ..model.imagenet import NUM_CLASSES, class_index

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
            mapped[name] = mapped[absolute_entry(name, path)] = _class_of(value, labels)
        except ValueError as error:
            raise ValueError(f"{path}, line {line}: {error}") from None
    return mapped


def absolute_entry(name: str, csv_path: str) -> str:
    """A CSV entry as an absolute path: as written when absolute, else from the CSV's own folder."""
    return os.path.normpath(
        name if os.path.isabs(name) else os.path.join(os.path.dirname(os.path.abspath(csv_path)), name)
    )


def csv_key(path: str, csv_labels: dict[str, int]) -> str | None:
    """The CSV entry that names the input ``path``: as given, as the absolute path it is (an
    entry absolute or relative to the CSV's folder), or by its file name."""
    for key in (path, os.path.normpath(os.path.abspath(path)), Path(path).name):
        if key in csv_labels:
            return key
    return None


def unmatched_entries(rows, csv_path: str, used: set[str]) -> list[str]:
    """The CSV's entries that named none of the inputs (a file missing, a path mistyped)."""
    return [name for _, name, _ in rows if name not in used and absolute_entry(name, csv_path) not in used]


def label_for(path: str, csv_labels: dict[str, int] | None = None, labels=None) -> int | None:
    """The true class of an image: from the CSV (``csv_key``); else, for a head, the nearest
    folder named like one of its classes; for ImageNet, its folder's wnid (ImageNet train
    layout), else a wnid prefix of its file name."""
    p = Path(path)
    if csv_labels:
        key = csv_key(path, csv_labels)
        return None if key is None else csv_labels[key]
    lookup = _lookup(labels)
    if labels is not None:
        return next((lookup[folder.name] for folder in p.parents if folder.name in lookup), None)
    if p.parent.name in lookup:
        return lookup[p.parent.name]
    match = _WNID.match(p.name)
    return lookup.get(match.group(0)) if match else None


def labeled_sources(directory: str, csv_rows=None, include_hidden: bool = False) -> tuple[list[Source], list[str], int]:
    """(sources, class name per source, unlabeled count) for the images under ``directory``:
    the class is the first sub-folder's name, or the CSV's label (by relative path or name)."""
    root = Path(directory)
    if not root.is_dir():
        raise UserError(f"{directory}: not a folder (train takes a folder with one sub-folder per class).")
    by_file = {name: label for _, name, label in csv_rows} if csv_rows is not None else None
    sources, names, unlabeled = [], [], 0
    for source in discover([directory], recursive=True, include_hidden=include_hidden):
        if Path(source.path).suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        relative = Path(source.path).relative_to(root)
        if by_file is not None:
            label = by_file.get(relative.as_posix(), by_file.get(relative.name))
        else:
            label = relative.parts[0] if len(relative.parts) > 1 else None
        if label is None:
            unlabeled += 1
            continue
        sources.append(source)
        names.append(label)
    return sources, names, unlabeled


def check_counts(names: list[str], what: str = "images") -> list[str]:
    """The classes in order (sorted names); a clear error for fewer than 2 classes or a class
    with fewer than 2 images."""
    classes = sorted(set(names))
    if len(classes) < 2:
        found = f"only {classes[0]!r}" if classes else "none"
        raise UserError(f"train needs at least 2 classes (one sub-folder each, or --labels); found {found}.")
    counts = {c: names.count(c) for c in classes}
    few = [c for c in classes if counts[c] < 2]
    if few:
        shown = ", ".join(f"{c!r} ({counts[c]})" for c in few)
        raise UserError(f"every class needs at least 2 usable {what}; too few in {shown}.")
    return classes
