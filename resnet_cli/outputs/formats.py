"""The output formats as one table: a row per format says its extensions, what it can do
(go to stdout, --resume, a shard folder), how an output already holding it is recognised, and
which module writes and reads it. A new format is one row here and one module."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass

CSV_COLUMNS = ("path", "rank", "index", "wnid", "label", "score", "error")
_CSV_HEADER = ",".join(CSV_COLUMNS[:2]).encode()


@dataclass(frozen=True)
class OutputFormat:
    name: str
    suffixes: tuple[str, ...]  # -o's extensions that choose it
    stdout: bool  # can go to a terminal or a pipe (else it needs -o)
    resumes: bool  # written record by record and read back by --resume
    shards: bool  # a shard folder (DIR/part-N.EXT) can hold it
    magic: bytes | None  # how its first bytes (spaces stripped) begin; None: not recognised
    writer: str  # "module:Sink": on a text stream (stream, appending, report), or on a path (path, appending)
    reader: str | None = None  # "module:function": the paths an output holds, for --resume
    dropper: str | None = None  # "module:function": an output rewritten without its error records
    binary: bool = False  # the writer takes a path, not a text stream

    def sink(self):
        return _load(self.writer)

    def paths(self):
        return _load(self.reader)

    def drop_errors(self):
        return _load(self.dropper)


def _load(where: str):
    module, name = where.split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


TABLE = (
    OutputFormat("table", (), True, False, False, None, "sinks:TableSink"),
    OutputFormat("json", (".json",), True, False, False, b"[", "sinks:JsonSink"),
    OutputFormat(
        "jsonl",
        (".jsonl", ".ndjson"),
        True,
        True,
        True,
        b"{",
        "sinks:JsonlSink",
        "resume:jsonl_paths",
        "resume:jsonl_drop_errors",
    ),
    OutputFormat(
        "csv", (".csv",), True, True, True, _CSV_HEADER, "sinks:CsvSink", "resume:csv_paths", "resume:csv_drop_errors"
    ),
    OutputFormat(
        "parquet",
        (".parquet",),
        False,
        True,
        True,
        b"PAR1",
        "parquet:ParquetSink",
        "parquet:parquet_paths",
        "parquet:parquet_drop_errors",
        True,
    ),
    OutputFormat("html", (".html", ".htm"), True, False, True, b"<!DOCTYPE html", "html:HtmlSink"),
)
BY_NAME = {f.name: f for f in TABLE}
NAMES = tuple(BY_NAME)
RESUMABLE = tuple(f.name for f in TABLE if f.resumes)
SHARDABLE = tuple(f.name for f in TABLE if f.shards)
SHARD_DEFAULT = "jsonl"  # a shard folder without -f


def by_suffix(path: str) -> str:
    """The format -o's extension names; table when none does."""
    extension = os.path.splitext(path)[1].lower()
    return next((f.name for f in TABLE if extension in f.suffixes), "table")


def by_first_bytes(head: bytes) -> str | None:
    """The format an output's first bytes are in; None when it is empty; table when unknown."""
    head = head.lstrip()
    if not head:
        return None
    return next((f.name for f in TABLE if f.magic is not None and head.startswith(f.magic)), "table")


def needs(what: str, fmt: str, formats: tuple[str, ...] = RESUMABLE) -> str:
    """The usage message for ``what`` (a shard folder, --resume) asked of a format it cannot use."""
    return f"{what} needs --format {', '.join(formats)}. Received: --format {fmt}"


def needs_output(fmt: str) -> str:
    return f"--format {fmt} needs --output FILE or DIR/ (Parquet is binary, not for a terminal or a pipe)"
