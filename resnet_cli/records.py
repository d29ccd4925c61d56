"""The outcome for one input, as every engine produces it and every sink writes it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Record:
    """Predictions (or a feature vector) for one input, or an error in plain words."""

    path: str
    predictions: list = field(default_factory=list)
    error: str | None = None
    vector: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
