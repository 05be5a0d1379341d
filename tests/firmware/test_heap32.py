"""The ESP8266 node on its own heap: a 32-bit MicroPython with the simulated board frozen
in (LUXNODE_MICROPYTHON, else the board-faithful build), a GC heap of 37,120 bytes (the ESP8266
port's fixed 38 KB, ports/esp8266/main.c), and the firmware either in ROMFS, as a board flashed
with the ESP8266_GENERIC FLASH_2M_ROMFS build runs it after `luxnode deploy --romfs` (the build's
ROMFS partition, the board folder's .romfs, mapped outside the GC heap as the chip maps its
flash and mounted at /rom at start: the .mpy execute in place, so their code costs no heap), or
as lux/*.mpy on its filesystem (`luxnode deploy`). The heap is the chip's plus what the frozen
board modules' classes take (port.board_heap_overhead), which the chip's C modules do not.

A burst of 200 QoS 1 commands of every kind, with discovery and telemetry on: one
connection throughout, each command answered, at least 8 KB free in every telemetry.
(tests/support/heap32.py holds the chips and the burst; the bench measures the same.)"""

import os
import subprocess

import pytest

from tests.firmware.node import node_config
from tests.sim.faithful import faithful_binary
from tests.support.heap32 import lux_mpy, lux_romfs, run_burst

CONNECTED_KB = 12  # issue 8's targets; measured 11.6 KB above idle (frozen into the firmware: 7.8 KB)
AFTER_BURST_KB = 14  # measured 12.4 KB, 23,264 B free after it (frozen: 8.3 KB)
# Qstrs interned since start. Their pools grow by doubling, 20, 40, 80 and 160 entries (300 in
# all) and then one of 320 (2.2 KB, 7 bytes an entry), on the ESP8266 as here. The node stays
# under 300 (measured 275 connected, 292 after the burst): crossing it costs 2.2 KB, and where
# the heap is fragmented by then the pool cannot be allocated at all: with lux as .mpy every
# command failed with "MemoryError: allocating 320" when the burst crossed it.
QSTR_BUDGET = 300


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


def burst(chip, broker, warning=None):
    """200 QoS 1 commands of every kind: one connection throughout, each answered, at least 8 KB
    free in every telemetry after. The heap above idle connected and after."""
    idle = chip.heap_in_use()
    cfg = node_config(broker.port, board="esp8266", telemetry_s=2, sensor__dark_raw=50, sensor__bright_raw=975)
    result = run_burst(chip.node(cfg), broker, idle, warning)
    print(f"ESP8266 heap above idle ({chip.how}): connected {result.connected / 1024:.1f} KB, after 200 commands "
          f"{result.after / 1024:.1f} KB; free_heap {result.free}; qstrs {result.qstrs_connected}, "
          f"{result.qstrs_after}")
    assert "mqtt error" not in result.output and "command failed" not in result.output, result.output
    assert result.connections == 2  # observer + node, once
    assert result.errors == result.expected_errors
    assert min(result.free) >= 8192, result.free
    assert result.qstrs_after <= QSTR_BUDGET, (result.qstrs_connected, result.qstrs_after)
    return result


def test_esp8266_node_in_romfs_meets_the_heap_targets_through_a_burst(mosquitto, tmp_path):
    chip = lux_romfs(tmp_path, micropython32(romfs=True))
    result = burst(chip, mosquitto("allow_anonymous true\n"))
    assert result.connected <= CONNECTED_KB * 1024 and result.after <= AFTER_BURST_KB * 1024, result


def test_esp8266_node_from_its_filesystem_warns_and_keeps_8_kb_free_through_a_burst(mosquitto, tmp_path):
    """lux/*.mpy on the filesystem, loaded into the ESP8266's heap (what `luxnode deploy`
    does): the node warns at start that little is left (flash lux frozen or in ROMFS for
    room), yet holds one connection and 8 KB free through the burst."""
    chip = lux_mpy(tmp_path, micropython32())
    burst(chip, mosquitto("allow_anonymous true\n"),
          warning="bytes of heap free, little margin; on an ESP8266 put lux in ROMFS")
