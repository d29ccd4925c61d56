"""Labeled photos → a head: a softmax (multinomial logistic) regression on the pooled features.

Why scikit-learn's LogisticRegression: it is the linear-probe protocol pretrained features are
judged by (CLIP's paper, timm's and torchvision's probes), the L-BFGS fit of a convex loss
on a few thousand 2048-d vectors takes seconds and always lands on the same optimum (no
epochs, learning rate or early stopping to tune, unlike a Keras Dense fit), and
LogisticRegressionCV picks the L2 strength by cross-validation in one call. The fit runs on
standardised features; the scaling is folded back into the kernel and bias, so the head is
exactly ``softmax(features @ kernel + bias)`` on raw features: one Dense layer in place of
fc1000.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UserError
from .images import IMAGE_EXTENSIONS, Source, discover

# L2 strengths tried (sklearn's C, on standardised features) and folds: 5 × 3 fits keep the
# search at a few seconds for 1,000 photos (7 × 5 took 5 s and chose the same C).
C_GRID = tuple(float(c) for c in np.logspace(-3, 1, 5))
MAX_FOLDS = 3
MIN_PER_CLASS_FOR_CV = 3  # fewer training images in some class: no cross-validation, C = 1
MAX_ITER = 2000


# ---------------------------------------------------------------------------- labeled inputs


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


def stratified_split(targets: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train indices, validation indices): ``fraction`` of each class held out (at least one
    where the fraction is above 0, never the class's last training image), seeded."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(targets):
        members = rng.permutation(np.flatnonzero(targets == c))
        count = 0 if fraction <= 0 else min(len(members) - 1, max(1, round(fraction * len(members))))
        held.extend(members[:count])
        train.extend(members[count:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(held, dtype=np.int64))


# ---------------------------------------------------------------------------- augmentation


def augmented(images: np.ndarray, copies: int, rng: np.random.Generator) -> np.ndarray:
    """(N, S, S, 3) → (N, 1 + copies, S, S, 3): each image, then ``copies`` random variants
    (horizontal flip half the time, a random crop of 60-100 % of the area at aspect 3:4-4:3,
    resized back), as torchvision's RandomResizedCrop + RandomHorizontalFlip."""
    from PIL import Image

    size = images.shape[1]
    out = np.empty((len(images), 1 + copies, *images.shape[1:]), dtype=images.dtype)
    for n, image in enumerate(images):
        out[n, 0] = image
        photo = Image.fromarray(image)
        for k in range(1, copies + 1):
            area = size * size * rng.uniform(0.6, 1.0)
            aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
            w = int(min(size, round(np.sqrt(area * aspect))))
            h = int(min(size, round(np.sqrt(area / aspect))))
            x, y = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
            variant = photo.crop((x, y, x + w, y + h)).resize((size, size), Image.BILINEAR)
            if rng.random() < 0.5:
                variant = variant.transpose(Image.FLIP_LEFT_RIGHT)
            out[n, k] = np.asarray(variant)
    return out


def augmenting(predict, copies: int, seed: int):
    """A predict function that also scores ``copies`` random variants of each image:
    (N, S, S, 3) → (N, 1 + copies, features)."""
    rng = np.random.default_rng(seed)

    def predict_augmented(images: np.ndarray) -> np.ndarray:
        batch = augmented(images, copies, rng)
        outputs = predict(batch.reshape(-1, *images.shape[1:]))
        return outputs.reshape(len(images), 1 + copies, -1)

    return predict_augmented


# ---------------------------------------------------------------------------- fitting


@dataclass
class Fit:
    kernel: np.ndarray  # (features, classes), on raw features
    bias: np.ndarray  # (classes,)
    C: float
    folds: int  # cross-validation folds that chose C (0: not enough images, C = 1)


def fit_head(features: np.ndarray, targets: np.ndarray, num_classes: int, seed: int = 0) -> Fit:
    """Multinomial logistic regression, L2, balanced class weights; C by stratified k-fold
    cross-validation (log-loss) where every class has enough training images."""
    features = np.asarray(features, dtype=np.float64)
    mean = features.mean(axis=0)
    # Standardised, except that dimensions with almost no spread (channels a ReLU nearly always
    # zeroes) are not blown up: their raw-space weights would multiply tiny differences, such
    # as int8's rounding, by thousands.
    spread = features.std(axis=0)
    scale = np.maximum(spread, max(0.1 * float(np.median(spread)), 1e-12))
    folds = min(MAX_FOLDS, int(np.bincount(targets, minlength=num_classes).min()))
    with warnings.catch_warnings():  # scikit-learn's notices of future defaults are not the user's
        warnings.simplefilter("ignore", FutureWarning)
        model, chosen, folds = _fit((features - mean) / scale, targets, folds, seed)
    coef, intercept = model.coef_, model.intercept_
    if num_classes == 2 and coef.shape[0] == 1:  # sklearn's binary form: logit of class 1 vs 0
        coef = np.vstack([np.zeros_like(coef), coef])
        intercept = np.array([0.0, intercept[0]])
    kernel = (coef / scale).T
    bias = intercept - coef @ (mean / scale)
    return Fit(kernel.astype(np.float32), bias.astype(np.float32), chosen, folds)


def _fit(standard: np.ndarray, targets: np.ndarray, folds: int, seed: int):
    """(fitted model, C, folds used): cross-validated where every class allows ``folds``."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    if folds >= MIN_PER_CLASS_FOR_CV:
        model = LogisticRegressionCV(
            Cs=list(C_GRID),
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
            scoring="neg_log_loss",
            class_weight="balanced",
            max_iter=MAX_ITER,
        ).fit(standard, targets)
        return model, float(np.atleast_1d(model.C_)[0]), folds
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=MAX_ITER).fit(standard, targets)
    return model, 1.0, 0


def scores(features: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """softmax(features @ kernel + bias), row by row: what the head computes in the network."""
    logits = np.asarray(features, np.float64) @ kernel + bias
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------- the report


@dataclass
class Validation:
    """Held-out accuracy, per class and overall, and the confusion table (rows: true class)."""

    classes: list[str]
    confusion: np.ndarray = None  # (classes, classes) counts
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, classes: list[str], truth: np.ndarray, predicted: np.ndarray, **extra) -> "Validation":
        confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
        np.add.at(confusion, (truth, predicted), 1)
        return cls(classes, confusion, extra)

    def as_dict(self) -> dict:
        total = int(self.confusion.sum())
        per_class = []
        for i, name in enumerate(self.classes):
            seen = int(self.confusion[i].sum())
            per_class.append({"class": name, "images": seen, "accuracy": float(self.confusion[i, i] / seen) if seen else None})
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
        f"train images  {result['train_images']}" + (f" (+{result['augmented']} augmented)" if result.get("augmented") else ""),
        f"C (L2)        {result['C']:g}" + (f", chosen by {result['cv_folds']}-fold cross-validation" if result["cv_folds"] else " (too few images per class to cross-validate)"),
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
