"""Everything the tool says goes to stderr, one prefixed line at a time: stdout is for data.
And the one way file descriptors are redirected (native code writes to them, not to sys.*)."""

from __future__ import annotations

import contextlib
import os
import sys

PROGRAM = "resnet-classify"


def stderr_line(message: str) -> None:
    sys.stderr.write(f"{PROGRAM}: {message}\n")
    sys.stderr.flush()


@contextlib.contextmanager
def fd_redirected(fd: int, to_fd: int):
    """File descriptor ``fd`` writes to ``to_fd`` meanwhile; yields a duplicate of the original
    ``fd`` (valid inside the block only), restored on the way out."""
    saved = os.dup(fd)
    os.dup2(to_fd, fd)
    try:
        yield saved
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # a test runner's capture has none
        return None


@contextlib.contextmanager
def records_only_stdout():
    """A stream on the real stdout for the records, while file descriptor 1 — what anything
    else in the process prints to, Python's sys.stdout and native code alike (Ray's raylet
    and worker messages) — goes to stderr meanwhile. Where stdout is no file descriptor (a
    test runner's capture), the plain sys.stdout."""
    fd, to_fd = _fileno(sys.stdout), _fileno(sys.stderr)
    if fd is None or to_fd is None:
        yield sys.stdout
        return
    sys.stdout.flush()
    with fd_redirected(fd, to_fd) as saved:
        records = open(saved, "w", encoding=sys.stdout.encoding or "utf-8", closefd=False)
        try:
            yield records
        finally:
            try:
                records.flush()
            finally:
                sys.stdout.flush()
                records.close()


@contextlib.contextmanager
def quiet_native_stderr():
    """Hide the C++ start-up chatter a library prints straight to fd 2 (TensorFlow on import);
    show it only if the block fails."""
    import tempfile

    fd = _fileno(sys.stderr)
    if fd is None:
        yield
        return
    sys.stderr.flush()
    with tempfile.TemporaryFile() as sink:
        try:
            with fd_redirected(fd, sink.fileno()):
                yield
        except BaseException:
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
