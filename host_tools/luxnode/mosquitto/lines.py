"""The line-oriented files mosquitto reads (mosquitto.conf, password_file, acl_file,
psk_file): UTF-8 text, blank lines and ``#`` comments skipped, and the
``name:value`` entries of the password and PSK files. Every error names FILE:LINE.
"""

from collections.abc import Callable, Iterator
from pathlib import Path

from luxnode.mosquitto.errors import FileFormatError


def read_text(path: str | Path, error: type[FileFormatError], what: str) -> str:
    """The text of ``path``; ``error`` says why it cannot be read (``what``: "acl file", ...)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise error(path, None, f"cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise error(path, None, f"not a text file (a {what} is UTF-8 text)") from None


def content(text: str) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of every line that is neither blank nor a ``#`` comment."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield lineno, line


def entries(text: str, path: str | Path, error: type[FileFormatError], form: str, name: str,
            value: Callable[[str], object]) -> dict:
    """``key:value`` lines as {key: value(rest of the line)}: ``form`` ("username:hash") is
    what a line should look like, ``name`` ("user") what a key is called in messages;
    ``value`` raises ValueError for a bad value. Keys are stripped and must be unique."""
    found: dict = {}
    key_word = form.partition(":")[0]
    for lineno, line in content(text):
        key, sep, rest = line.partition(":")
        key = key.strip()
        if not sep:
            raise error(path, lineno, f"expected '{form}' (no ':' on this line)")
        if not key:
            raise error(path, lineno, f"empty {key_word} before ':'")
        if key in found:
            raise error(path, lineno, f"{name} '{key}' is listed twice")
        try:
            found[key] = value(rest)
        except ValueError as exc:
            raise error(path, lineno, f"{name} '{key}': {exc}") from None
    return found
