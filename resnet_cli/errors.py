"""The one exception type for problems the user can fix: printed as one line, exit 1."""


class UserError(Exception):
    """Something the user can fix; the message is the whole story."""
