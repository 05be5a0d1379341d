"""``luxnode sim``: run simulated nodes until Ctrl-C."""

import argparse
import re


def add_parser(subparsers):
    p = subparsers.add_parser(
        "sim", help="run nodes: the firmware on the MicroPython unix port with a simulated board",
        description="Run the firmware on the MicroPython unix port with a simulated board "
        "(light sensor, LED strip, Wi-Fi). Publish a number to {prefix}/{id}/sim/ambient to "
        "change a node's ambient light. Ctrl-C stops every node.",
    )
    p.add_argument("--broker", metavar="HOST:PORT", help="the broker the nodes connect to")
    p.add_argument("--device-id", metavar="ID", help="device id (with --count N: ID-1 .. ID-N)")
    p.add_argument("--fs", metavar="DIR", help="boot this node filesystem root (config.json, board.json, "
                   "and deployed firmware if any) instead of writing one from the options")
    p.add_argument("--dir", metavar="DIR", help="keep the nodes' filesystem roots in DIR/<id> "
                   "(default: a temporary folder removed at exit)")
    p.add_argument("--board", default="sim", help="board file for the written root (default: sim)")
    p.add_argument("--prefix", default="luxnode", help="topic prefix (default: luxnode)")
    p.add_argument("--psk-identity", metavar="I", help="TLS-PSK identity (default: each node's device id)")
    p.add_argument("--psk-key", metavar="HEX", help="TLS-PSK key in hex: connect with TLS-PSK")
    p.add_argument("--username", metavar="U", help="MQTT username (with --password)")
    p.add_argument("--password", metavar="P", help="MQTT password")
    p.add_argument("--ambient", metavar="PCT", type=float, help="starting ambient light %% (default 20)")
    p.add_argument("--keepalive", metavar="S", type=int, default=60, help="MQTT keepalive in s (default 60)")
    p.add_argument("--interval", metavar="S", type=float, default=5,
                   help="light publish interval in s (config sensor.interval_s, default 5)")
    p.add_argument("--count", metavar="N", type=int, default=1, help="start N nodes (ID-1 .. ID-N) with the same password and PSK key")
    p.add_argument("--telemetry", metavar="S", type=float, help="telemetry period in s (config telemetry_s, default 60)")
    p.add_argument("--faithful", action="store_true",
                   help="run on a 32-bit MicroPython built from source with the board frozen in and the chip's "
                   "heap, clock, watchdog, PWM, ADC and socket behaviour (--board esp32, esp32s3, esp32c3 or "
                   "esp8266; built once, about a minute)")
    p.add_argument("--micropython", metavar="PATH", help="the MicroPython unix port to run "
                   "(default: $LUXNODE_MICROPYTHON, the one beside this Python, then PATH)")
    p.set_defaults(func=run)


FAITHFUL_BOARDS = ("esp32", "esp32s3", "esp32c3", "esp8266")


def _check(args):
    from luxnode.errors import LuxnodeError
    from luxnode.ids import check_device_id

    if args.faithful and args.micropython:
        raise LuxnodeError("--faithful runs its own 32-bit build; drop --micropython")
    if args.faithful and not args.fs and args.board not in FAITHFUL_BOARDS:
        raise LuxnodeError(f"--faithful simulates a chip: give --board {', '.join(FAITHFUL_BOARDS)}")
    if args.fs:
        if args.count != 1:
            raise LuxnodeError("--fs boots one node; drop --count or give each node its own --fs run")
        return None
    if not args.broker or args.device_id is None:
        raise LuxnodeError("give --broker HOST:PORT and --device-id ID, or --fs DIR of a provisioned node")
    match = re.fullmatch(r"\[?([^\[\]]*?)\]?:(\d{1,5})", args.broker)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise LuxnodeError(f"--broker {args.broker!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
    last_id = args.device_id if args.count == 1 else f"{args.device_id}-{args.count}"
    check_device_id(args.device_id, "--device-id")
    check_device_id(last_id, f"--device-id with --count {args.count} (up to {last_id!r})")
    if args.psk_key is not None:
        if not re.fullmatch(r"(?:[0-9a-fA-F]{2}){1,64}", args.psk_key):
            raise LuxnodeError("--psk-key: expected an even number of hex digits (at most 128)")
    elif args.psk_identity:
        raise LuxnodeError("--psk-identity needs --psk-key")
    if (args.username is None) != (args.password is None):
        raise LuxnodeError("give --username and --password together")
    if args.ambient is not None and not 0 <= args.ambient <= 100:
        raise LuxnodeError(f"--ambient {args.ambient:g}: expected a percentage from 0 to 100")
    if not 1 <= args.keepalive <= 65535:
        raise LuxnodeError(f"--keepalive {args.keepalive}: expected 1..65535 s")
    if not 1 <= args.count <= 256:
        raise LuxnodeError(f"--count {args.count}: expected 1..256")
    if not args.interval > 0:
        raise LuxnodeError("--interval: expected a positive number of seconds")
    if args.telemetry is not None and not 1 <= args.telemetry <= 86400:
        raise LuxnodeError(f"--telemetry {args.telemetry:g}: expected 1..86400 s")
    return match.group(1) or "127.0.0.1", int(match.group(2))


def run(args: argparse.Namespace) -> int:
    import shutil
    import time
    from pathlib import Path

    from luxnode.sim import scratch as sim_scratch
    from luxnode.sim.fsroot import node_config, write_root
    from luxnode.sim.node import exit_with_parent_signals, micropython, start_nodes, stop_nodes
    from luxnode.sim.port import board_name

    address = _check(args)
    exit_with_parent_signals()  # from here SIGTERM ends a build or the nodes cleanly, as Ctrl-C does
    board = board_name(Path(args.fs)) if args.fs else args.board
    interpreter = micropython(args.micropython, args.faithful, board)  # builds the faithful one if need be
    sim_scratch.remove_orphans()
    scratch = None
    if args.fs:
        folders = [Path(args.fs)]
    else:
        host, port = address
        ids = [args.device_id] if args.count == 1 else [f"{args.device_id}-{i}" for i in range(1, args.count + 1)]
        if args.dir:
            base = Path(args.dir)
        else:
            base = scratch = sim_scratch.make()
        folders = []
        for device_id in ids:
            config = node_config(
                device_id, host, port, board=args.board, prefix=args.prefix,
                username=args.username, password=args.password,
                psk_identity=args.psk_identity, psk_key=args.psk_key, keepalive=args.keepalive,
                interval_s=args.interval, telemetry_s=args.telemetry,
            )
            folders.append(write_root(base / device_id, config))

    nodes = []
    try:
        nodes = start_nodes(folders, ambient=args.ambient, micropython=interpreter, faithful=args.faithful)
        while any(node.alive() for node in nodes):
            time.sleep(0.2)
        return 1  # every node stopped by itself (the reasons are in the output above)
    finally:
        stop_nodes(nodes)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
