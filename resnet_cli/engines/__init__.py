"""Engines: sources → decoded batches → a runtime → records, in input order. local (threads in
this process) · ray_pool / ray_plan / ray_cluster / ray_worker (the same records on Ray).

``open(plan)`` is the one way to a runtime: an Engine, opened once, whose ``records(sources)``
may be called many times, then ``close()`` (or ``with``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..inputs.discover import Source
    from ..plan import RunPlan
    from ..records import Record


class Engine(Protocol):
    ran_on: str  # the device and runtime that ran, for the summary line ("" until known)
    started: float  # perf_counter when the model was ready (0.0 until then)

    def start(self, batch_size: int | None = None) -> None:
        """Open the model now rather than at the first ``records`` call (a server's warm-up)."""
        ...

    def records(
        self, sources: Iterable[Source], on_skip: Callable[[Source], None] | None = None, top_k: int | None = None
    ) -> Iterator[Record]:
        """A record per source, in input order; a folder's non-image file goes to ``on_skip``;
        ``top_k``: this call's classes per record (default: the plan's)."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> Engine: ...

    def __exit__(self, *exc) -> None: ...


def open(plan: RunPlan) -> Engine:  # noqa: A001 - engines.open(plan), as the builtin opens a file
    if plan.engine == "ray":
        from .ray_pool import RayEngine

        return RayEngine(plan)
    from .local import LocalEngine

    return LocalEngine(plan)
