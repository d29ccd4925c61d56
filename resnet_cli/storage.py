"""Where outputs go: a local path, or a URI that pyarrow.fs writes (s3://, gs://, hdfs://,
file://). A leaf: the few file operations the sinks need, the same for both."""

from __future__ import annotations

import os


def is_uri(path: str) -> bool:
    return "://" in path


def filesystem(uri: str):
    """(pyarrow filesystem, path inside it) for a URI; a bad URI is a ValueError in words."""
    from pyarrow import fs

    try:
        return fs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot open {uri} ({error})") from None


def join(folder: str, name: str) -> str:
    return folder.rstrip("/") + "/" + name if is_uri(folder) else os.path.join(folder, name)


def isdir(path: str) -> bool:
    if not is_uri(path):
        return os.path.isdir(path)
    from pyarrow import fs

    store, inner = filesystem(path)
    return store.get_file_info(inner.rstrip("/")).type == fs.FileType.Directory


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


def move(source: str, target: str) -> None:
    if not is_uri(target):
        os.replace(source, target)
        return
    store, inner_source = filesystem(source)
    store.move(inner_source, filesystem(target)[1])
