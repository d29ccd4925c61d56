"""Where the tool keeps its own files, and file digests memoised by (path, size, mtime)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def cache_dir() -> Path:
    """``$RESNET_CLI_CACHE``, else ``$XDG_CACHE_HOME/resnet-classify``, else ``~/.cache/resnet-classify``."""
    explicit = os.environ.get("RESNET_CLI_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "resnet-classify"


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
