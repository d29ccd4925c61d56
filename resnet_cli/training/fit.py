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
from dataclasses import dataclass

import numpy as np

# L2 strengths tried (sklearn's C, on standardised features) and folds: 5 × 3 fits keep the
# search at a few seconds for 1,000 photos (7 × 5 took 5 s and chose the same C).
C_GRID = tuple(float(c) for c in np.logspace(-3, 1, 5))


MAX_FOLDS = 3


MIN_PER_CLASS_FOR_CV = 3  # fewer training images in some class: no cross-validation, C = 1


MAX_ITER = 2000


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
