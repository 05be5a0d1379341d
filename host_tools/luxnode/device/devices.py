"""``luxnode devices``: the registry, with what the broker last heard from each node.

The status is the broker's view: the node's retained ``status`` message
(``online`` while it is connected, ``offline`` from its last will), read as the
operator. Neither it nor any other retained message carries a time, so "last
seen online" is when a luxnode tool last saw the node online at the lab broker:
this command (it records "now" for every node online), or ``luxnode lab``
(when a node goes offline, and when the lab stops).
"""

from luxnode.errors import LuxnodeError
from luxnode.operator.table import natural_key


def _no_status(entry: dict) -> str:
    # The broker holds no status for the node: "never" only if no tool ever saw it online either.
    return "unknown" if entry.get("last_seen") else "never"


def broker_view(registry: dict, timeout: float) -> dict[str, str]:
    """device id -> last status payload, from the broker's retained messages."""
    from luxnode.operator import connect
    from luxnode.operator.table import NodeTable

    settings = connect.operator_settings(registry)
    table = NodeTable(settings.prefix)
    client = connect.connect(settings, "devices", timeout)
    client.on_message = lambda _client, _userdata, message: table.update(message.topic, message.payload)
    try:
        connect.subscribe_snapshot(client, [f"{settings.prefix}/+/status"], f"{settings.prefix}/+/telemetry",
                                   timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return {device_id: node.status for device_id, node in table.nodes.items()}


def utc_minutes(iso: str | None) -> str:
    """A registry time (ISO 8601) as "2026-11-23 07:05Z"."""
    from datetime import datetime, timezone

    if not iso:
        return "-"
    try:
        return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%Y-%m-%d %H:%MZ")
    except ValueError:
        return iso


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "devices", help="list provisioned devices and what the broker last heard from them",
        description="List the device registry: id, board, TLS mode, firmware version, when it was "
                    "provisioned, its last status as the broker holds it, and when a luxnode tool last "
                    "saw it online.")
    parser.add_argument("--offline", action="store_true", help="do not ask the broker")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the broker (default 3)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import sys

    from rich.console import Console
    from rich.table import Table

    from luxnode.device import registry as reg

    registry = reg.load() if reg.path().exists() else None
    if not registry or not registry["devices"]:
        print("no devices provisioned yet: luxnode provision --port PORT --device-id ID ...")
        return 0
    view, note = None, None
    if not args.offline:
        try:
            view = broker_view(registry, args.timeout)
        except LuxnodeError as exc:
            note = f"status unknown: {exc}"
    if view:
        online = [device_id for device_id, status in view.items() if status == "online"]
        reg.note_seen(online)
    table = Table(box=None, header_style="bold")
    for column in ("device", "board", "tls", "firmware", "provisioned", "status", "last seen online"):
        table.add_column(column)
    for device_id, entry in sorted(registry["devices"].items(), key=lambda item: natural_key(item[0])):
        status = "?" if view is None else view.get(device_id) or _no_status(entry)
        seen = "now" if status == "online" else utc_minutes(entry.get("last_seen"))
        table.add_row(device_id, entry.get("board", "?"), entry.get("tls", "?"), entry.get("firmware") or "?",
                      utc_minutes(entry.get("provisioned_at")), status, seen)
    Console(soft_wrap=True).print(table)
    if note:
        sys.stdout.flush()  # the note follows the table on a terminal
        print(note, file=sys.stderr)
    return 0
