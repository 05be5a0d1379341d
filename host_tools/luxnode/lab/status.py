"""The lab's live status line: who is online, light and LED per node, broker health.

It also notes in the registry when it last saw each node online (when the node
goes offline, and when the lab stops), for ``luxnode devices``.

On a terminal it is one line redrawn in place; otherwise (a log, a pipe) a line
is printed only when the summary changes, so the log stays readable.
"""

import threading
import time

from luxnode.device import registry
from luxnode.operator import connect
from luxnode.operator.table import NodeTable


class StatusLine:
    def __init__(self, lab):
        from rich.console import Console

        self.lab = lab
        self.console = Console()
        settings = connect.operator_settings(lab.registry)  # its password port is the lab's
        self.table = NodeTable(settings.prefix)
        self.online: set[str] = set()
        self.lock = threading.Lock()
        self.client = connect.connect(settings, "lab")
        self.client.on_message = self._on_message
        connect.subscribe_snapshot(self.client, self.table.filters(), f"{settings.prefix}/+/telemetry")
        self.live = None

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.table.update(message.topic, message.payload)
            online = {node.device_id for node in self.table.nodes.values() if node.status == "online"}
            gone, self.online = self.online - online, online
        if gone:
            registry.note_seen(gone)  # the moment they went offline is when they were last seen

    def summary(self) -> str:
        with self.lock:
            rows = self.table.rows()
        online = sum(1 for node in rows if node.status == "online")
        return f"{online}/{len(rows)} nodes online"

    def line(self, width: int) -> str:
        with self.lock:
            rows = self.table.rows()
        return render_line(rows, width, time.strftime("%H:%M:%S"))

    def run_until(self, stop: threading.Event) -> bool:
        """Show the status until ``stop`` is set (True) or the broker exits (False)."""
        from rich.live import Live
        from rich.text import Text

        last = None
        if self.console.is_terminal:
            self.live = Live(console=self.console, auto_refresh=False, transient=True)
            self.live.start()
        while not stop.wait(1.0 if self.live else 0.2):
            if self.lab.broker.poll() is not None:
                self.console.print(f"luxnode lab: the broker exited with status {self.lab.broker.returncode}; "
                                   f"see {self.lab.broker_log}")
                return False
            summary = self.summary()
            if self.live:
                text = Text.from_markup(self.line(self.console.width), overflow="ellipsis")
                text.no_wrap = True
                self.live.update(text, refresh=True)
            elif summary != last:
                print(f"luxnode lab: {summary}", flush=True)
            last = summary
        return True

    def close(self) -> None:
        if self.live:
            self.live.stop()
        self.client.disconnect()
        self.client.loop_stop()
        registry.note_seen(self.online)  # the nodes stop after the status line


def render_line(rows, width: int, clock: str) -> str:
    """The status line (rich markup) in at most ``width`` columns: every node in words where
    that fits, else each node as light/LED, else as many nodes as fit and how many more."""
    from rich.text import Text

    def fits(markup: str) -> bool:
        return Text.from_markup(markup).cell_len <= width

    def level(value) -> str:
        return "-" if value is None else f"{value:.0f}"

    def mark(node) -> str:
        return "[green]●[/]" if node.status == "online" else "[red]○[/]"

    online = sum(1 for node in rows if node.status == "online")
    words = "  ".join(f"{mark(n)} {n.device_id} light {level(n.light)}% LED {level(n.led)}%" for n in rows)
    full = f"{clock}  {online}/{len(rows)} nodes online" + (f"  {words}" if rows else "")
    if fits(full):
        return full
    parts = [f"{mark(n)}{n.device_id} {level(n.light)}/{level(n.led)}" for n in rows]
    head = f"{clock} {online}/{len(rows)} online"
    for shown in range(len(parts), -1, -1):  # as many nodes as fit, with the legend if it fits too
        more = f" +{len(parts) - shown} more" if shown < len(parts) else ""
        for legend in (" (light/LED %):", ""):
            line = " ".join([head + legend, *parts[:shown]]) + more
            if fits(line):
                return line
    return head
