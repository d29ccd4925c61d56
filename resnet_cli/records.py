"""The one record schema: the outcome for one input, as every engine produces it and every
sink (and the Ray engine) writes it.

JSON: ``{"path", "predictions": [{rank, index, wnid, label, score}]}`` or ``{"path", "error"}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Prediction:
    rank: int
    index: int
    wnid: str | None  # None for a head's own classes
    label: str
    score: float

    def as_dict(self) -> dict:
        return {"rank": self.rank, "index": self.index, "wnid": self.wnid, "label": self.label, "score": self.score}


@dataclass
class Record:
    """Predictions (or a feature vector) for one input, or an error in plain words."""

    path: str
    predictions: list[Prediction] = field(default_factory=list)
    error: str | None = None
    vector: np.ndarray | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        """The stable JSON schema (see the module's docstring)."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "predictions": [p.as_dict() for p in self.predictions]}

    def as_json(self) -> str:
        """The record as JSON text that is valid UTF-8: a file name's undecodable bytes (kept by
        ``os.fsdecode`` as lone surrogates) are written as \\udcXX escapes, which read back (json,
        then os.fsencode) to the same bytes."""
        text = json.dumps(self.as_dict(), ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "backslashreplace").decode("utf-8")
        return text
