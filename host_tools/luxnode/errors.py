"""The one exception type the CLI turns into a one-line message."""


class LuxnodeError(Exception):
    """A failure the user can act on. The message says what happened and what to do."""

    exit_code = 2
