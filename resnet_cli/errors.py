"""The exception types for problems the user can fix: the message is the whole story."""


class UserError(Exception):
    """Something the user can fix: printed as one line, exit 1."""


class UsageProblem(UserError):
    """An option that cannot work, found only once files are looked at (say, --resume on a
    file of another format): a usage error, exit 2, before any work starts."""
