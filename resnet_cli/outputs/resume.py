"""What an output already holds, for --resume: its paths read as a stream into an on-disk
set; a torn last line (a killed writer) does not count and is cut off a local file."""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Iterator

from ..records import path_from_text
from ..storage import exists, join, local_path, move, open_read, open_write, split
from . import formats
from .formats import CSV_COLUMNS
from .pathset import PathSet
from .shards import is_shard_folder, shard_files


def recorded_paths(path: str, fmt: str, shard_folder: bool | None = None, group=None) -> PathSet:
    """Paths already recorded in an output file (or shard folder), read as a stream into an
    on-disk set (flat memory for any count) by the format's reader (``formats.TABLE``). A torn
    last line (a killed writer) does not count; in a local file it is cut off so the appended
    records start on a clean line. ``group``: as ``PathSet``'s."""
    row = formats.BY_NAME[fmt]
    if not row.resumes:
        raise ValueError(formats.needs("--resume", fmt))
    if shard_folder is None:
        shard_folder = is_shard_folder(path)
    files = _files(path, fmt, shard_folder)
    done = PathSet(group=group)
    for file in files:
        done.add_all(row.paths()(file))
    return done


def _files(path: str, fmt: str, shard_folder: bool) -> list[str]:
    """The files of an output: its shards of ``fmt``, or the file itself where it exists."""
    return shard_files(path, fmt) if shard_folder else [path] if exists(path) else []


def drop_errors(path: str, fmt: str, shard_folder: bool) -> int:
    """The error records out of an output that --resume continues (each file rewritten whole,
    and only where it holds one), so their inputs run again and the output ends with one
    record per input, the latest. How many were dropped."""
    row = formats.BY_NAME[fmt]
    files = _files(path, fmt, shard_folder)
    return sum(row.drop_errors()(file) for file in files)


def rewrite(path: str, chunks: Iterable[bytes]) -> None:
    """``path`` replaced by ``chunks``, whole or not at all (a temporary beside it, moved over it)."""
    folder, name = split(path)
    temporary = join(folder, f".{name}.retry")
    local = local_path(temporary)
    with open(local, "wb") if local is not None else open_write(temporary) as handle:
        for chunk in chunks:
            handle.write(chunk)
    move(temporary, path)


def jsonl_drop_errors(path: str) -> int:
    dropped = sum(1 for line in _lines(path) if _is_error_line(line))
    if dropped:
        rewrite(path, (line.encode() for line in _lines(path) if not _is_error_line(line)))
    return dropped


def _is_error_line(line: str) -> bool:
    try:
        return json.loads(line).get("error") is not None
    except (ValueError, AttributeError):
        return False


def csv_drop_errors(path: str) -> int:
    def rows():
        return csv.reader(_lines(path))

    error = CSV_COLUMNS.index("error")

    def is_error(row: list[str]) -> bool:
        return len(row) > error and bool(row[error]) and row != list(CSV_COLUMNS)

    def kept() -> Iterator[bytes]:
        for row in rows():
            if not is_error(row):
                buffer = io.StringIO()
                csv.writer(buffer).writerow(row)
                yield buffer.getvalue().encode()

    dropped = sum(1 for row in rows() if is_error(row))
    if dropped:
        rewrite(path, kept())
    return dropped


def _lines(path: str) -> Iterator[str]:
    """The whole lines of a text output, its torn tail (a killed writer's) cut off a local file."""
    local = local_path(path)
    if local is not None:
        _cut_torn_tail(local)
    with open_read(path) as handle:
        yield from (line.decode("utf-8", errors="replace") for line in _whole_lines(handle))


def jsonl_paths(path: str) -> Iterator[str]:
    for line in _lines(path):
        try:
            yield json.loads(line)["path"]
        except (ValueError, KeyError, TypeError):
            continue


def csv_paths(path: str) -> Iterator[str]:
    yield from (path_from_text(row["path"]) for row in csv.DictReader(_lines(path)) if row.get("path"))


def _whole_lines(handle, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """The lines of a binary stream that end in a newline (a torn last line is left out)."""
    rest = b""
    while chunk := handle.read(chunk_size):
        *lines, rest = (rest + chunk).split(b"\n")
        yield from (line + b"\n" for line in lines)


def _cut_torn_tail(path: str) -> None:
    with open(path, "rb+") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - (1 << 16))
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                end = start + newline + 1
                break
            end = start
        handle.truncate(end)
