"""Errors for a bad line in one of mosquitto's files: they name FILE:LINE and the problem."""

from luxnode.errors import LuxnodeError


class FileFormatError(LuxnodeError):
    """A file that mosquitto's syntax does not allow; the message starts with FILE:LINE."""

    def __init__(self, path, line: int | None, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {reason}")


class PasswdError(FileFormatError):
    """A malformed password_file."""


class AclError(FileFormatError):
    """A malformed acl_file."""


class PskFileError(FileFormatError):
    """A malformed psk_file."""


class ConfigError(FileFormatError):
    """A mosquitto.conf value the broker cannot start with."""
