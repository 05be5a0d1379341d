"""``luxnode set ID 50`` / ``luxnode set ID auto 60`` / ``on`` / ``off``: command one node.

The command goes to ``{prefix}/ID/set`` with QoS 1; then the node's answer is
awaited: a ``state`` that reflects the command, or an ``error`` that says why not.
"""

import json
import threading

from luxnode.errors import LuxnodeError
from luxnode.ids import check_device_id
from luxnode.operator import connect
from luxnode.operator.table import NodeTable

USAGE = "LEVEL (0..100), 'auto TARGET', 'on' or 'off'"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "set", help="set a node's LED: a level, auto TARGET, on or off",
        description="Send a command to one node and wait for its new state. "
                    "Examples: 'luxnode set node-1 50', 'luxnode set node-1 auto 60', 'luxnode set node-1 off'.",
    )
    parser.add_argument("device_id", metavar="ID", help="the node's device id")
    parser.add_argument("words", nargs="+", metavar="VALUE", help=USAGE)
    parser.add_argument("--fade-ms", type=int, help="transition time for a level, in ms")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the node's answer (default 5)")
    parser.add_argument("--no-wait", action="store_true", help="send and exit without waiting for the node")
    connect.add_broker_arguments(parser)
    parser.set_defaults(func=run)


def _percent(word: str) -> float:
    try:
        value = float(word.rstrip("%"))
    except ValueError:
        raise LuxnodeError(f"{word!r} is not a number; expected {USAGE}") from None
    if not 0 <= value <= 100:
        raise LuxnodeError(f"{word} is outside 0..100 %")
    return int(value) if value.is_integer() else value


def command_from_words(words: list[str], fade_ms: int | None = None) -> dict:
    """The JSON command (SPEC "Commands accepted on set") for the words after the id."""
    lowered = [w.lower() for w in words]
    if lowered in (["on"], ["off"]):
        return {"control": lowered[0].upper()}
    if len(lowered) == 2 and lowered[0] == "auto":
        return {"control": "AUTO", "value": _percent(words[1]), "unit": "%"}
    if len(lowered) == 1:
        command = {"control": "PWM", "value": _percent(words[0]), "unit": "%"}
        if fade_ms is not None:
            command["fade_ms"] = fade_ms
        return command
    raise LuxnodeError(f"cannot read {' '.join(words)!r}; expected {USAGE}")


def answers(command: dict, node) -> bool:
    """Whether the node's state shows that it carried out ``command``."""
    control = command["control"]
    if control == "PWM":
        return node.control == "PWM" and node.led is not None and abs(node.led - command["value"]) < 0.5
    if control == "AUTO":
        return node.control == "AUTO" and node.target == command["value"]
    if control == "OFF":
        return node.led == 0
    return node.led is not None and node.led > 0  # ON restores the last non-zero level


def run(args) -> int:
    check_device_id(args.device_id)
    if args.fade_ms is not None and args.fade_ms < 0:
        raise LuxnodeError(f"--fade-ms {args.fade_ms}: expected 0 or more milliseconds")
    command = command_from_words(args.words, args.fade_ms)
    settings = connect.settings_from_args(args)
    table = NodeTable(settings.prefix)
    news = threading.Condition()
    published = {"sent": False}
    fresh = {"state": None, "error": None}

    def on_message(client, userdata, message):
        with news:
            node = table.update(message.topic, message.payload)
            if node and published["sent"]:
                leaf = message.topic.rsplit("/", 1)[1]
                if leaf in fresh:
                    fresh[leaf] = node
            news.notify_all()

    client = connect.connect(settings, "set")
    client.on_message = on_message
    topic = f"{settings.prefix}/{args.device_id}/set"
    try:
        connect.subscribe_snapshot(client, table.filters(args.device_id), f"{settings.prefix}/{args.device_id}/telemetry")
        known = table.nodes.get(args.device_id)
        if known is None:
            # No retained status: the node never connected here, so the broker holds no session that
            # would keep the command for it; commands are not retained.
            raise LuxnodeError(
                f"{args.device_id} has never connected to {settings.host}:{settings.port}: nothing sent "
                "(a command reaches only a node the broker knows); check the id with 'luxnode devices'"
            )
        with news:
            published["sent"] = True
        info = client.publish(topic, json.dumps(command, separators=(",", ":")), qos=1)
        try:
            info.wait_for_publish(timeout=args.timeout)
        except (RuntimeError, ValueError) as exc:  # paho: the message could not be queued
            raise LuxnodeError(f"the command was not sent ({exc}); is the broker still running?") from None
        if not info.is_published():
            raise LuxnodeError(f"the broker did not acknowledge the command within {args.timeout:g} s")
        if args.no_wait:
            print(f"{args.device_id}: sent {json.dumps(command)}")
            return 0
        if known.status != "online":
            print(f"{args.device_id}: sent {json.dumps(command)}; the node is {known.status}: its session on the "
                  "broker keeps the command (QoS 1) and the node acts on it when it reconnects")
            return 0
        with news:
            news.wait_for(lambda: fresh["error"] or (fresh["state"] and answers(command, fresh["state"])),
                          args.timeout)
        if fresh["error"]:
            raise LuxnodeError(f"{args.device_id} rejected the command: {fresh['error'].error}")
        node = table.nodes[args.device_id]
        if not (fresh["state"] and answers(command, node)):
            raise LuxnodeError(
                f"sent, but {args.device_id} did not report the new state within {args.timeout:g} s; "
                f"check it with 'luxnode watch {args.device_id}'"
            )
        print(f"{args.device_id}: {node.mode}, LED at {node.led:g} %")
        return 0
    finally:
        client.disconnect()
        client.loop_stop()
