"""The one record schema: the outcome for one input, as every engine produces it and every
sink (and the Ray engine) writes it.

JSON: ``{"path", "predictions": [{rank, index, wnid, label, score}]}`` or ``{"path", "error"}``
(``embed``'s: ``{"path", "vector": [floats]}``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


_ESCAPED_BYTE = re.compile(r"\\udc([89a-f][0-9a-f])")


def path_text(path: str) -> str:
    """A path as valid UTF-8 text, losslessly: a file name's undecodable bytes (kept by
    ``os.fsdecode`` as lone surrogates U+DC80–U+DCFF) become the six characters ``\\udcXX``,
    as JSON writes them. For Parquet and CSV, which have no escapes of their own."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8") if _has_surrogates(path) else path


def path_from_text(text: str) -> str:
    """``path_text`` undone: ``\\udcXX`` back to the byte it stands for."""
    return _ESCAPED_BYTE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), text) if "\\udc" in text else text


def path_display(path: str) -> str:
    """A path for people (a table row, a page, a line on stderr), on one line and in the order
    its characters are stored: control characters, undecodable bytes and the invisible format
    characters — the bidirectional overrides (U+202E shows ``\\u202eevil.jpg`` as ``gpj.live``)
    and zero-width ones — escaped as JSON escapes them (``\\n``, ``\\udcff``, ``\\u202e``); a
    printable name is left as it is."""
    if path.isprintable():
        return path
    text = json.dumps(path, ensure_ascii=False)[1:-1]
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
    thumbnail: bytes | None = None  # a small JPEG of what the model saw, for -f html

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict:
        """The stable JSON schema (see the module's docstring)."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        if self.vector is not None:  # embed's: the pooled features
            return {"path": self.path, "vector": [float(v) for v in self.vector]}
        return {"path": self.path, "predictions": [p.as_dict() for p in self.predictions]}

    def as_json(self) -> str:
        """The record as JSON text that is valid UTF-8: a file name's undecodable bytes (kept by
        ``os.fsdecode`` as lone surrogates) are written as \\udcXX escapes, which read back (json,
        then os.fsencode) to the same bytes."""
        return path_text(json.dumps(self.as_dict(), ensure_ascii=False))
