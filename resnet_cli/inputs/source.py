"""Source: one input as discovery found it, before anything is read."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
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
    skip: bool = False  # no image by its name (a shard's .json): counted as skipped, never read or batched
    # A tar shard or Parquet file left whole for the engine to read where it decodes (the Ray
    # engine's workers): the Columns to read it with, and a resumed run's recorded paths.
    dataset: object = field(default=None, compare=False, repr=False)
    done: object = field(default=None, compare=False, repr=False)


def without_skips(sources: Iterable[Source], on_skip: Callable[[Source], None]) -> Iterator[Source]:
    """The sources an engine reads; those known to be skipped go to ``on_skip`` instead of
    taking a place in a batch."""
    for source in sources:
        if source.skip:
            on_skip(source)
        else:
            yield source
