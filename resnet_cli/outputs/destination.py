"""Where a run's records go, settled once before any work: -o as a path, a shard folder or a
URI; a folder that can be written; the lock (one writer per output); what a killed run left
(folded in); the format (-f, what is already there, the extension); and the rule that records
already there are never replaced without being asked (--resume adds to them, --overwrite
replaces them once the new run completes)."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageProblem, UserError, user_file
from ..storage import filesystem, is_uri, join, listdir, local_path, makedirs, move, read_bytes, remove, split
from . import formats
from . import settings as run_settings
from .claim import Claim, claim
from .parquet import fold, journal_of, journaled_shards, parquet_rows, partial_of
from .shards import ShardSink, is_shard_folder, shard_files
from .sinks import Sink, file_sink, make_sink


def prepare_output(path: str, shard_folder: bool | None = None) -> None:
    """Before any work: make ``path``'s missing parent folders (or the shard folder; None: as
    ``path`` reads) and check that a file can be written there. A problem is one UserError line."""
    import tempfile

    if shard_folder is None:
        shard_folder = is_shard_folder(path)
    if is_uri(path):  # an object store: made when written (folders are names there)
        try:
            makedirs(path if shard_folder else path.rsplit("/", 1)[0])
        except (OSError, ValueError) as error:
            raise UserError(f"cannot write {path} ({error})") from None
        return
    target = os.path.abspath(path)
    folder = target if shard_folder else os.path.dirname(target)
    try:
        if os.path.isdir(target) and not shard_folder:
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


def written_format(output: str, shard_folder: bool) -> str | None:
    """The format records already in ``output`` (a file or shard folder) were written in,
    from their first bytes; None when there are none yet."""
    if shard_folder:
        found = [p for fmt in formats.RESUMABLE for p in shard_files(output, fmt)]
        return written_format(sorted(found)[0], False) if found else None
    try:
        return formats.by_first_bytes(read_bytes(output, 64))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ValueError(f"--resume: cannot read {output} ({error.strerror or error})") from None


def output_location(output: str | None) -> str | None:
    """``-o`` as given: a path, or a URI pyarrow.fs can write (s3://, gs://, hdfs://,
    file://); any other scheme is a usage error in words."""
    if output is None or not is_uri(output):
        return output
    try:
        filesystem(output)
    except ValueError as error:
        raise ValueError(f"-o: {error}. Received: -o {output}") from None
    return output


def output_format(fmt: str | None, output: str | None, resume: bool = False, shard_folder: bool | None = None) -> str:
    """The run's format: -f as given, else what -o's records already are (with --resume), else
    -o's extension (a shard folder: jsonl), else table — and whether it can do what the run
    asks (``formats.TABLE``). A choice that cannot work is a ValueError, worded for a usage
    error. ``shard_folder``: None: as ``output`` reads."""
    if shard_folder is None:
        shard_folder = output is not None and is_shard_folder(output)
    found = written_format(output, shard_folder) if resume and output else None
    if fmt is None:
        if found is not None:
            fmt = found
        elif output is None:
            fmt = "table"
        else:
            fmt = formats.SHARD_DEFAULT if shard_folder else formats.by_suffix(output)
    row = formats.BY_NAME[fmt]
    if output is None and not row.stdout:
        raise ValueError(formats.needs_output(fmt))
    if shard_folder and not row.shards:
        raise ValueError(formats.needs("a folder of shards", fmt, formats.SHARDABLE))
    if found is not None and not formats.BY_NAME[found].resumes:
        raise ValueError(
            f"--resume: {output} holds {found} records, which cannot be continued ({', '.join(formats.RESUMABLE)} "
            "can); --overwrite replaces them"
        )
    if resume and not row.resumes:
        raise ValueError(formats.needs("--resume", fmt))
    if found is not None and found != fmt:
        raise ValueError(f"--resume: {output} holds {found} records; it is left as it is. Received: --format {fmt}")
    return fmt


def replace_hint(fmt: str) -> str:
    """What to do with an output that already holds records, as far as its format allows."""
    overwrite = "--overwrite to start again (the old records stay until the new run completes)"
    if formats.BY_NAME[fmt].resumes:
        return f"add --resume to continue it, or {overwrite}"
    resumable = ", ".join(f"-o FILE{formats.BY_NAME[name].suffixes[0]}" for name in formats.RESUMABLE)
    return f"add {overwrite}; a {fmt} output cannot be continued ({resumable} can, with --resume)"


def settle(output: str | None, fmt: str | None, resume: bool = False, overwrite: bool = False) -> Destination:
    """The run's destination, checked and claimed: usage problems are UsageProblem (exit 2),
    another run on the same output a UserError, all before any work."""
    try:
        output = output_location(output)
        shard_folder = output is not None and is_shard_folder(output)  # asked once (a request on s3)
        asked = fmt
        fmt = output_format(asked, output, resume, shard_folder)  # read-only: usage errors before anything is made
        if output is None:
            return Destination(None, fmt)
    except ValueError as error:
        raise UsageProblem(str(error)) from None
    prepare_output(output, shard_folder)
    held = claim(output, shard_folder)
    try:
        with user_file(output):
            recover(output, shard_folder)
        if resume:  # again: a killed run's journal has become records in the file now
            fmt = output_format(asked, output, resume, shard_folder)
        if not (resume or overwrite) and holds_records(output, shard_folder):
            raise ValueError(f"{output} already holds records: {replace_hint(fmt)}.")
    except ValueError as error:
        held.release()
        raise UsageProblem(str(error)) from None
    except BaseException:
        held.release()
        raise
    return Destination(output, fmt, resume, overwrite, held, shard_folder)


@dataclass
class Destination:
    """A settled -o (or stdout): the sink to write, and, when the run ends, the overwrite
    committed (or abandoned) and the lock released."""

    output: str | None
    format: str
    resume: bool = False
    overwrite: bool = False
    held: Claim | None = None
    shard_folder: bool = False  # -o DIR/: shards of SHARD_RECORDS records
    settings: dict | None = None  # what this run's records are made with (outputs.settings)

    def adopt(self, settings: dict) -> None:
        """This run's settings, before any work: --resume on an output whose records were made
        otherwise is a usage problem naming each difference."""
        self.settings = settings
        if self.output is None or not self.resume:
            return
        with user_file(self.output):
            made = run_settings.read(self.output, self.shard_folder)
        if made is not None and (changed := run_settings.differences(made, settings)):
            raise UsageProblem(
                f"--resume: the records in {self.output} were made with other settings ({'; '.join(changed)}); "
                "run with theirs to continue, or --overwrite to replace them with this run's"
            )

    def _record_settings(self) -> None:
        if self.settings is not None and self.output is not None:
            run_settings.write(self.output, self.shard_folder, self.settings)

    @property
    def staging(self) -> str | None:
        """Where an --overwrite run writes until it completes: beside the output, hidden."""
        if not self.overwrite or self.output is None:
            return None
        if self.shard_folder:
            return join(self.output, ".overwrite/")
        folder, name = split(self.output)
        return join(folder, f".{name}.overwrite")

    def open_sink(self, stdout=None, report=None) -> UserFileSink:
        """The sink for the records: stdout (or the records' own ``stdout``, see
        ``console.records_only_stdout``), one file (added to on --resume), or a shard folder."""
        if self.output is None:
            return UserFileSink(make_sink(self.format, stdout or sys.stdout, report=report), "stdout")
        target = self.staging or self.output
        with user_file(self.output):
            if self.staging is None:  # an --overwrite records its settings once it has replaced the old
                self._record_settings()
            if self.shard_folder:
                return UserFileSink(ShardSink(target, self.format, report=report), self.output)
            return UserFileSink(file_sink(self.format, target, appending=self.resume, report=report), self.output)

    def finish(self, completed: bool) -> str | None:
        """After the sink is closed: an --overwrite run that completed replaces the old records
        (atomically for a file), one that did not leaves them as they were; the lock goes.
        Returns a line for the user when an overwrite was abandoned."""
        note = None
        try:
            if self.staging is not None:
                with user_file(self.output):
                    if completed:
                        _commit(self.staging, self.output, self.shard_folder)
                        self._record_settings()
                    else:
                        remove(self.staging)
                        note = f"{self.output} was left as it was (--overwrite replaces it when a run completes)"
        finally:
            if self.held is not None:
                self.held.release()
        return note


class UserFileSink:
    """A sink on the user's output, whose OS errors (a full disk, a permission) are the user's
    to fix: one line naming the output, never a traceback."""

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


def holds_records(output: str, shard_folder: bool) -> bool:
    """Whether ``output`` holds at least one record (an empty file, a JSON ``[]`` or a CSV
    header alone do not)."""
    if shard_folder:
        return any(holds_records(p, False) for f in formats.SHARDABLE for p in shard_files(output, f))
    try:
        head = read_bytes(output, 1 << 16)
    except FileNotFoundError:
        return False
    found = formats.by_first_bytes(head)
    if found == "parquet":
        return bool(parquet_rows(output))
    if found == "csv":
        return head.count(b"\n") > 1 or not head.endswith(b"\n")
    if found == "json":
        return b"{" in head
    return found is not None


def recover(output: str, shard_folder: bool) -> None:
    """What a killed run left on ``output``: its Parquet journals folded into their files, an
    unfinished --overwrite's staging, half-written settings and --resume's half-rewritten files
    removed. Idempotent; the caller holds the lock."""
    if shard_folder:
        _remove_leftovers(output, f".{run_settings.NAME}.*.tmp", ".part-*.retry")
        remove(join(output, ".overwrite/"))
        for shard in journaled_shards(output):
            fold(shard)
        return
    folder, name = split(output)
    _remove_leftovers(folder, f".{name}.{run_settings.NAME}.*.tmp", f".{name}.retry")
    staging = join(folder, f".{name}.overwrite")
    remove(staging)
    remove(partial_of(staging))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(journal_of(staging))
    fold(output)


def _remove_leftovers(folder: str, *patterns: str) -> None:
    """A killed run's temporaries in a local ``folder`` (write_atomic's for the settings,
    resume.rewrite's); on an object store an unfinished object never appears."""
    local = local_path(folder)
    if local is None or not os.path.isdir(local):
        return
    for pattern in patterns:
        for stale in Path(local).glob(pattern):
            stale.unlink(missing_ok=True)


def _commit(staging: str, output: str, shard_folder: bool) -> None:
    if not shard_folder:
        move(staging, output)
        return
    for fmt in formats.SHARDABLE:
        for old in shard_files(output, fmt):
            remove(old)
    for name in listdir(staging):
        move(join(staging, name), join(output, name))
    remove(staging)
