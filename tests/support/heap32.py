"""The node on the faithful ESP8266's heap, and the burst that measures it, for
tests/firmware/test_heap32.py, tests/firmware/test_heap_frozen.py and bench/node_bench.py.

A ``Chip`` is a node root (board.json of the ESP8266; boot.py, main.py and needs.py as
``luxnode deploy`` writes them), the command that runs MicroPython on it with the chip's
heap (a wrapper script), and the MICROPYPATH. Three ways a board holds lux, one function each:

- ``lux_mpy``: lux/*.mpy on the filesystem (``luxnode deploy``), loaded into the heap;
- ``lux_romfs``: lux in the board's ROMFS partition (``luxnode deploy --romfs``), executed in
  place from the faithful build's mapped partition;
- ``lux_frozen``: lux frozen into the firmware (tools/freeze-manifest.py), on the faithful
  build's frozen-lux variant.

The faithful build's board modules are frozen in, yet their classes and dicts take heap the
chips' C modules do not: the heap is enlarged by that (port.board_heap_overhead), so the
firmware gets the ESP8266's 37,120 bytes (its fixed 38 KB, ports/esp8266/main.c).
"""

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from luxnode.device import romfs
from luxnode.paths import BOARDS_DIR
from luxnode.sim import port
from tests.firmware import node as node_module
from tests.firmware.node import Node, Observer, node_config
from tests.support.micropython import FIRMWARE
from tests.support.qstrs import UNIX_PORT_HELD

ESP8266_HEAP = 37120  # what -X heapsize=38000 gives the 32-bit unix port
COMMANDS = [
    {"control": "PWM", "value": 50, "unit": "%"}, {"control": "AUTO", "value": 40, "unit": "%"},
    {"control": "ON"}, {"control": "OFF", "fade_ms": 200}, {"state": "ON", "brightness": 128, "transition": 2},
    {"state": "OFF"}, {"control": "PWM", "value": "lots"}, "not json", {"state": "ON", "flash": "short"},
]
REFUSED = 3  # of each round of COMMANDS
BURST = 200
TARGET_CONNECTED = 12 * 1024  # issue 8's targets: heap above an idle board, connected and subscribed,
TARGET_AFTER = 14 * 1024  # after the burst,
TARGET_FREE = 8 * 1024  # and the ESP8266's free heap after it (gc.mem_free, as telemetry reports it)
# Qstrs interned since start. Their pools grow by doubling, 20, 40, 80 and 160 entries (300 in
# all) and then one of 320 (2.2 KB, 7 bytes an entry), on the ESP8266 as here. The node stays
# under 300 (on the chip 283 connected, 299 after the burst: the faithful count, 278 and 294, plus
# the names the unix port's C holds, Chip.chip_only_qstrs): crossing it costs 2.2 KB, and where
# the heap is fragmented by then the pool cannot be allocated at all: with lux as .mpy every
# command failed with "MemoryError: allocating 320" when the burst crossed it.
QSTR_BUDGET = 300
@dataclass
class Chip:
    """A faithful ESP8266 holding lux one way: run ``command`` in ``root`` with MICROPYPATH ``path``."""

    how: str  # how the board holds lux, for reports
    micropython: str  # the binary underneath the wrapper
    command: Path  # the wrapper: the binary with the chip's heap
    root: Path
    path: str
    # Names the chip interns that the faithful image holds (qstrs.UNIX_PORT_HELD): none with lux frozen,
    # whose frozen pool holds them on the chip too.
    chip_only_qstrs: int = 0

    def heap_in_use(self, code: str = "") -> int:
        """Heap in use on this chip idle with its Wi-Fi connected, after ``code`` (see idle_heap)."""
        return idle_heap(self.command, self.root, self.path, code)

    def node(self, config) -> "ChipNode":
        return ChipNode(self, config)


class ChipNode(Node):
    """The whole node on a Chip's command, whatever LUXNODE_FAITHFUL says."""

    def __init__(self, chip: Chip, config):
        super().__init__(chip.root, config, board="esp8266", faithful=None)
        self.chip = chip
        self.env["MICROPYPATH"] = chip.path

    def start(self, **env):
        with mock.patch.object(node_module, "executable", lambda: str(self.chip.command)):
            return super().start(**env)


def idle_heap(command, root, path=None, code: str = "") -> int:
    """gc.mem_alloc on an idle board with its Wi-Fi connected (the board modules imported), after
    ``code`` and gc.collect; MICROPYPATH ``path`` (default: the frozen modules, then ``root``)."""
    script = ("import gc, network, machine\n"
              "wlan = network.WLAN(network.STA_IF); wlan.active(True); wlan.connect('lab', '')\n"
              f"{code}\ngc.collect()\nprint('heap', gc.mem_alloc())")
    out = subprocess.run([str(command), "-c", script], env=dict(os.environ, MICROPYPATH=path or f".frozen:{root}"),
                         cwd=root, capture_output=True, text=True, timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("heap "):
            return int(line.split()[1])
    raise RuntimeError(f"{command}: no heap figure:\n{out.stdout}\n{out.stderr}")


def wrapper(folder: Path, binary: str, heapsize: int) -> Path:
    """A script running ``binary`` with ``heapsize``."""
    script = folder / "micropython"
    script.write_text(f'#!/bin/sh\nexec {binary} -X heapsize={heapsize} "$@"\n')
    script.chmod(0o755)
    return script


def board_root(folder: Path) -> Path:
    """The board's filesystem as deploy leaves it, less lux/: board.json, boot.py, main.py, needs.py."""
    root = folder / "fs"
    root.mkdir(parents=True)
    shutil.copy(BOARDS_DIR / "esp8266.json", root / "board.json")
    for name in ("boot.py", "main.py", "needs.py"):
        shutil.copy(FIRMWARE / name, root / name)
    return root


def lux_mpy(folder: Path, binary: str) -> Chip:
    """lux/*.mpy on the filesystem, compiled as ``luxnode deploy`` compiles them for this binary."""
    root = board_root(folder)
    shutil.copytree(port.deployed_firmware(binary) / "lux", root / "lux")
    heapsize = 38000 + port.board_heap_overhead(binary, root)
    return Chip("lux as .mpy on the filesystem (luxnode deploy)", binary, wrapper(folder, binary, heapsize),
                root, f".frozen:{root}", len(UNIX_PORT_HELD))


def lux_romfs(folder: Path, binary: str) -> Chip:
    """lux/*.mpy in the board's ROMFS partition as ``luxnode deploy --romfs`` leaves it (the
    faithful build maps it outside the heap, as the chip maps its flash, and mounts it at /rom)."""
    root = board_root(folder)
    lux = port.deployed_firmware(binary) / "lux"
    image = romfs.image({f"lux/{path.name}": path.read_bytes() for path in sorted(lux.glob("*.mpy"))})
    with open(port.romfs_partition(root), "r+b") as flash:
        flash.write(image)
    path = f".frozen:{root}:/rom:/rom/lib"  # as the ESP8266: the filesystem first, then /rom
    # /rom alone on the path (the ESP8266 build has no __file__ to ask where a module came from)
    where = subprocess.run([binary, "-c", "import lux.node\nprint('loaded')"], cwd=root,
                           env=dict(os.environ, MICROPYPATH="/rom"), capture_output=True, text=True, timeout=30)
    if where.stdout.strip() != "loaded":
        raise RuntimeError(f"{binary}: lux does not load from /rom: {where.stdout}{where.stderr}")
    heapsize = 38000 + port.board_heap_overhead(binary, root)
    return Chip("lux in ROMFS (luxnode deploy --romfs)", binary, wrapper(folder, binary, heapsize), root, path,
                len(UNIX_PORT_HELD))


def lux_frozen(folder: Path) -> Chip:
    """lux frozen into the firmware: the faithful build's variant made with tools/freeze-manifest.py."""
    binary = port.faithful_micropython(frozen_lux=True, board="esp8266")
    root = board_root(folder)
    heapsize = 38000 + port.board_heap_overhead(binary, root)
    return Chip("lux frozen into the firmware (tools/freeze-manifest.py)", binary,
                wrapper(folder, binary, heapsize), root, f".frozen:{root}")


@dataclass
class Burst:
    """What a burst measured: heap above idle connected and after it, free_heap from telemetry after."""

    connected: int
    after: int
    qstrs_connected: int | None  # qstrs interned since start (the faithful build's "heap" line)
    qstrs_after: int | None
    free: list = field(default_factory=list)
    free_after_collect: int = 0
    output: str = ""
    connections: int = 0  # "New client connected" in the broker's log meanwhile: the observer's and the node's
    errors: int = 0  # `error` messages the node published
    expected_errors: int = 0  # the refused commands among the burst


def _qstrs(heap_line):
    return int(heap_line[4]) if len(heap_line) > 4 else None


def run_burst(node: Node, broker, idle: int, warning: str | None = None, device="node-1") -> Burst:
    """Start ``node`` (``device`` its device_id), then BURST QoS 1 commands of every kind; heap above
    ``idle`` connected and after, free_heap in the two telemetry messages after the burst.
    Measures, asserts nothing."""
    connections = broker.log_text().count("New client connected")
    observer = Observer(broker.port)
    node.start()
    try:
        if warning:
            node.expect(warning)
        node.expect("luxnode: connected to", timeout=20)
        observer.expect(f"luxnode/{device}/state")
        observer.expect(f"luxnode/{device}/telemetry")
        node.control("heap")
        connected_line = node.expect("machine: heap").split()
        rounds = BURST // len(COMMANDS)
        commands = COMMANDS * rounds + [{"control": "PWM", "value": 37}] * (BURST - rounds * len(COMMANDS))
        for cmd in commands:
            observer.client.publish(f"luxnode/{device}/set", cmd if isinstance(cmd, str) else json.dumps(cmd), 1)
        observer.expect(f"luxnode/{device}/state", lambda s: s["value"] == 37, timeout=60)
        free = [observer.expect(f"luxnode/{device}/telemetry")["free_heap"] for _ in range(2)]
        node.control("heap")
        heap_line = node.expect("machine: heap").split()
        return Burst(connected=int(connected_line[2]) - idle, after=int(heap_line[2]) - idle, free=free,
                     qstrs_connected=_qstrs(connected_line), qstrs_after=_qstrs(heap_line),
                     free_after_collect=int(heap_line[3]), output=node.drain(),
                     connections=broker.log_text().count("New client connected") - connections,
                     errors=observer.count(f"luxnode/{device}/error"), expected_errors=REFUSED * rounds)
    finally:
        node.stop()
        observer.close()


def checked_burst(chip: Chip, broker, warning: str | None = None) -> Burst:
    """The burst on ``chip`` (discovery and telemetry on), its figures printed, and what holds
    whichever way lux is held: one connection throughout, each command answered, at least 8 KB
    free in every telemetry after, the qstrs within QSTR_BUDGET."""
    cfg = node_config(broker.port, board="esp8266", telemetry_s=2, sensor__dark_raw=50, sensor__bright_raw=975)
    result = run_burst(chip.node(cfg), broker, chip.heap_in_use(), warning)
    print(f"{chip.micropython}: ESP8266 heap above idle ({chip.how}): connected {result.connected / 1024:.1f} KB, "
          f"after {BURST} commands {result.after / 1024:.1f} KB; free_heap {result.free}; "
          f"qstrs {result.qstrs_connected}, {result.qstrs_after} (on the chip +{chip.chip_only_qstrs})")
    assert "mqtt error" not in result.output and "command failed" not in result.output, result.output
    assert result.connections == 2  # observer + node, once
    assert result.errors == result.expected_errors
    assert min(result.free) >= TARGET_FREE, result.free
    chip_qstrs = None if result.qstrs_after is None else result.qstrs_after + chip.chip_only_qstrs
    assert chip_qstrs is None or chip_qstrs <= QSTR_BUDGET, (result.qstrs_connected, result.qstrs_after, chip_qstrs)
    return result
