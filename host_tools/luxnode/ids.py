"""The one rule for device ids, shared by provision, sim, set and watch.

A device id becomes an MQTT topic level ({prefix}/ID/...), a username and a
PSK identity, so it holds no wildcard (+ #), no separator (/), nothing invisible:
1-32 ASCII letters, digits, '-' or '_' (32: the longest hostname an ESP32 accepts).
"""

import re

from luxnode.errors import LuxnodeError

MAX_LENGTH = 32
_PATTERN = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_LENGTH}}}")
RULE = f"use 1-{MAX_LENGTH} letters, digits, '-' or '_' (no spaces, '/', '+' or '#')"


def check_device_id(device_id: str, what: str = "device id") -> str:
    if not _PATTERN.fullmatch(device_id or ""):
        raise LuxnodeError(f"invalid {what} {device_id!r}: {RULE}")
    return device_id
