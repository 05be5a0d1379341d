"""What the operator knows about each node, built from its MQTT messages.

``luxnode watch`` and the lab's status line read this; it holds no socket, so a
message log replays into the same table.
"""

import json
import re
from dataclasses import dataclass

LEAVES = ("status", "state", "light", "error")


@dataclass
class NodeView:
    device_id: str
    status: str = "unknown"
    light: float | None = None
    led: float | None = None
    control: str | None = None
    target: float | None = None
    error: str | None = None

    @property
    def mode(self) -> str:
        if self.control == "AUTO" and self.target is not None:
            return f"AUTO {self.target:g}%"
        return self.control or "-"


class NodeTable:
    def __init__(self, prefix: str = "luxnode"):
        self.prefix = prefix
        self.nodes: dict[str, NodeView] = {}

    def filters(self, device_id: str | None = None) -> list[str]:
        who = device_id or "+"
        return [f"{self.prefix}/{who}/{leaf}" for leaf in LEAVES]

    def update(self, topic: str, payload: bytes) -> NodeView | None:
        """Apply one message; return the node it changed, or None if it was not a node topic."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 2 or parts[1] not in LEAVES:
            return None
        device_id, leaf = parts
        if not payload and device_id not in self.nodes:
            return None  # a cleared retained topic names no node
        node = self.nodes.setdefault(device_id, NodeView(device_id))
        text = payload.decode("utf-8", "replace")
        if leaf == "status":
            node.status = text.strip() or "unknown"
            return node
        try:
            message = json.loads(text)
        except ValueError:
            node.error = f"unreadable {leaf} payload: {text[:64]!r}"
            return node
        if not isinstance(message, dict):
            node.error = f"unexpected {leaf} payload: {text[:64]!r}"
        elif leaf == "light" and isinstance(message.get("light"), (int, float)):
            node.light = float(message["light"])
        elif leaf == "state" and isinstance(message.get("value"), (int, float)):
            node.led = float(message["value"])
            node.control = message.get("control")
            target = message.get("target")
            node.target = float(target) if isinstance(target, (int, float)) else None
        elif leaf == "error":
            detail = f" (payload {message['payload']!r})" if message.get("payload") else ""
            node.error = f"{message.get('error', 'error')}{detail}"
        return node

    def rows(self, device_id: str | None = None) -> list[NodeView]:
        views = [v for k, v in self.nodes.items() if device_id in (None, k)]
        return sorted(views, key=lambda v: natural_key(v.device_id))


def natural_key(text: str):
    """node-2 sorts before node-10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]
