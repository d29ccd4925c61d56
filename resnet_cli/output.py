"""Records → table / json / jsonl / csv, each record written whole and flushed; and the Report
that counts outcomes and turns them into the exit code. All talk goes to stderr."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Iterator
from pathlib import Path

from . import storage
from .pathset import PathSet
from .records import Record

CSV_COLUMNS = ("path", "rank", "index", "wnid", "label", "score", "error")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


def record_dict(record: Record) -> dict:
    """The stable JSON schema: {"path", "predictions": [{rank, index, wnid, label, score}]} or
    {"path", "error"}."""
    if record.error is not None:
        return {"path": record.path, "error": record.error}
    return {"path": record.path, "predictions": [p.as_dict() for p in record.predictions]}


class Sink:
    """Writes records to a text stream; ``close`` finishes the document (and closes the file
    when the sink opened it)."""

    def __init__(self, stream):
        self.stream = stream
        self.owns_stream = False

    def write(self, record: Record) -> None:
        self.stream.write(self.render(record))
        self.stream.flush()

    def render(self, record: Record) -> str:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()
        if self.owns_stream:
            self.stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _json(record: Record) -> str:
    """The record as JSON text that is valid UTF-8: a file name's undecodable bytes (kept by
    ``os.fsdecode`` as lone surrogates) are written as \\udcXX escapes, which read back (json,
    then os.fsencode) to the same bytes."""
    text = json.dumps(record_dict(record), ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class JsonlSink(Sink):
    def render(self, record: Record) -> str:
        return _json(record) + "\n"


class JsonSink(Sink):
    """One JSON array, streamed: valid JSON once closed (also after Ctrl-C)."""

    def __init__(self, stream):
        super().__init__(stream)
        self.count = 0

    def render(self, record: Record) -> str:
        separator = "[\n" if self.count == 0 else ",\n"
        self.count += 1
        return separator + "  " + _json(record)

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        super().close()


class CsvSink(Sink):
    """One row per prediction (k rows per image), or one row with the error."""

    def __init__(self, stream, header: bool = True):
        super().__init__(stream)
        if header:
            self.stream.write(",".join(CSV_COLUMNS) + "\r\n")

    def render(self, record: Record) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if record.error is not None:
            writer.writerow([record.path, "", "", "", "", "", record.error])
        for p in record.predictions:
            writer.writerow([record.path, p.rank, p.index, p.wnid, p.label, f"{p.score:.6g}", ""])
        return buffer.getvalue()


class TableSink(Sink):
    """Human output: a small rich table per image (colour on a terminal, plain when piped)."""

    def __init__(self, stream):
        super().__init__(stream)
        from rich.console import Console

        # Cut to the terminal's width on a terminal only: piped or in a file, nothing is cut.
        width = None if stream.isatty() else 1_000_000
        self.console = Console(file=stream, highlight=False, soft_wrap=True, width=width)

    def write(self, record: Record) -> None:
        from rich.markup import escape
        from rich.table import Table

        if record.error is not None:
            self.console.print(f"[bold]{escape(record.path)}[/bold]  [red]error: {escape(record.error)}[/red]")
        else:
            table = Table(title=escape(record.path), title_justify="left", box=None, pad_edge=False)
            table.add_column("#", justify="right")
            table.add_column("class")
            table.add_column("wnid")
            table.add_column("index", justify="right")
            table.add_column("score", justify="right")
            for p in record.predictions:
                table.add_row(str(p.rank), escape(p.label), p.wnid or "", str(p.index), f"{p.score:.4f}")
            self.console.print(table)
        self.stream.flush()


class ParquetSink(Sink):
    """One row per input with the JSON record's fields (``path``, ``predictions`` as a list of
    structs rank/index/wnid/label/score, ``error``), written in row groups as records stream
    (bounded memory). The file is written under a temporary name and renamed when closed, so
    a killed run never leaves a file without its footer; resuming rewrites the rows already
    there into the new file first (Parquet files cannot be appended to)."""

    ROWS_PER_GROUP = 10_000

    def __init__(self, path: str, resume_from: str | None = None):
        import pyarrow.parquet as pq

        self.path = path
        folder, name = path.rsplit("/", 1) if storage.is_uri(path) else (os.path.dirname(os.path.abspath(path)), os.path.basename(path))
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
        row = record_dict(record)
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

    prediction = pa.struct([("rank", pa.int32()), ("index", pa.int32()), ("wnid", pa.string()), ("label", pa.string()), ("score", pa.float32())])
    return pa.schema([("path", pa.string()), ("predictions", pa.list_(prediction)), ("error", pa.string())])


SINKS = {"table": TableSink, "json": JsonSink, "jsonl": JsonlSink, "csv": CsvSink}


def make_sink(fmt: str, stream, appending: bool = False) -> Sink:
    if fmt == "csv":
        return CsvSink(stream, header=not appending)
    return SINKS[fmt](stream)


SHARD_RECORDS = 100_000  # records per shard file: ~50 MB of jsonl at top-5


def is_shard_folder(output: str) -> bool:
    """``-o DIR/`` (or an existing folder) means a folder of shards rather than one file."""
    return output.endswith(("/", os.sep)) or storage.isdir(output)


def _shards(folder: str, fmt: str) -> list[str]:
    names = sorted(n for n in storage.listdir(folder) if re.fullmatch(rf"part-\d+\.{fmt}", n))
    return [storage.join(folder, n) for n in names]


class ShardSink(Sink):
    """Records into DIR/part-00000.jsonl, part-00001.jsonl, … (a new shard every
    ``records_per_shard``); a resumed run starts a new shard after the existing ones."""

    def __init__(self, folder: str, fmt: str, records_per_shard: int = SHARD_RECORDS):
        if fmt not in LINE_FORMATS:
            raise ValueError(f"a folder of shards needs --format {', '.join(LINE_FORMATS)}. Received: --format {fmt}")
        storage.makedirs(folder)
        self.folder, self.fmt, self.records_per_shard = folder, fmt, records_per_shard
        numbers = [int(os.path.basename(p)[5:].split(".")[0]) for p in _shards(folder, fmt)]
        self.next_shard = max(numbers, default=-1) + 1
        self.shard: Sink | None = None
        self.count = 0

    def write(self, record: Record) -> None:
        if self.shard is None or self.count >= self.records_per_shard:
            self._next()
        self.shard.write(record)
        self.count += 1

    def _next(self) -> None:
        if self.shard is not None:
            self.shard.close()
        self.shard = _file_sink(self.fmt, storage.join(self.folder, f"part-{self.next_shard:05d}.{self.fmt}"))
        self.next_shard += 1
        self.count = 0

    def close(self) -> None:
        if self.shard is not None:
            self.shard.close()


def prepare_output(path: str) -> None:
    """Before any work: make ``path``'s missing parent folders (or the shard folder) and check
    that a file can be written there. A problem is one UserError line."""
    import tempfile

    from .errors import UserError

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


def open_sink(fmt: str, output: str | None, appending: bool = False, stdout=None) -> Sink:
    """The sink for ``--output``: stdout (or the records' own ``stdout``, see
    ``records_only_stdout``), one file (appended to on resume), or a shard folder."""
    if output is None:
        if fmt == "parquet":
            raise ValueError("--format parquet needs --output FILE or DIR/ (Parquet is binary, not for a terminal or a pipe)")
        return make_sink(fmt, stdout or sys.stdout)
    if is_shard_folder(output):
        return ShardSink(output, fmt)
    return _file_sink(fmt, output, appending)


def _uri_sink(fmt: str, path: str, appending: bool) -> Sink:
    """A sink on a new object at ``path``; resuming rewrites the whole records already there
    first (object stores cannot append)."""
    kept = b""
    if appending and storage.exists(path):
        data = storage.read_bytes(path)
        kept = data[: data.rfind(b"\n") + 1]
    raw = storage.open_write(path)
    raw.write(kept)
    stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    sink = make_sink(fmt, stream, appending=bool(kept))
    sink.owns_stream = True
    return sink


@contextlib.contextmanager
def records_only_stdout():
    """A stream on the real stdout for the records, while file descriptor 1 — what anything
    else in the process prints to, Python's sys.stdout and native code alike (Ray's raylet
    and worker messages) — goes to stderr meanwhile. Where stdout is no file descriptor (a
    test runner's capture), the plain sys.stdout."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        yield sys.stdout
        return
    sys.stdout.flush()
    saved = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)
    records = open(saved, "w", encoding=sys.stdout.encoding or "utf-8", newline=None, closefd=True)
    try:
        yield records
    finally:
        try:
            records.flush()
        finally:
            sys.stdout.flush()
            os.dup2(saved, fd)
            records.close()


def _file_sink(fmt: str, path: str, appending: bool = False) -> Sink:
    """A sink on a file it opens (and closes); a CSV appended to keeps its one header."""
    if fmt == "parquet":
        return ParquetSink(path, resume_from=path if appending else None)
    if storage.is_uri(path):
        return _uri_sink(fmt, path, appending)
    stream = open(path, "a" if appending else "w", encoding="utf-8", newline="")
    sink = make_sink(fmt, stream, appending=appending and stream.tell() > 0)
    sink.owns_stream = True
    return sink


# ---------------------------------------------------------------------------- format

SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
LINE_FORMATS = ("jsonl", "csv", "parquet")  # formats a run can resume and a shard folder can hold


def written_format(output: str) -> str | None:
    """The format records already in ``output`` (a file or shard folder) were written in,
    from their first bytes; None when there are none yet."""
    if is_shard_folder(output):
        shards = [p for fmt in LINE_FORMATS for p in _shards(output, fmt)]
        return written_format(sorted(shards)[0]) if shards else None
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
        existing = sorted(p for f in LINE_FORMATS for p in _shards(output, f))
        if existing:  # a second run would add every record again, in new shards
            raise ValueError(f"{output} already holds records ({os.path.basename(existing[0])}…): add --resume to continue it, or name an empty folder.")
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
        raise ValueError("--format parquet needs --output FILE or DIR/ (Parquet is binary, not for a terminal or a pipe)")
    if output is not None and is_shard_folder(output) and fmt not in LINE_FORMATS:
        raise ValueError(f"a folder of shards needs --format {', '.join(LINE_FORMATS)}. Received: --format {fmt}")
    if resume and fmt not in LINE_FORMATS:
        raise ValueError(f"--resume needs --format {', '.join(LINE_FORMATS)}. Received: --format {fmt}")
    if found is not None and found != fmt:
        raise ValueError(f"--resume: {output} holds {found} records; it is left as it is. Received: --format {fmt}")
    return fmt


# ---------------------------------------------------------------------------- resume


def recorded_paths(path: str, fmt: str) -> PathSet:
    """Paths already recorded in an output file (or shard folder), read as a stream into an
    on-disk set (flat memory for any count). A torn last line (a killed writer) does not count;
    in a local file it is cut off so the appended records start on a clean line."""
    if fmt not in LINE_FORMATS:
        raise ValueError(f"--resume needs --format {', '.join(LINE_FORMATS)}. Received: --format {fmt}")
    files = _shards(path, fmt) if is_shard_folder(path) else [path] if storage.exists(path) else []
    done = PathSet()
    for file in files:
        done.add_all(_paths_in(file, fmt))
    return done


def _paths_in(path: str, fmt: str) -> Iterator[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with storage.open_read(path) as handle:
            for batch in pq.ParquetFile(handle).iter_batches(columns=["path"], batch_size=65_536):
                yield from (p for p in batch.column(0).to_pylist() if p is not None)
        return
    if not storage.is_uri(path):
        _cut_torn_tail(path)
    with storage.open_read(path) as handle:
        lines = (line.decode("utf-8", errors="replace") for line in _whole_lines(handle))
        if fmt == "jsonl":
            for line in lines:
                try:
                    yield json.loads(line)["path"]
                except (ValueError, KeyError, TypeError):
                    continue
        else:
            yield from (row["path"] for row in csv.DictReader(lines) if row.get("path"))


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


# ---------------------------------------------------------------------------- report


_launched: list[float] = []


def mark_launch() -> None:
    """The CLI calls this first thing: the summary and the progress count from here, so a run's
    start-up (Ray, actors, the model) is in its time."""
    _launched[:] = [time.perf_counter()]


def launched_at() -> float:
    return _launched[0] if _launched else time.perf_counter()


@dataclass
class Report:
    """Counts what happened; says it on stderr; gives the exit code."""

    classified: int = 0
    failed: int = 0
    skipped: int = 0
    resumed: int = 0
    interrupted: bool = False
    terminated: bool = False  # stopped by SIGTERM (a job scheduler), not by Ctrl-C
    launched: float = field(default_factory=lambda: launched_at())  # the process's start
    started: float = field(default_factory=time.perf_counter)  # the runtime's: engines set it when ready
    ran_on: str = ""  # the device and runtime that ran, for the summary line

    def add(self, record: Record) -> None:
        if record.ok:
            self.classified += 1
        else:
            self.failed += 1

    def skip(self, _source=None) -> None:
        self.skipped += 1

    @property
    def exit_code(self) -> int:
        if self.terminated:
            return EXIT_TERMINATED
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.failed or (self.classified + self.resumed == 0):
            return EXIT_SOME_FAILED
        return EXIT_OK

    def summary(self) -> str:
        """Counts, the time since launch, the rate once the runtime was ready, the start-up."""
        now = time.perf_counter()
        seconds, startup = now - self.launched, max(0.0, self.started - self.launched)
        steady = now - self.started  # under a second (one Ray block, one batch): the whole run's rate
        rate = self.classified / (steady if steady >= 1.0 else max(seconds, 1e-9))
        parts = [f"{self.classified} classified", f"{self.failed} failed", f"{self.skipped} skipped"]
        if self.resumed:
            parts.append(f"{self.resumed} already done")
        head = "terminated: " if self.terminated else "interrupted: " if self.interrupted else ""
        if self.classified + self.failed + self.resumed == 0 and not (self.interrupted or self.terminated):
            head = "no images found: "
        where = f" on {self.ran_on}" if self.ran_on else ""
        return f"{head}{', '.join(parts)} in {seconds:.1f} s ({rate:.1f} images/s){where}; start-up {startup:.1f} s"