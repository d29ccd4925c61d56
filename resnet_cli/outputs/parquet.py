"""Records → Parquet (one row per input with the JSON record's fields), durable while the run
writes: every record goes first to a journal (JSON lines, flushed per record, as ``-f jsonl``
writes them); closing — or the next run on the same output, after a kill — folds the rows
already in the file and the journal's into one new file, renamed into place when whole.

Why a journal and not row groups flushed now and then: a Parquet file is readable only once
its footer is written, so a file killed mid-run holds nothing; small files flushed at an
interval would lose the records since the last flush. The journal loses none, and folding is
idempotent (a row whose path the file already holds is not added again), so a kill during the
fold itself costs nothing either.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator

from ..records import Record, path_from_text, path_text
from ..storage import cache_dir, exists, join, local_path, move, open_read, parquet_target, split
from . import settings as run_settings
from .pathset import PathSet

ROWS_PER_GROUP = 10_000


def parquet_schema(settings: dict | None = None):
    """Classes: ``path``, ``predictions`` (a list of structs), ``error``. Feature vectors (the
    settings of an ``embed`` run): ``path``, ``model``, ``vector`` (a fixed-size float32 list,
    what pandas, DuckDB, FAISS and LanceDB load as is), ``error``."""
    import pyarrow as pa

    if settings and settings.get("features"):
        from ..model.spec import FEATURES

        return pa.schema(
            [
                ("path", pa.string()),
                ("model", pa.string()),
                ("vector", pa.list_(pa.float32(), FEATURES)),
                ("error", pa.string()),
            ]
        )

    prediction = pa.struct(
        [
            ("rank", pa.int32()),
            ("index", pa.int32()),
            ("wnid", pa.string()),
            ("label", pa.string()),
            ("score", pa.float32()),
        ]
    )
    return pa.schema([("path", pa.string()), ("predictions", pa.list_(prediction)), ("error", pa.string())])


def journal_of(path: str) -> str:
    """Where the journal of the Parquet file ``path`` lives: beside it on a local disk (a file://
    URI too), else — object stores cannot append — in the tool's cache on this machine, in a
    folder of the object's folder."""
    local = local_path(path)
    folder, name = split(local or path)
    return os.path.join(folder if local is not None else _remote_journals(folder), f".{name}.journal")


def _remote_journals(folder: str) -> str:
    key = hashlib.sha256(folder.rstrip("/").encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return str(cache_dir() / "journals" / key)


def journaled_shards(folder: str) -> list[str]:
    """The shards of a shard folder that have a journal (a killed run's, to be folded)."""
    local = local_path(folder)
    where = local if local is not None else _remote_journals(folder)
    names = sorted(os.listdir(where)) if os.path.isdir(where) else []
    return [join(folder, n[1 : -len(".journal")]) for n in names if n.startswith(".part-") and n.endswith(".journal")]


def parquet_rows(path: str) -> int:
    """The rows a Parquet file holds (from its footer)."""
    import pyarrow.parquet as pq

    with open_read(path) as handle:
        return pq.ParquetFile(handle).metadata.num_rows


def partial_of(path: str) -> str:
    """Where a fold writes the new file before it is renamed into place."""
    folder, name = split(path)
    return join(folder, f".{name}.partial")


class ParquetSink:
    """Records into the journal of ``path`` as they come; ``close`` folds them into the file
    (after the rows it already holds: a resumed run adds to it)."""

    def __init__(self, path: str, appending: bool = False, settings: dict | None = None):
        self.path, self.appending, self.settings = path, appending, settings
        self.journal_path = journal_of(path)
        os.makedirs(os.path.dirname(self.journal_path), exist_ok=True)
        self.journal = open(self.journal_path, "a", encoding="utf-8", newline="")

    def write(self, record: Record) -> None:
        self.journal.write(record.as_json() + "\n")
        self.journal.flush()

    def close(self) -> None:
        self.journal.close()
        fold(self.path, keep=self.appending, settings=self.settings)


def fold(path: str, keep: bool = True, settings: dict | None = None) -> bool:
    """The rows of ``path`` (if any, and ``keep``) and then those of its journal not already
    there, into one whole file that replaces ``path``; the journal removed. False when there
    was no journal. ``settings`` (else those recorded beside the output) go into the file's
    key-value metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    journal = journal_of(path)
    if not os.path.exists(journal):
        return False
    partial = partial_of(path)
    settings = settings or run_settings.read(path, False) or run_settings.read(split(path)[0], True)
    schema = parquet_schema(settings)
    if settings:
        schema = schema.with_metadata({run_settings.KEY: json.dumps(settings, sort_keys=True)})
    filesystem, where = parquet_target(partial)
    with PathSet() as there, pq.ParquetWriter(where, schema, filesystem=filesystem) as writer:
        if keep and exists(path):
            with open_read(path) as handle:  # a row group at a time
                existing = pq.ParquetFile(handle)
                for group in range(existing.num_row_groups):
                    table = existing.read_row_group(group).cast(schema)
                    there.add_all(p for p in table.column("path").to_pylist() if p is not None)
                    writer.write_table(table)
        for rows in _journal_rows(journal, there, (settings or {}).get("model") if "vector" in schema.names else None):
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    move(partial, path)
    os.unlink(journal)
    return True


def _journal_rows(journal: str, there: PathSet, model: str | None = None) -> Iterator[list[dict]]:
    """The journal's whole records as Parquet rows, ROWS_PER_GROUP at a time, leaving out a torn
    last line (the kill came mid-write) and paths the file already holds (a fold cut short).
    ``model``: the rows are feature vectors, of this model."""
    rows: list[dict] = []
    with open(journal, "rb") as handle:
        for line in io.TextIOWrapper(handle, encoding="utf-8", errors="surrogateescape", newline="\n"):
            if not line.endswith("\n"):
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue
            text = path_text(record["path"])
            if text in there:
                continue
            if model is None:
                rows.append({"path": text, "predictions": record.get("predictions", []), "error": record.get("error")})
            else:
                rows.append(
                    {"path": text, "model": model, "vector": record.get("vector"), "error": record.get("error")}
                )
            if len(rows) >= ROWS_PER_GROUP:
                yield rows
                rows = []
    if rows:
        yield rows


def parquet_paths(path: str) -> Iterator[str]:
    """The paths a Parquet file holds, as the runs that wrote them saw them."""
    import pyarrow.parquet as pq

    with open_read(path) as handle:
        for batch in pq.ParquetFile(handle).iter_batches(columns=["path"], batch_size=65_536):
            yield from (path_from_text(p) for p in batch.column(0).to_pylist() if p is not None)


def parquet_drop_errors(path: str) -> int:
    """``path`` rewritten whole without its error rows (a row group at a time); how many."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    with open_read(path) as handle:
        source = pq.ParquetFile(handle)
        batches = source.iter_batches(columns=["error"], batch_size=65_536)
        dropped = sum(len(batch) - batch.column(0).null_count for batch in batches)
    if not dropped:
        return 0
    with open_read(path) as handle:
        schema = pq.ParquetFile(handle).schema_arrow  # its own: classes or feature vectors
    partial = partial_of(path)
    filesystem, where = parquet_target(partial)
    with open_read(path) as handle, pq.ParquetWriter(where, schema, filesystem=filesystem) as writer:
        source = pq.ParquetFile(handle)
        for group in range(source.num_row_groups):
            table = source.read_row_group(group).cast(schema)
            writer.write_table(table.filter(pc.is_null(table.column("error"))))
    move(partial, path)
    return dropped
