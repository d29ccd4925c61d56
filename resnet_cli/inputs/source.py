"""Source: one input as discovery found it, before anything is read."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Source:
    """One input: its path as the user will see it, whether the user named it, and the reason
    it cannot be read when discovery already knows (a folder that cannot be listed). ``data``:
    an image already in memory (encoded bytes, a Pillow image, a uint8 array — the Python API's
    and the server's inputs), decoded in place of reading ``path``."""

    path: str
    explicit: bool = True
    error: str | None = None
    data: object = field(default=None, compare=False, repr=False)
