"""mosquitto's psk_file: one ``identity:hexkey`` line per client (no ``0x``)."""

import string
from pathlib import Path

from luxnode.mosquitto import lines, secretfile
from luxnode.mosquitto.errors import PskFileError

__all__ = ["PskFileError", "parse", "read_file", "write_file", "render"]

MAX_KEY_BYTES = 256  # TLS PSK keys longer than this are refused by OpenSSL


def parse(text: str, path: str | Path = "<psk_file>") -> dict[str, bytes]:
    """Identities and keys from a psk_file's text; PskFileError names FILE:LINE."""
    return lines.entries(text, path, PskFileError, "identity:hexkey", "identity", decode_key)


def decode_key(hexkey: str) -> bytes:
    hexkey = hexkey.strip()
    if not hexkey:
        raise ValueError("empty key")
    if hexkey.lower().startswith("0x"):
        raise ValueError("key must be plain hex without '0x'")
    if any(c not in string.hexdigits for c in hexkey):
        raise ValueError("key contains non-hexadecimal characters")
    # mosquitto reads the hex as a number: an odd digit count has an implied leading 0.
    key = bytes.fromhex(hexkey if len(hexkey) % 2 == 0 else "0" + hexkey)
    if len(key) > MAX_KEY_BYTES:
        raise ValueError(f"key is {len(key)} bytes, at most {MAX_KEY_BYTES} are allowed")
    return key


def read_file(path: str | Path) -> dict[str, bytes]:
    return parse(lines.read_text(path, PskFileError, "psk file"), path)


def render(keys: dict[str, bytes]) -> str:
    for identity, key in keys.items():
        if not identity or ":" in identity or "\n" in identity or identity != identity.strip():
            raise ValueError(f"invalid PSK identity {identity!r}: non-empty, no ':' or surrounding blanks")
        if not key or len(key) > MAX_KEY_BYTES:
            raise ValueError(f"PSK for {identity!r} must be 1..{MAX_KEY_BYTES} bytes")
    return "".join(f"{identity}:{key.hex()}\n" for identity, key in keys.items())


def write_file(path: str | Path, keys: dict[str, bytes]) -> None:
    """Replace ``path`` (0600, atomically) with ``keys`` (identity -> key bytes)."""
    secretfile.replace(path, render(keys))
