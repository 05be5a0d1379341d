"""``luxnode watch [ID]``: the nodes' live status as a table in the terminal."""

import threading
import time

from luxnode.ids import check_device_id
from luxnode.operator import connect
from luxnode.operator.table import NodeTable


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "watch", help="show the nodes' status, light and LED level live",
        description="Show every node (or one) live: online/offline, light level, LED level, mode, last error.",
    )
    parser.add_argument("device_id", nargs="?", metavar="ID", help="only this node")
    parser.add_argument("--once", action="store_true", help="print the current table and exit")
    connect.add_broker_arguments(parser)
    parser.set_defaults(func=run)


def render(table: NodeTable, device_id: str | None = None, title: str | None = None):
    from rich.table import Table

    grid = Table(title=title, title_justify="left", expand=False)
    for name, justify in (("node", "left"), ("status", "left"), ("light %", "right"),
                          ("LED %", "right"), ("mode", "left"), ("last error", "left")):
        grid.add_column(name, justify=justify, no_wrap=name != "last error")
    for node in table.rows(device_id):
        status_style = {"online": "green", "offline": "red"}.get(node.status, "yellow")
        grid.add_row(
            node.device_id,
            f"[{status_style}]{node.status}[/]",
            "-" if node.light is None else f"{node.light:.1f}",
            "-" if node.led is None else f"{node.led:g}",
            node.mode,
            node.error or "",
        )
    if not table.nodes:
        grid.caption = "no node has published yet"
    return grid


def run(args) -> int:
    from rich.console import Console
    from rich.live import Live

    if args.device_id is not None:
        check_device_id(args.device_id)
    settings = connect.settings_from_args(args)
    table = NodeTable(settings.prefix)
    lock = threading.Lock()
    changed = threading.Event()

    def on_message(client, userdata, message):
        with lock:
            table.update(message.topic, message.payload)
        changed.set()

    client = connect.connect(settings, "watch")
    client.on_message = on_message
    title = f"luxnode nodes on {settings.host}:{settings.port}"
    console = Console()
    try:
        connect.subscribe_snapshot(client, table.filters(args.device_id), f"{settings.prefix}/+/telemetry")
        if args.once:
            with lock:
                console.print(render(table, args.device_id, title))
            return 0
        with Live(console=console, auto_refresh=False) as live:
            while True:
                with lock:
                    live.update(render(table, args.device_id, title), refresh=True)
                changed.wait(1.0)  # redraw on news, and at least once a second
                changed.clear()
                time.sleep(0.1)    # coalesce bursts into one redraw
    finally:
        client.disconnect()
        client.loop_stop()
