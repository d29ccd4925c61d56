"""One writer per output: a run holds an exclusive lock on its -o target for its lifetime, so a
second run on the same file or shard folder fails at once, naming the run that holds it."""

from __future__ import annotations

import fcntl
import hashlib
import os
from dataclasses import dataclass

from ..errors import UserError
from ..storage import cache_dir, local_path, split


def lock_path(target: str, shard_folder: bool) -> str:
    """Beside the output on a local disk (``.NAME.lock``, or ``DIR/.lock`` for a shard folder), so
    runs on other machines sharing the disk see it too; for an object store, in this machine's
    cache."""
    local = local_path(target)
    if local is None:
        key = hashlib.sha256(target.rstrip("/").encode("utf-8", "surrogatepass")).hexdigest()[:24]
        folder = cache_dir() / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        return str(folder / f"{key}.lock")
    if shard_folder:
        return os.path.join(local, ".lock")
    folder, name = split(local)
    return os.path.join(folder, f".{name}.lock")


@dataclass
class Claim:
    """A held lock: released (and its file removed) when the run is done; a killed run's lock
    dies with its process (flock), and its file is taken over by the next run."""

    path: str
    fd: int

    def release(self) -> None:
        if self.fd < 0:
            return
        try:
            os.unlink(self.path)  # while still held: a run that opened it meanwhile sees another file
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1


def claim(target: str, shard_folder: bool = False) -> Claim:
    """The lock on ``target``, or a UserError naming the run that holds it."""
    path = lock_path(target, shard_folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            pid = f" (PID {holder})" if holder.isdigit() else ""
            raise UserError(
                f"{target} is being written by another run{pid}; one run writes an output at a time"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed it as we opened it: lock the file that is there now
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return Claim(path, fd)
