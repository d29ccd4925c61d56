"""Arguments, folders, stdin and URI folders → Sources, lazily and in a fixed order, so a
folder of a million files costs no memory up front."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..storage import entries, is_uri, is_url, kind
from .datasets import Columns, dataset_sources, is_dataset
from .decode import sniff
from .fetch import STDIN, hold_stdin_image, open_error
from .source import Source


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def _walk(folder: Path, recursive: bool, include_hidden: bool, seen_dirs: set) -> Iterator[Source]:
    """Files below ``folder`` in sorted order; symlinked folders followed once (loops cut)."""
    try:
        key = (folder.stat().st_dev, folder.stat().st_ino)
    except OSError:
        return
    if key in seen_dirs:
        return
    seen_dirs.add(key)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as error:
        yield Source(str(folder), explicit=True, error=f"cannot read the folder ({open_error(str(folder), error)})")
        return
    subfolders = []
    for entry in entries:
        if not include_hidden and _is_hidden(entry.name):
            continue
        try:
            is_dir = entry.is_dir()  # follows symlinks; False for broken links and loops
        except OSError:
            is_dir = False
        if is_dir:
            subfolders.append(entry)
        else:
            yield Source(str(folder / entry.name), explicit=False)
    if recursive:
        for entry in subfolders:
            yield from _walk(folder / entry.name, recursive, include_hidden, seen_dirs)


def _stdin_head(stream) -> bytes | str:
    """The first 16 bytes on stdin (fewer at its end), read before deciding what stdin holds."""
    raw = getattr(stream, "buffer", None)
    if raw is None:  # a text stream (tests) holds paths
        return ""
    head = b""
    while len(head) < 16 and (chunk := raw.read(16 - len(head))):
        head += chunk
    return head


def _stdin_paths(stream, null: bool = False, head: bytes | str = b"") -> Iterator[str]:
    """Paths from stdin, one a line (or NUL-separated, as ``find -print0`` writes them),
    streamed. Read as bytes where the stream has them: a file name need not be valid UTF-8
    (undecodable bytes survive as ``os.fsdecode`` surrogates, so the file still opens)."""
    raw = getattr(stream, "buffer", None)
    if raw is not None:
        read = raw.read1 if hasattr(raw, "read1") else raw.read
        empty, separator, decode = b"", (b"\0" if null else b"\n"), os.fsdecode
    else:  # a text stream (tests)
        read, empty, separator, decode = stream.read, "", ("\0" if null else "\n"), str
    carriage = separator[:0] if null else ("\r" if separator == "\n" else b"\r")
    rest = head or empty
    while chunk := read(1 << 16):
        *parts, rest = (rest + chunk).split(separator)
        for part in parts:
            if part := part.rstrip(carriage) if carriage else part:
                yield decode(part)
    if rest := rest.rstrip(carriage) if carriage else rest:
        yield decode(rest)


def discover(
    inputs: Iterable[str],
    recursive: bool = False,
    include_hidden: bool = False,
    stdin=None,
    null: bool = False,
    columns: Columns | None = None,
    timeout: float = 30.0,
    open_datasets: bool = True,
) -> Iterator[Source]:
    """Expand files, folders and ``-`` (paths on stdin, one a line, or NUL-separated with
    ``null``) lazily, in a fixed order. Named files that do not exist still come out (they
    become error records), as do paths no file can have (a NUL byte in them).

    Repeats are dropped where they come without the user listing a file twice — a folder
    reached again (named twice, nested, or through a link) and a file named on the command line
    that a named folder also holds — with memory that grows with the arguments and folders,
    never with the file count. Paths on stdin are taken as given, one input each, as xargs
    takes them (``sort -u`` drops repeats): 100 million of them cost no more memory than one.

    A tar shard or a Parquet file — named, found in a folder, or a brace pattern of them
    (``shards-{000..099}.tar``) — is its images (``datasets``), read as they are reached
    (``open_datasets=False``: the file itself, for a count that must not read them)."""
    inputs = list(inputs)  # the arguments: read twice
    seen_dirs: set = set()
    named_files = _named_files(inputs)  # realpaths of the files named as arguments

    def opened(sources: Iterable[Source]) -> Iterator[Source]:
        for source in sources:
            if open_datasets and source.error is None and is_dataset(source.path):
                yield from dataset_sources(source.path, columns or Columns(), timeout)
            else:
                yield source

    def expand(raw: str, explicit: bool) -> Iterator[Source]:
        if "\0" in raw:
            reason = "the path holds a NUL byte, which no file name can (NUL-separated paths on stdin need -0)"
            yield Source(raw.replace("\0", "\\0"), explicit=explicit, error=reason)
            return
        if "{" in raw and not os.path.lexists(raw) and len(patterns := _braces(raw)) > 1:
            for each in patterns:
                yield from expand(each, explicit)
            return
        if is_url(raw):
            yield from opened([Source(raw, explicit=explicit)])
            return
        if is_uri(raw):
            yield from opened(_walk_uri(raw, recursive, include_hidden))
            return
        path = Path(raw)
        if path.is_dir():
            walked = _walk(path, recursive, include_hidden, seen_dirs)
            yield from opened(
                (s for s in walked if os.path.realpath(s.path) not in named_files) if named_files else walked
            )
        else:
            yield from opened([Source(raw, explicit=explicit)])

    argument_files: set[str] = set()
    for raw in inputs:
        if raw == "-":
            stream = stdin if stdin is not None else sys.stdin
            head = _stdin_head(stream)
            if isinstance(head, bytes) and sniff(head):  # one image's bytes (curl … | resnet-classify -)
                hold_stdin_image(head + stream.buffer.read())
                yield Source(STDIN, explicit=True)
                continue
            yield from (s for line in _stdin_paths(stream, null, head) for s in expand(line, True))
            continue
        for source in expand(raw, True):
            if source.explicit and source.error is None and not is_uri(source.path):
                key = os.path.realpath(source.path)
                if key in argument_files:
                    continue
                argument_files.add(key)
            yield source


def _braces(pattern: str) -> list[str]:
    """``a-{000..002}.tar`` → its three names (the shell's and WebDataset's brace patterns)."""
    from braceexpand import braceexpand

    try:
        return list(braceexpand(pattern))
    except Exception:  # noqa: BLE001 - an unbalanced brace: the name as written
        return [pattern]


def _named_files(inputs: Iterable[str]) -> set[str]:
    """The files (not folders, URIs or ``-``) named as arguments, by real path."""
    return {
        os.path.realpath(raw)
        for raw in inputs
        if raw != "-" and "\0" not in raw and not is_uri(raw) and not os.path.isdir(raw)
    }


def _walk_uri(uri: str, recursive: bool, include_hidden: bool) -> Iterator[Source]:
    """The files under a URI folder (sorted), or the URI itself when it names a file. Listed a
    folder (a prefix) at a time, as the local walk is, so the driver holds one folder's names,
    never the whole bucket's."""
    try:
        if kind(uri) != "folder":
            yield Source(uri, explicit=True)
            return
    except (OSError, ValueError):
        yield Source(uri, explicit=True)  # becomes an error record naming the URI
        return

    def walk(folder: str) -> Iterator[Source]:
        try:
            listed = entries(folder)
        except (OSError, ValueError) as error:
            yield Source(folder, explicit=True, error=f"cannot list the folder ({getattr(error, 'reason', error)})")
            return
        folders = []
        for name, path, is_folder in listed:
            if not include_hidden and _is_hidden(name):
                continue
            if not is_folder:
                yield Source(path, explicit=False)
            elif recursive:
                folders.append(path)
        for sub in folders:
            yield from walk(sub)

    yield from walk(uri)
