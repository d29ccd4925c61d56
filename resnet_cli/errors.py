"""The exit statuses, and the exception types for problems the user can fix (the message is
the whole story: the CLI prints it as one line, never a traceback)."""

from __future__ import annotations

import contextlib
import enum


class ExitStatus(enum.IntEnum):
    """Every status the tool exits with: the Report, the CLI and the README's table use these."""

    OK = 0  # every input classified
    SOME_FAILED = 1  # some inputs failed, or nothing was classified, or a user error
    USAGE = 2  # a bad option value or combination, before any work
    CLUSTER_UNREACHABLE = 3  # the Ray cluster named cannot be reached (a scheduler may retry)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT)
    BROKEN_PIPE = 141  # the reader of stdout went away (| head), as coreutils end (128 + SIGPIPE)
    TERMINATED = 143  # SIGTERM (128 + SIGTERM)

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitStatus.OK: "all classified",
    ExitStatus.SOME_FAILED: "some inputs failed (or none found)",
    ExitStatus.USAGE: "usage error",
    ExitStatus.CLUSTER_UNREACHABLE: "the Ray cluster cannot be reached",
    ExitStatus.INTERRUPTED: "interrupted",
    ExitStatus.BROKEN_PIPE: "stdout's reader went away",
    ExitStatus.TERMINATED: "terminated",
}


class UserError(Exception):
    """Something the user can fix: printed as one line."""

    exit_status = ExitStatus.SOME_FAILED


class ClusterUnreachable(UserError):
    """The Ray cluster named cannot be reached: its own exit status, so a job scheduler can
    tell it from "some inputs failed" and retry."""

    exit_status = ExitStatus.CLUSTER_UNREACHABLE


class UsageProblem(UserError):
    """An option that cannot work, found only once files are looked at (say, --resume on a
    file of another format): a usage error, before any work starts."""

    exit_status = ExitStatus.USAGE


class InputError(UserError, ValueError):
    """An input that cannot be classified, raised by the Python API when asked to
    (``errors="raise"``) instead of returning its error record."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


class WeightsError(UserError):
    """A problem with the weight file: missing, corrupt, another md5, shapes that do not fit."""


@contextlib.contextmanager
def user_file(target: str):
    """OS errors on a file the user named (a full disk, a closed pipe, a permission) are theirs
    to fix: one line naming the file. Outside such a block an OSError is a bug of ours and keeps
    its traceback."""
    try:
        yield
    except BrokenPipeError:
        raise  # the reader went away (| head): the run ends quietly, not with an error line
    except OSError as error:
        raise UserError(f"{error.filename or target}: {error.strerror or error}") from None
