"""The lab's device registry ($LUXNODE_HOME/registry.json, 0600).

It holds the broker's address, the operator account and, per device, the
credentials provisioning issued, the firmware version deploy put on it and when
a luxnode tool last saw it online. The broker's auth files are derived from it
(luxnode.device.authfiles), so it is the one place a device's secrets live on
the host.
"""

import contextlib
import fcntl
import json
import secrets
from datetime import datetime, timezone

from luxnode import home as lab_home
from luxnode import ids
from luxnode.errors import LuxnodeError
from luxnode.files import write_private

DEFAULT_BROKER = {
    "host": "127.0.0.1",
    "psk_port": 8883,
    "password_port": 1883,
    "ws_port": 9001,
    "prefix": "luxnode",
}
OPERATOR = "operator"
PSK_BYTES = 32


def path():
    return lab_home.home() / lab_home.REGISTRY


@contextlib.contextmanager
def locked():
    """Hold the registry for one read-modify-write: provisioning runs may overlap."""
    lock_path = lab_home.home() / (lab_home.REGISTRY + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def load() -> dict:
    """The registry with every section present; a new lab gets an operator account."""
    file = path()
    data = {}
    if file.exists():
        try:
            data = json.loads(file.read_text())
        except ValueError as exc:
            raise LuxnodeError(
                f"{file}: not valid JSON ({exc}); fix or remove the file, then provision again"
            ) from None
        if not isinstance(data, dict):
            raise LuxnodeError(f"{file}: expected a JSON object; fix or remove the file")
    broker = data.setdefault("broker", {})
    for key, value in DEFAULT_BROKER.items():
        broker.setdefault(key, value)
    data.setdefault("operator", {"username": OPERATOR, "password": secrets.token_urlsafe(18)})
    data.setdefault("devices", {})
    return data


def save(registry: dict) -> None:
    write_private(path(), json.dumps(registry, indent=2, sort_keys=True) + "\n")


def note_seen(device_ids) -> None:
    """Record now as the time these devices were last seen online (those the registry knows)."""
    if not device_ids or not path().exists():
        return
    try:
        with locked():
            registry = load()
            known = [d for d in device_ids if d in registry["devices"]]
            for device_id in known:
                registry["devices"][device_id]["last_seen"] = _now()
            if known:
                save(registry)
    except (LuxnodeError, OSError):
        pass  # a note, not a duty: the commands that need the registry report what is wrong with it


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def issue_credentials(device_id: str) -> dict:
    """Fresh secrets for one node: username = PSK identity = device id (the ACL's %u)."""
    return {
        "username": device_id,
        "password": secrets.token_urlsafe(24),
        "psk_identity": device_id,
        "psk_key": secrets.token_bytes(PSK_BYTES).hex(),
    }


def record(registry: dict, device_id: str, board: str, tls: str, credentials: dict,
           firmware: str | None) -> dict:
    """Put a (re)provisioned device into the registry, replacing its old credentials."""
    entry = {
        "board": board,
        "tls": tls,
        **credentials,
        "firmware": firmware,
        "provisioned_at": _now(),
    }
    registry["devices"][device_id] = entry
    return entry


def check_device_id(device_id: str) -> str:
    """luxnode.ids' rule, and not the name of a tool's account."""
    ids.check_device_id(device_id)
    if device_id in (OPERATOR, "homeassistant", "dashboard"):  # the tools' accounts (luxnode.lab.accounts)
        raise LuxnodeError(f"device id {device_id!r} is the name of a tool's account; choose another id")
    return device_id
