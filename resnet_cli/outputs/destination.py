"""Where a run's records go, checked once before any work: -o as a path, a shard folder or a
URI; the format (-f, what is already there, the extension); a folder that can be written."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .. import storage
from ..errors import UserError, user_file
from .shards import ShardSink, is_shard_folder, shard_files
from .sinks import (
    CSV_COLUMNS,
    LINE_FORMATS,
    PARQUET_NEEDS_OUTPUT,
    SUFFIX_FORMATS,
    Sink,
    file_sink,
    make_sink,
    needs_line_format,
)


def prepare_output(path: str) -> None:
    """Before any work: make ``path``'s missing parent folders (or the shard folder) and check
    that a file can be written there. A problem is one UserError line."""
    import tempfile

    if storage.is_uri(path):  # an object store: made when written (folders are names there)
        try:
            storage.makedirs(path if is_shard_folder(path) else path.rsplit("/", 1)[0])
        except (OSError, ValueError) as error:
            raise UserError(f"cannot write {path} ({error})") from None
        return
    target = os.path.abspath(path)
    folder = target if is_shard_folder(path) else os.path.dirname(target)
    try:
        if os.path.isdir(target) and not is_shard_folder(path):
            raise IsADirectoryError(21, "is a folder")
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(target) and not os.path.isdir(target) and not os.access(target, os.W_OK):
            raise PermissionError(13, "permission denied")
        tempfile.TemporaryFile(dir=folder).close()
    except (FileExistsError, NotADirectoryError):
        blocker = next((a for a in (Path(folder), *Path(folder).parents) if a.exists() and not a.is_dir()), folder)
        raise UserError(f"cannot write {path} ({blocker} is a file, not a folder)") from None
    except OSError as error:
        raise UserError(f"cannot write {path} ({error.strerror or error})") from None


def open_sink(fmt: str, output: str | None, appending: bool = False, stdout=None) -> UserFileSink:
    """The sink for ``--output``: stdout (or the records' own ``stdout``, see
    ``records_only_stdout``), one file (appended to on resume), or a shard folder."""
    if output is None:
        if fmt == "parquet":
            raise ValueError(PARQUET_NEEDS_OUTPUT)
        return UserFileSink(make_sink(fmt, stdout or sys.stdout), "stdout")
    with user_file(output):
        return UserFileSink(
            ShardSink(output, fmt) if is_shard_folder(output) else file_sink(fmt, output, appending), output
        )


class UserFileSink:
    """A sink on the user's output, whose OS errors (a full disk, a closed pipe) are the
    user's to fix: one line naming the output, never a traceback."""

    def __init__(self, sink: Sink, target: str):
        self.sink, self.target = sink, target

    def write(self, record) -> None:
        with user_file(self.target):
            self.sink.write(record)

    def close(self) -> None:
        with user_file(self.target):
            self.sink.close()

    def __enter__(self) -> UserFileSink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def written_format(output: str) -> str | None:
    """The format records already in ``output`` (a file or shard folder) were written in,
    from their first bytes; None when there are none yet."""
    if is_shard_folder(output):
        found = [p for fmt in LINE_FORMATS for p in shard_files(output, fmt)]
        return written_format(sorted(found)[0]) if found else None
    try:
        head = storage.read_bytes(output, 64).lstrip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ValueError(f"--resume: cannot read {output} ({error.strerror or error})") from None
    if not head:
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"{"):
        return "jsonl"
    if head.startswith(b"["):
        return "json"
    if head.startswith(",".join(CSV_COLUMNS[:2]).encode()):
        return "csv"
    return "table"


def output_location(output: str | None) -> str | None:
    """``-o`` as given: a path, or a URI pyarrow.fs can write (s3://, gs://, hdfs://,
    file://); any other scheme is a usage error in words."""
    if output is None or not storage.is_uri(output):
        return output
    try:
        storage.filesystem(output)
    except ValueError as error:
        raise ValueError(f"-o: {error}. Received: -o {output}") from None
    return output


def output_format(fmt: str | None, output: str | None, resume: bool = False) -> str:
    """The run's format: -f as given, else what -o's records already are (with --resume), else
    -o's extension (a shard folder: jsonl), else table. A choice that cannot work is a
    ValueError, worded for a usage error."""
    if output is not None and not resume and is_shard_folder(output):
        existing = sorted(p for f in LINE_FORMATS for p in shard_files(output, f))
        if existing:  # a second run would add every record again, in new shards
            raise ValueError(
                f"{output} already holds records ({os.path.basename(existing[0])}…): add --resume to continue it, "
                "or name an empty folder."
            )
    found = written_format(output) if resume and output else None
    if fmt is None:
        if found is not None:
            fmt = found
        elif output is None:
            fmt = "table"
        elif is_shard_folder(output):
            fmt = "jsonl"
        else:
            fmt = SUFFIX_FORMATS.get(os.path.splitext(output)[1].lower(), "table")
    if fmt == "parquet" and output is None:
        raise ValueError(PARQUET_NEEDS_OUTPUT)
    if output is not None and is_shard_folder(output) and fmt not in LINE_FORMATS:
        raise ValueError(needs_line_format("a folder of shards", fmt))
    if resume and fmt not in LINE_FORMATS:
        raise ValueError(needs_line_format("--resume", fmt))
    if found is not None and found != fmt:
        raise ValueError(f"--resume: {output} holds {found} records; it is left as it is. Received: --format {fmt}")
    return fmt
