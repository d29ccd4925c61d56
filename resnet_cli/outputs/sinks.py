"""Records → table / json / jsonl / csv text, each record written whole and flushed; the sink
of a format (``formats.TABLE``) on a stream, a file or a URI object."""

from __future__ import annotations

import csv
import io

from ..records import Record, path_display, path_text
from ..storage import exists, local_path, open_write, read_bytes
from .formats import BY_NAME, CSV_COLUMNS


class Sink:
    """Writes records to a text stream; ``close`` finishes the document (and closes the file
    when the sink opened it). ``appending``: after records already there; ``report``: the
    run's Report (a page shows its counts at the end)."""

    def __init__(self, stream, appending: bool = False, report=None):
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


class JsonlSink(Sink):
    def render(self, record: Record) -> str:
        return record.as_json() + "\n"


class JsonSink(Sink):
    """One JSON array, streamed: valid JSON once closed (also after Ctrl-C)."""

    def __init__(self, stream, appending: bool = False, report=None):
        super().__init__(stream)
        self.count = 0

    def render(self, record: Record) -> str:
        separator = "[\n" if self.count == 0 else ",\n"
        self.count += 1
        return separator + "  " + record.as_json()

    def close(self) -> None:
        self.stream.write("[]\n" if self.count == 0 else "\n]\n")
        super().close()


class CsvSink(Sink):
    """One row per prediction (k rows per image), or one row with the error."""

    def __init__(self, stream, appending: bool = False, report=None):
        super().__init__(stream)
        if not appending:  # one header per file
            self.stream.write(",".join(CSV_COLUMNS) + "\r\n")

    def render(self, record: Record) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if record.error is not None:
            writer.writerow([path_text(record.path), "", "", "", "", "", record.error])
        for p in record.predictions:
            writer.writerow([path_text(record.path), p.rank, p.index, p.wnid, p.label, f"{p.score:.6g}", ""])
        return buffer.getvalue()


class TableSink(Sink):
    """Human output: a small rich table per image (colour on a terminal, plain when piped)."""

    def __init__(self, stream, appending: bool = False, report=None):
        super().__init__(stream)
        from rich.console import Console

        class QuietOnBrokenPipe(Console):
            def on_broken_pipe(self) -> None:  # rich exits 1; the CLI ends quietly (ExitStatus)
                self.quiet = True
                raise BrokenPipeError(32, "Broken pipe")

        # Cut to the terminal's width on a terminal only: piped or in a file, nothing is cut.
        width = None if stream.isatty() else 1_000_000
        self.console = QuietOnBrokenPipe(file=stream, highlight=False, soft_wrap=True, width=width)

    def write(self, record: Record) -> None:
        from rich.markup import escape
        from rich.table import Table

        if record.error is not None:
            name = escape(path_display(record.path))
            self.console.print(f"[bold]{name}[/bold]  [red]error: {escape(record.error)}[/red]")
        else:
            table = Table(title=escape(path_display(record.path)), title_justify="left", box=None, pad_edge=False)
            table.add_column("#", justify="right")
            table.add_column("class")
            table.add_column("wnid")
            table.add_column("index", justify="right")
            table.add_column("score", justify="right")
            for p in record.predictions:
                table.add_row(str(p.rank), escape(p.label), p.wnid or "", str(p.index), f"{p.score:.4f}")
            self.console.print(table)
        self.stream.flush()


def make_sink(fmt: str, stream, appending: bool = False, report=None) -> Sink:
    """The sink of ``fmt`` on a text stream."""
    return BY_NAME[fmt].sink()(stream, appending=appending, report=report)


def file_sink(fmt: str, path: str, appending: bool = False, report=None) -> Sink:
    """A sink on a file it opens (and closes), on this machine's disk (a file:// URI too) or an
    object store; a CSV appended to keeps its one header."""
    if BY_NAME[fmt].binary:
        return BY_NAME[fmt].sink()(path, appending=appending, settings=getattr(report, "settings", None))
    local = local_path(path)
    if local is None:
        return uri_sink(fmt, path, appending, report)
    stream = open(local, "a" if appending else "w", encoding="utf-8", newline="")
    sink = make_sink(fmt, stream, appending=appending and stream.tell() > 0, report=report)
    sink.owns_stream = True
    return sink


def uri_sink(fmt: str, path: str, appending: bool, report=None) -> Sink:
    """A sink on a new object at ``path``; resuming rewrites the whole records already there
    first (object stores cannot append)."""
    kept = b""
    if appending and exists(path):
        data = read_bytes(path)
        kept = data[: data.rfind(b"\n") + 1]
    raw = open_write(path)
    raw.write(kept)
    stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
    sink = make_sink(fmt, stream, appending=bool(kept), report=report)
    sink.owns_stream = True
    return sink
