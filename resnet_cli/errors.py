"""The exception types for problems the user can fix: the message is the whole story."""


class UserError(Exception):
    """Something the user can fix: printed as one line, exit 1."""


class ClusterUnreachable(UserError):
    """The Ray cluster named cannot be reached: its own exit status, so a job scheduler can
    tell it from "some inputs failed" (1) and retry."""

    exit_code = 3


class UsageProblem(UserError):
    """An option that cannot work, found only once files are looked at (say, --resume on a
    file of another format): a usage error, exit 2, before any work starts."""
