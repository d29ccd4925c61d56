"""The file operations of the tool, on a local path or a URI that pyarrow.fs reads and writes
(s3://, gs://, hdfs://, file://): the same calls for both. Also the tool's own folder (the
cache), whole-or-nothing writes, and file digests memoised across runs. A leaf."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
from pathlib import Path


def is_url(path: str) -> bool:
    """An http(s) address: fetched over the web (inputs only)."""
    return path[:8].lower().startswith(("http://", "https://"))


def is_uri(path: str) -> bool:
    """s3://, gs://, file://, … — anything pyarrow.fs reads (http(s) URLs are URIs too)."""
    return "://" in path


def local_path(path: str) -> str | None:
    """The path on this machine's disk that ``path`` names (itself, or a file:// URI's path);
    None for an object store."""
    if not is_uri(path):
        return path
    if path.lower().startswith("file://"):
        return filesystem(path)[1]
    return None


class StoreError(ValueError):
    """A URI no filesystem opens: ``reason`` is the store's own words."""

    def __init__(self, uri: str, reason: str):
        super().__init__(f"cannot open {uri} ({reason})")
        self.reason = reason


@functools.lru_cache(maxsize=64)
def filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for a URI, made once per URI (asking what a URI
    names, then reading it, is one store); a bad URI is a StoreError in words."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as error:
        raise StoreError(uri, str(error)) from None


def split(path: str) -> tuple[str, str]:
    """(folder, name) of a path (made absolute) or a URI."""
    if is_uri(path):
        folder, name = path.rstrip("/").rsplit("/", 1)
        return folder, name
    return os.path.split(os.path.abspath(path))


def join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name if is_uri(folder) else os.path.join(folder, name)


def isdir(path: str) -> bool:
    if not is_uri(path):
        return os.path.isdir(path)
    return kind(path) == "folder"


def kind(uri: str) -> str:
    """ "file", "folder" or "missing": what a URI names (one request to its store)."""
    from pyarrow import fs

    store, inner = filesystem(uri)
    found = store.get_file_info(inner.rstrip("/") or inner).type
    return {fs.FileType.NotFound: "missing", fs.FileType.Directory: "folder"}.get(found, "file")


def entries(folder: str) -> list[tuple[str, str, bool]]:
    """(name, URI, is a folder) of what a URI folder holds, sorted by name: one listing of
    one prefix, never the whole bucket's."""
    from pyarrow import fs

    store, inner = filesystem(folder)
    scheme = folder.split("://", 1)[0]
    infos = sorted(store.get_file_info(fs.FileSelector(inner.rstrip("/") or inner)), key=lambda i: i.path)
    return [
        (info.base_name, f"{scheme}://{info.path}", info.type == fs.FileType.Directory)
        for info in infos
        if info.type in (fs.FileType.File, fs.FileType.Directory)
    ]


def exists(path: str) -> bool:
    if not is_uri(path):
        return os.path.exists(path)
    from pyarrow import fs

    store, inner = filesystem(path)
    return store.get_file_info(inner).type != fs.FileType.NotFound


def listdir(folder: str) -> list[str]:
    """Names in a folder ([] when there is none)."""
    if not is_uri(folder):
        return os.listdir(folder) if os.path.isdir(folder) else []
    from pyarrow import fs

    store, inner = filesystem(folder)
    infos = store.get_file_info(fs.FileSelector(inner.rstrip("/"), allow_not_found=True))
    return [info.base_name for info in infos if info.type == fs.FileType.File]


def makedirs(folder: str) -> None:
    if not is_uri(folder):
        os.makedirs(folder, exist_ok=True)
        return
    store, inner = filesystem(folder)
    store.create_dir(inner.rstrip("/"), recursive=True)


def read_bytes(path: str, limit: int | None = None) -> bytes:
    if not is_uri(path):
        with open(path, "rb") as handle:
            return handle.read() if limit is None else handle.read(limit)
    store, inner = filesystem(path)
    with store.open_input_stream(inner) as handle:
        return handle.read() if limit is None else handle.read(limit)


def open_read(path: str):
    """A binary file to read ``path`` from, streamed (random access: Parquet reads its footer)."""
    if not is_uri(path):
        return open(path, "rb")
    store, inner = filesystem(path)
    return store.open_input_file(inner)


def open_write(path: str):
    """A binary stream that (re)writes ``path``; on object stores the object appears whole
    when the stream is closed."""
    store, inner = filesystem(path)
    return store.open_output_stream(inner)


def parquet_target(path: str) -> tuple[object, str]:
    """(filesystem or None, path) as pyarrow.parquet.ParquetWriter takes them."""
    return filesystem(path) if is_uri(path) else (None, path)


def remove(path: str) -> None:
    """A file, or a folder and all it holds, if it is there."""
    if not is_uri(path):
        if os.path.isdir(path):
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.unlink(path)
        return
    from pyarrow import fs

    store, inner = filesystem(path)
    kind = store.get_file_info(inner.rstrip("/")).type
    if kind == fs.FileType.Directory:
        store.delete_dir(inner.rstrip("/"))
    elif kind == fs.FileType.File:
        store.delete_file(inner)


def move(source: str, target: str) -> None:
    if not is_uri(target):
        os.replace(source, target)
        return
    store, inner_source = filesystem(source)
    store.move(inner_source, filesystem(target)[1])


# ---------------------------------------------------------------------------- the tool's own files


def cache_dir() -> Path:
    """``$RESNET_CLI_CACHE``, else ``$XDG_CACHE_HOME/resnet-classify``, else ``~/.cache/resnet-classify``."""
    explicit = os.environ.get("RESNET_CLI_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "resnet-classify"


# The runtimes' own compiled forms of the cached ONNX graphs, per machine: rebuilt from the
# graphs when missing, removed with them by ``cache clear``.
COMPILED_FOLDERS = ("openvino", "onnxruntime")


def compiled_dir(runtime: str) -> Path:
    if runtime not in COMPILED_FOLDERS:
        raise ValueError(f"runtime must be one of {COMPILED_FOLDERS}. Received: runtime={runtime!r}")
    return cache_dir() / runtime


@contextlib.contextmanager
def cache_lock(lock: Path):
    """Hold ``lock`` (a file of the cache; its folder made) while building something there, so
    concurrent runs build it once; yields whether it is held: False where the cache cannot be
    written (the caller then builds for this run only)."""
    from filelock import FileLock

    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        held = FileLock(str(lock))
        held.acquire()
    except OSError:
        yield False
        return
    try:
        yield True
    finally:
        held.release()


def is_verified(path: Path, *parts: Path) -> bool:
    """``path`` (and the other ``parts`` of a model stored as several files) match the sha256s
    recorded beside it (``.sha256``, one per file) when they were written: a stale, truncated
    or altered file does not. Memoised on size and mtime (``file_digest``), so a cold start
    does not re-hash 100 MB."""
    try:
        recorded = path.with_suffix(".sha256").read_text().split()
        return recorded == [file_digest(part, "sha256") for part in (path, *parts)]
    except OSError:
        return False


def write_atomic(path: Path, data: bytes) -> None:
    """Write a whole file or nothing: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise


def hash_of(path: Path, algorithm: str = "md5", chunk_size: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def file_md5(path: Path) -> str:
    return file_digest(path, "md5")


def file_digest(path: Path, algorithm: str = "md5") -> str:
    """A file's digest, remembered across runs while its size and mtime stay the same.

    Hashing 100 MB costs ~0.2 s; a cold single-image run should not pay it every time.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{algorithm}|{path}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_path = cache_dir() / "digest-memo.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if key in memo:
        return memo[key]
    memo[key] = hash_of(path, algorithm)
    try:
        write_atomic(memo_path, json.dumps(memo).encode())
    except OSError:
        pass  # a read-only cache only costs the next run a re-hash
    return memo[key]
