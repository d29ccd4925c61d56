"""Records → Parquet: one row per input with the JSON record's fields."""

from __future__ import annotations

import os

from .. import storage
from ..records import Record


class ParquetSink:
    """One row per input with the JSON record's fields (``path``, ``predictions`` as a list of
    structs rank/index/wnid/label/score, ``error``), written in row groups as records stream
    (bounded memory). The file is written under a temporary name and renamed when closed, so
    a killed run never leaves a file without its footer; resuming rewrites the rows already
    there into the new file first (Parquet files cannot be appended to)."""

    ROWS_PER_GROUP = 10_000

    def __init__(self, path: str, resume_from: str | None = None):
        import pyarrow.parquet as pq

        self.path = path
        folder, name = (
            path.rsplit("/", 1)
            if storage.is_uri(path)
            else (os.path.dirname(os.path.abspath(path)), os.path.basename(path))
        )
        self.partial = storage.join(folder, f".{name}.{os.getpid()}.partial")
        filesystem, where = storage.parquet_target(self.partial)
        self.writer = pq.ParquetWriter(where, parquet_schema(), filesystem=filesystem)
        self.owns_stream = False
        self.rows: list[dict] = []
        if resume_from and storage.exists(resume_from):
            with storage.open_read(resume_from) as handle:  # a row group at a time
                existing = pq.ParquetFile(handle)
                for group in range(existing.num_row_groups):
                    self.writer.write_table(existing.read_row_group(group).cast(parquet_schema()))

    def write(self, record: Record) -> None:
        row = record.as_dict()
        self.rows.append({"path": row["path"], "predictions": row.get("predictions", []), "error": row.get("error")})
        if len(self.rows) >= self.ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.rows:
            self.writer.write_table(pa.Table.from_pylist(self.rows, schema=parquet_schema()))
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
        storage.move(self.partial, self.path)


def parquet_schema():
    import pyarrow as pa

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
