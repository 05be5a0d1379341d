"""mosquitto's password_file: one ``username:hash`` line per user.

Two hash kinds, both as mosquitto 2 and mosquitto_passwd write them, with a
12-byte random salt and standard base64 (with padding):

    $7$<iterations>$<salt>$<hash>   PBKDF2-HMAC-SHA512 of the password over the raw
                                    salt bytes, 64 bytes (mosquitto_passwd: 101 rounds)
    $6$<salt>$<hash>                SHA512(password + salt) (mosquitto 1.6 and earlier)
"""

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from luxnode.mosquitto import lines, secretfile
from luxnode.mosquitto.errors import PasswdError

__all__ = ["PasswdError", "hash_password", "verify", "is_hash", "parse", "read_file", "write_file", "render"]

SALT_LEN = 12
HASH_LEN = 64
PBKDF2_ITERATIONS = 101  # what mosquitto_passwd 2.0 writes
KINDS = {"7": "sha512-pbkdf2", "6": "sha512"}


def hash_password(password: str | bytes, kind: str = "7") -> str:
    """A fresh salted hash in mosquitto's format; ``kind`` is "7" (PBKDF2) or "6" (SHA512)."""
    if kind not in KINDS:
        raise ValueError(f"unknown hash kind {kind!r}: use '7' (sha512-pbkdf2) or '6' (sha512)")
    salt = os.urandom(SALT_LEN)
    digest = _digest(_bytes(password), salt, kind, PBKDF2_ITERATIONS)
    salt_b64, digest_b64 = base64.b64encode(salt).decode(), base64.b64encode(digest).decode()
    if kind == "7":
        return f"$7${PBKDF2_ITERATIONS}${salt_b64}${digest_b64}"
    return f"$6${salt_b64}${digest_b64}"


def verify(password: bytes | str, hashed: str) -> bool:
    """True when ``password`` matches ``hashed``; the digests are compared in constant time."""
    try:
        kind, iterations, salt, expected = _decode(hashed)
    except ValueError:
        return False
    return hmac.compare_digest(_digest(_bytes(password), salt, kind, iterations), expected)


def is_hash(text: str) -> bool:
    """Is ``text`` a well-formed mosquitto $6$/$7$ hash?"""
    try:
        _decode(text)
    except ValueError:
        return False
    return True


def parse(text: str, path: str | Path = "<password_file>") -> dict[str, str]:
    """The users and hashes in a password_file's text; PasswdError names FILE:LINE."""
    return lines.entries(text, path, PasswdError, "username:hash", "user", _checked)


def read_file(path: str | Path) -> dict[str, str]:
    """Read a password_file written by mosquitto_passwd or ``luxnode passwd``."""
    return parse(lines.read_text(path, PasswdError, "password file"), path)


def render(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())


def write_file(path: str | Path, entries: dict[str, str]) -> None:
    """Replace ``path`` (0600, atomically) with ``entries`` (user -> hash)."""
    for user, hashed in entries.items():
        check_username(user)
        _decode(hashed)
    secretfile.replace(path, render(entries))


def check_username(username: str) -> None:
    if not username or ":" in username or "\n" in username or username != username.strip():
        raise ValueError(f"invalid username {username!r}: it must be non-empty, without ':' or surrounding blanks")


def _bytes(password: bytes | str) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else bytes(password)


def _digest(password: bytes, salt: bytes, kind: str, iterations: int) -> bytes:
    if kind == "7":
        return hashlib.pbkdf2_hmac("sha512", password, salt, iterations, HASH_LEN)
    return hashlib.sha512(password + salt).digest()


def _checked(hashed: str) -> str:
    hashed = hashed.strip()
    _decode(hashed)
    return hashed


def _decode(hashed: str) -> tuple[str, int, bytes, bytes]:
    """(kind, iterations, salt, digest) of a mosquitto hash, or ValueError saying what is wrong."""
    fields = hashed.split("$")
    if len(fields) < 2 or fields[0] != "" or fields[1] not in KINDS:
        raise ValueError("password is not a mosquitto hash ('$7$...' or '$6$...'); "
                         "hash plain-text files with 'luxnode passwd -U FILE'")
    kind = fields[1]
    if kind == "7":
        if len(fields) != 5:
            raise ValueError("a '$7$' hash has the form $7$<iterations>$<salt>$<hash>")
        if not fields[2].isdigit() or int(fields[2]) < 1:
            raise ValueError(f"invalid iteration count {fields[2]!r} in '$7$' hash")
        iterations, salt_b64, digest_b64 = int(fields[2]), fields[3], fields[4]
    else:
        if len(fields) != 4:
            raise ValueError("a '$6$' hash has the form $6$<salt>$<hash>")
        iterations, salt_b64, digest_b64 = 0, fields[2], fields[3]
    salt, digest = _b64(salt_b64, "salt"), _b64(digest_b64, "hash")
    if len(salt) != SALT_LEN:
        raise ValueError(f"salt is {len(salt)} bytes, mosquitto uses {SALT_LEN}")
    if len(digest) != HASH_LEN:
        raise ValueError(f"hash is {len(digest)} bytes, SHA512 gives {HASH_LEN}")
    return kind, iterations, salt, digest


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
