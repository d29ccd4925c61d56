"""Datasets as inputs: WebDataset tar shards and Parquet files with an image column → Sources
that hold each image's bytes, read a member or a row group at a time (bounded memory).

A shard's member is ``SHARD#MEMBER`` (``s3://b/000123.tar#000123045.jpg``), a Parquet row
``FILE#ROW`` or its ``--key-column`` value: the records' paths, which ``--resume`` skips by.
Tar shards are read with Python's tarfile in stream mode over the same opener as any input (a
file, an http(s) body streamed, a pyarrow filesystem's stream): one sequential read per shard,
no index, every failure one record naming where it broke — what the webdataset package does
too, without its decoders and grouping, which a classifier of single images has no use for.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..storage import is_uri, is_url, open_read
from .decode import IMAGE_EXTENSIONS
from .source import Source

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
PARQUET_SUFFIXES = (".parquet",)
ROWS_AT_ONCE = 256  # Parquet rows read together: what bounds memory, with the engine's batches
IMAGE_COLUMN_NAMES = ("image", "img", "jpg", "png", "webp", "bytes", "path", "url")


@dataclass(frozen=True)
class Columns:
    """Which Parquet columns hold the images and the records' paths (None: chosen by type)."""

    image: str | None = None
    key: str | None = None


def is_dataset(path: str) -> bool:
    name = path.split("?", 1)[0].lower()
    return name.endswith(TAR_SUFFIXES + PARQUET_SUFFIXES)


def dataset_of(path: str) -> str | None:
    """The tar shard or Parquet file that a record's ``SHARD#MEMBER`` / ``FILE#ROW`` path names
    (None for any other path): what a resumed run groups its recorded paths by."""
    at = path.find("#")
    while at > 0:
        if is_dataset(path[:at]):
            return path[:at]
        at = path.find("#", at + 1)
    return None


def dataset_sources(
    path: str,
    columns: Columns = Columns(),
    timeout: float = 30.0,
    name: str | None = None,
    row_group: int | None = None,
) -> Iterator[Source]:
    """The Sources a tar shard or a Parquet file holds (or one row group of it), lazily, in
    stored order. ``name``: the file as the user named it, which the records' paths start with
    (the Ray engine's workers read ``path``, its absolute form)."""
    if path.split("?", 1)[0].lower().endswith(PARQUET_SUFFIXES):
        yield from _parquet_sources(path, columns, name or path, row_group)
    else:
        yield from _tar_sources(path, timeout, name or path)


def row_groups(path: str) -> list[int] | None:
    """A Parquet file's row groups (its footer read, no rows), or None for a tar shard or a file
    whose footer cannot be read (its reader then says why, in a record)."""
    if not path.split("?", 1)[0].lower().endswith(PARQUET_SUFFIXES):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open_read(path) as handle:
            return list(range(pq.ParquetFile(handle).metadata.num_row_groups)) or None
    except (pa.ArrowException, OSError, ValueError):
        return None


def _open_stream(path: str, timeout: float):
    """A binary stream of the whole shard: a file, an http(s) body (streamed, not held), or a
    pyarrow filesystem's input stream."""
    if is_url(path):
        import requests

        response = requests.get(
            path, stream=True, timeout=(timeout, timeout), headers={"User-Agent": "resnet-classify"}
        )
        if response.status_code >= 400:
            response.close()
            raise OSError(f"HTTP {response.status_code} {response.reason or ''}".strip())
        response.raw.decode_content = True
        return response.raw
    if is_uri(path):
        return open_read(path)
    return open(path, "rb")


def _tar_sources(shard: str, timeout: float, name: str) -> Iterator[Source]:
    """Each member file of the shard: an image-named one with its bytes (a broken one becomes
    its error record), any other (.json, .cls, .txt: a WebDataset's metadata) skipped and
    counted without being read. A shard that ends early is one error record naming the last
    member read."""
    import tarfile
    import zlib

    read, last = 0, None
    try:
        with _open_stream(shard, timeout) as stream, tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                read += 1
                last = member.name
                path = f"{name}#{member.name}"
                if PurePosixPath(member.name).suffix.lower() not in IMAGE_EXTENSIONS:
                    yield Source(path, explicit=False, skip=True)  # no image by its name: not read
                    continue
                handle = archive.extractfile(member)
                yield Source(path, explicit=False, data=handle.read() if handle else b"")
    except (tarfile.TarError, EOFError, OSError, zlib.error, ValueError) as error:
        reason = _reason(error)
        if read == 0:
            yield Source(name, error=f"not a readable tar shard ({reason})")
        else:
            yield Source(f"{name}#{last}", error=f"the shard breaks after this member (file {read} of it; {reason})")
        return
    if read == 0:
        yield Source(name, error="an empty tar shard (no files in it)")


def _reason(error: BaseException) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    text = str(error) or type(error).__name__
    if "unexpected end of data" in text or isinstance(error, EOFError):
        return "truncated"
    return text


def _parquet_sources(path: str, columns: Columns, name: str, row_group: int | None) -> Iterator[Source]:
    """Each row's image: bytes, a Hugging Face Image struct ({bytes, path}) or a path/URL,
    read ``ROWS_AT_ONCE`` rows at a time (of one row group only, with ``row_group``). Paths in
    it are relative to the file's folder."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        handle = open_read(path)
        table = pq.ParquetFile(handle)
    except FileNotFoundError:
        yield Source(name, error="no such file")
        return
    except (pa.ArrowException, OSError, ValueError) as error:
        yield Source(name, error=f"not a readable Parquet file ({error})")
        return
    schema = table.schema_arrow
    image, problem = _image_column(schema, columns.image)
    if problem:
        yield Source(name, error=problem)
        return
    if columns.key is not None and columns.key not in schema.names:
        yield Source(name, error=f"no column {columns.key!r} (--key-column) in it: {', '.join(schema.names)}")
        return
    if table.metadata.num_rows == 0:
        yield Source(name, error="no rows in it")
        return
    wanted = [image] + ([columns.key] if columns.key and columns.key != image else [])
    folders = (_folder(name), _folder(path))
    groups = None if row_group is None else [row_group]
    row = sum(table.metadata.row_group(group).num_rows for group in range(row_group or 0))
    try:
        for batch in table.iter_batches(batch_size=ROWS_AT_ONCE, columns=wanted, row_groups=groups):
            values = batch.column(image).to_pylist()
            keys = batch.column(columns.key).to_pylist() if columns.key else [None] * len(values)
            for value, key in zip(values, keys):
                label = str(key) if key is not None else f"{name}#{row}"
                yield _row_source(label, key is not None, value, folders)
                row += 1
    except (pa.ArrowException, OSError) as error:
        yield Source(f"{name}#{row}", error=f"the Parquet file breaks at this row ({error})")
    finally:
        handle.close()


def _folder(path: str) -> str:
    return os.path.dirname(path) if not is_uri(path) else path.rsplit("/", 1)[0]


def _row_source(name: str, keyed: bool, value, folders: tuple[str, str]) -> Source:
    """A row's image: its bytes, or the file or URL it names (relative to the Parquet file's
    folder: ``folders`` as the user named it and as read here) — read by the engine's decoders,
    under that name unless a key column names it."""
    if isinstance(value, dict):  # a Hugging Face Image: {"bytes": …, "path": …}
        if value.get("bytes"):
            return Source(name, data=value["bytes"])
        value = value.get("path")
    if isinstance(value, (bytes, bytearray)):
        return Source(name, data=bytes(value)) if value else Source(name, error="empty file (0 bytes)")
    if isinstance(value, str) and value:
        shown, located = (
            (value, value) if is_uri(value) or os.path.isabs(value) else (os.path.join(f, value) for f in folders)
        )
        if not keyed and shown == located:
            return Source(located)
        from .fetch import ImageError, open_input

        try:
            with open_input(located, True) as opened:
                return Source(shown if not keyed else name, data=opened.read())
        except ImageError as error:
            return Source(shown if not keyed else name, error=str(error))
    return Source(name, error="no image in this row")


def _image_column(schema, asked: str | None) -> tuple[str | None, str | None]:
    """(the image column, or the problem in words). Asked for by name, else the first binary
    column, else the first struct with a ``bytes`` field (Hugging Face's Image), else the first
    string column named like an image or a path."""
    import pyarrow as pa

    if asked is not None:
        if asked not in schema.names:
            return None, f"no column {asked!r} (--image-column) in it: {', '.join(schema.names)}"
        return asked, None
    for field in schema:
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            return field.name, None
    for field in schema:
        if pa.types.is_struct(field.type) and field.type.get_field_index("bytes") >= 0:
            return field.name, None
    for field in schema:
        if pa.types.is_string(field.type) and field.name.lower() in IMAGE_COLUMN_NAMES:
            return field.name, None
    names = ", ".join(schema.names)
    return None, f"no image column (binary, an Image struct, or paths): name one with --image-column ({names})"
