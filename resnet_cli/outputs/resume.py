"""What an output already holds, for --resume: its paths read as a stream into an on-disk
set; a torn last line (a killed writer) does not count and is cut off a local file."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator

from .. import storage
from ..records import path_from_text
from .parquet import parquet_paths
from .pathset import PathSet
from .shards import is_shard_folder, shard_files
from .sinks import LINE_FORMATS, needs_format


def recorded_paths(path: str, fmt: str) -> PathSet:
    """Paths already recorded in an output file (or shard folder), read as a stream into an
    on-disk set (flat memory for any count). A torn last line (a killed writer) does not count;
    in a local file it is cut off so the appended records start on a clean line."""
    if fmt not in LINE_FORMATS:
        raise ValueError(needs_format("--resume", fmt))
    files = shard_files(path, fmt) if is_shard_folder(path) else [path] if storage.exists(path) else []
    done = PathSet()
    for file in files:
        done.add_all(_paths_in(file, fmt))
    return done


def _paths_in(path: str, fmt: str) -> Iterator[str]:
    if fmt == "parquet":
        yield from parquet_paths(path)
        return
    local = storage.local_path(path)
    if local is not None:
        _cut_torn_tail(local)
    with storage.open_read(path) as handle:
        lines = (line.decode("utf-8", errors="replace") for line in _whole_lines(handle))
        if fmt == "jsonl":
            for line in lines:
                try:
                    yield json.loads(line)["path"]
                except (ValueError, KeyError, TypeError):
                    continue
        else:
            yield from (path_from_text(row["path"]) for row in csv.DictReader(lines) if row.get("path"))


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
