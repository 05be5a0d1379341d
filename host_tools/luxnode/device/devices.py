"""``luxnode devices``: the registry, with what the broker last heard from each node.

"Last seen" is the broker's view: the node's retained ``status`` message
(``online`` while it is connected, ``offline`` from its last will), read as the
operator. A second subscription to a retained $SYS topic acts as a barrier:
its SUBACK arrives after the retained messages of the first.
"""

import threading

from luxnode.errors import LuxnodeError

BARRIER_TOPIC = "$SYS/broker/version"


def broker_view(registry: dict, timeout: float) -> dict[str, str]:
    """device id -> last status payload, from the broker's retained messages."""
    import paho.mqtt.client as mqtt

    broker, operator = registry["broker"], registry["operator"]
    prefix = broker["prefix"]
    seen: dict[str, str] = {}
    done = threading.Event()
    barrier: list[int] = []

    def on_connect(client, _userdata, _flags, reason, _props):
        if reason.is_failure:
            seen["__error__"] = f"the broker refused the operator login ({reason})"
            done.set()
            return
        client.subscribe(f"{prefix}/+/status", qos=0)
        barrier.append(client.subscribe(BARRIER_TOPIC, qos=0)[1])

    def on_subscribe(_client, _userdata, mid, _codes, _props):
        if mid in barrier:
            done.set()

    def on_message(_client, _userdata, message):
        parts = message.topic.split("/")
        if len(parts) == 3 and parts[2] == "status":
            seen[parts[1]] = message.payload.decode(errors="replace")

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="")
    client.username_pw_set(operator["username"], operator["password"])
    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    address = f"{broker['host']}:{broker['password_port']}"
    try:
        client.connect(broker["host"], broker["password_port"], keepalive=10)
    except OSError as exc:
        raise LuxnodeError(f"broker {address} unreachable ({exc.strerror or exc})") from None
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise LuxnodeError(f"broker {address} did not answer within {timeout:g} s")
    finally:
        client.disconnect()
        client.loop_stop()
    if "__error__" in seen:
        raise LuxnodeError(seen["__error__"])
    return seen


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "devices", help="list provisioned devices and what the broker last heard from them",
        description="List the device registry: id, board, TLS mode, firmware version, when it was "
                    "provisioned, and its last status as the broker holds it.")
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
    view, note = {}, None
    if not args.offline:
        try:
            view = broker_view(registry, args.timeout)
        except LuxnodeError as exc:
            note = f"last seen unknown: {exc}"
    table = Table(box=None, header_style="bold")
    for column in ("device", "board", "tls", "firmware", "provisioned", "last seen (broker)"):
        table.add_column(column)
    for device_id, entry in sorted(registry["devices"].items()):
        status = "?" if note or args.offline else view.get(device_id, "never")
        table.add_row(device_id, entry.get("board", "?"), entry.get("tls", "?"),
                      entry.get("firmware") or "?", entry.get("provisioned_at", "?"), status)
    Console(soft_wrap=True).print(table)
    if note:
        print(note, file=sys.stderr)
    return 0
