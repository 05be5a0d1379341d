"""What the dashboard shows on page load: each node's recent light and LED levels,
its last telemetry and its last error, kept by the lab in bounded memory.

MQTT retains only a topic's last message, and telemetry and errors are not
retained at all, so a page opened (or reloaded) would start with empty charts
and forget the last error. The lab listens with the dashboard's account and
keeps the last WINDOW_S seconds per node: at most MAX_NODES nodes, MAX_SAMPLES
samples per series and MAX_PAYLOAD bytes per stored message.
"""

import json
import threading
import time
from collections import deque

WINDOW_S = 300          # the dashboard's chart spans five minutes
MAX_SAMPLES = 600       # per series: a sample every 0.5 s over the window
MAX_NODES = 256
MAX_PAYLOAD = 512       # telemetry and error messages are far smaller
LEAVES = ("light", "state", "telemetry", "error")


def _now_ms() -> int:
    return int(time.time() * 1000)


class NodeHistory:
    def __init__(self):
        self.light: deque = deque(maxlen=MAX_SAMPLES)
        self.led: deque = deque(maxlen=MAX_SAMPLES)
        self.telemetry: dict | None = None
        self.error: dict | None = None

    def as_dict(self, since_ms: int) -> dict:
        def recent(series):
            # One sample older than the window, so the line starts at the left edge.
            kept = [s for s in series if s[0] >= since_ms]
            older = [s for s in series if s[0] < since_ms]
            return ([older[-1]] if older else []) + kept
        return {"light": recent(self.light), "led": recent(self.led),
                "telemetry": self.telemetry, "error": self.error}


class RecentHistory:
    """Fed by ``on_message`` (paho's callback); read by the dashboard server."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.nodes: dict[str, NodeHistory] = {}
        self.lock = threading.Lock()

    def filters(self) -> list[str]:
        return [f"{self.prefix}/+/{leaf}" for leaf in LEAVES]

    def on_message(self, client, userdata, message) -> None:
        self.add(message.topic, message.payload)

    def add(self, topic: str, payload: bytes, at_ms: int | None = None) -> None:
        parts = topic.split("/")
        if len(parts) != 3 or parts[0] != self.prefix or parts[2] not in LEAVES or len(payload) > MAX_PAYLOAD:
            return
        try:
            doc = json.loads(payload)
        except ValueError:
            return  # the page reports unreadable payloads live; history keeps only what it can draw
        if not isinstance(doc, dict):
            return
        at_ms = _now_ms() if at_ms is None else at_ms
        device_id, leaf = parts[1], parts[2]
        with self.lock:
            node = self.nodes.get(device_id)
            if node is None:
                if len(self.nodes) >= MAX_NODES:
                    return
                node = self.nodes[device_id] = NodeHistory()
            if leaf == "light" and _is_number(doc.get("light")):
                node.light.append((at_ms, doc["light"]))
            elif leaf == "state" and _is_number(doc.get("value")):
                node.led.append((at_ms, doc["value"]))
            elif leaf == "telemetry":
                node.telemetry = {"at": at_ms, **doc}
            elif leaf == "error":
                node.error = {"at": at_ms, "error": str(doc.get("error", "")), "payload": str(doc.get("payload", ""))}

    def snapshot(self) -> dict:
        now = _now_ms()
        with self.lock:
            nodes = {device_id: node.as_dict(now - WINDOW_S * 1000) for device_id, node in self.nodes.items()}
        return {"now": now, "window_ms": WINDOW_S * 1000, "nodes": nodes}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class HistoryListener:
    """An MQTT client with the dashboard's account that feeds a RecentHistory."""

    def __init__(self, settings, history: RecentHistory):
        from luxnode.operator import connect

        self.history = history
        self.client = connect.connect(settings, "lab-history")
        self.client.on_message = history.on_message
        # A clean session: subscribe again after paho reconnects.
        self.client.on_connect = lambda client, *args: client.subscribe([(f, 0) for f in history.filters()])
        self.client.subscribe([(f, 0) for f in history.filters()])

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
