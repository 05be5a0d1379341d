#!/usr/bin/env python3
"""Benchmark the luxnode firmware on the MicroPython unix port, beside its peers, in one run.

    python bench/node_bench.py                  # the 32-bit board-faithful build, 500 commands
    python bench/node_bench.py --commands 2000 --peers DIR
    python bench/node_bench.py --micropython "$(which micropython)"   # e.g. the 64-bit wheel

It prints which interpreter ran and its word size. By default that is the board-faithful
32-bit build (luxnode sim --faithful: the chip's object model, the board frozen in),
built from source on first use; heap figures then carry over to an ESP32 or ESP8266.

Figures, all through one mosquitto on loopback:
- heap above an idle board (gc.mem_alloc after gc.collect, less the idle board's with its
  Wi-Fi up) on the faithful ESP8266 (its 37,120-byte heap, discovery and telemetry on),
  connected and subscribed and after a burst of 200 QoS 1 commands of every kind, and the
  free heap after the burst (gc.mem_free, as telemetry reports it), for lux held three ways
  (tests/support/heap32.py, which the heap tests share): as .mpy on the filesystem (what
  `luxnode deploy` writes), in ROMFS, and frozen into the firmware (the faithful build's
  variant made with tools/freeze-manifest.py). Each names its binary and word size and
  stands beside umqtt.simple alone and the asyncio client from micropython-mqtt alone (run
  on the same chip from .mpy), with ratios, and beside the issue-8 targets, met / NOT met:
  at most 12 KB above idle connected and subscribed, 14 KB after 200 commands, at least
  8 KB free after them.
- the size of the firmware's .mpy files (mpy-cross), beside the peers' .mpy files.
- latency from publishing a PWM command (QoS 1, paho) to receiving the node's `state`,
  p50/p99 over N commands, beside a minimal umqtt.simple echo that answers `set` with a
  fixed `state` (the floor: no JSON parsing, no dimmer, no sensor). mosquitto runs with
  set_tcp_nodelay: otherwise its PUBACK to the publisher holds the `state` that follows
  on the same connection for a delayed ACK (40 ms), whatever the node does.

The peers come from PyPI: micropython-umqtt.simple 1.3.4 (2017) and micropython-mqtt
0.7b4 (2020). Their sdists carry no setup.py, so pip cannot install them; the bench
runs `pip download --no-clean` and takes the unpacked .py files (or --peers DIR
holding umqtt/simple.py and mqtt_async.py). micropython-mqtt 0.7b4 is not Peter
Hinch's mqtt_as but mqtt_async, Thorsten von Eicken's asyncio rewrite "loosely based
on mqtt_as"; mqtt_as itself is not on PyPI. It runs on MicroPython 1.29 with one
adaptation to the unix port: its DNS step is given the (host, port) tuple that the
ESP32's getaddrinfo returns (the unix port returns a raw sockaddr).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from luxnode.paths import FIRMWARE_DIR, REPO
from luxnode.sim import SimNode, node_config, port, write_root
from luxnode.sim.node import BOARD_MODULES, module_path

sys.path.insert(0, str(REPO))
from tests.firmware.node import node_config as test_node_config  # noqa: E402  (the tests' node harness)
from tests.support.heap32 import (ESP8266_HEAP, TARGET_AFTER, TARGET_CONNECTED, TARGET_FREE, Burst,  # noqa: E402
                                  Chip, board_root, lux_frozen, lux_mpy, lux_romfs, run_burst)
from tests.support.mosquitto import Mosquitto  # noqa: E402  (the tests' real-broker helper)

PEER_FILES = {"umqtt.simple": "umqtt/simple.py", "mqtt_async": "mqtt_async.py"}

# Each peer program: join the Wi-Fi, connect, subscribe to the node's set topic, then report.
WIFI = """
import gc, network, machine, socket, time
wlan = network.WLAN(network.STA_IF); wlan.active(True); wlan.connect("luxnode-sim", "")
"""
UMQTT_HEAP = WIFI + """
from umqtt.simple import MQTTClient
c = MQTTClient("bench-umqtt", "127.0.0.1", {port}, keepalive=60)
c.set_callback(lambda topic, msg: None)
c.set_last_will(b"luxnode/bench-umqtt/status", b"offline", retain=True, qos=1)
c.connect(clean_session=False)
c.subscribe(b"luxnode/bench/set", qos=1)
gc.collect()
print("heap", gc.mem_alloc())
c.disconnect()
"""
MQTT_ASYNC_HEAP = WIFI + """
import asyncio
from mqtt_async import MQTTClient, config
config.server = "127.0.0.1"
config.port = {port}
config.client_id = "bench-mqtt-async"
config.keepalive = 60
config.clean = False
config.set_last_will("luxnode/bench-as/status", "offline", True, 1)
config.subs_cb = lambda topic, msg, retained, qos: None
async def main():
    c = MQTTClient(config)
    # The unix port's getaddrinfo gives a raw sockaddr, not the ESP32's (host, port) tuple
    # that mqtt_async passes on to asyncio.open_connection: give it the tuple.
    c._dns_lookup = lambda: setattr(c, "_addr", ("127.0.0.1", {port}))
    await c.connect()
    await c.subscribe("luxnode/bench/set", 1)
    gc.collect()
    print("heap", gc.mem_alloc())
    await c.disconnect()
asyncio.run(main())
"""
UMQTT_ECHO = WIFI + """
from umqtt.simple import MQTTClient
c = MQTTClient("bench-echo", "127.0.0.1", {port}, keepalive=60)
def answer(topic, msg):
    c.publish(b"luxnode/echo/state", b'{{"control": "PWM", "value": ' + msg.split(b'"value": ')[1].split(b",")[0] + b"}}")
c.set_callback(answer)
c.connect()
c.sock.setsockopt(6, 1, 1)  # TCP_NODELAY: its publish is three writes
c.subscribe(b"luxnode/echo/set", qos=1)
print("ready")
while True:
    c.wait_msg()
"""


def log(text):
    print(text, file=sys.stderr, flush=True)


def fetch_peers(folder: Path) -> Path:
    """Unpack the peers' sdists from PyPI with pip (they cannot be pip-installed)."""
    scratch = folder / "pip"
    scratch.mkdir()
    for package in ("micropython-umqtt.simple==1.3.4", "micropython-mqtt==0.7b4"):
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-clean",
                        "-d", str(scratch / "dl"), package],
                       env=dict(os.environ, TMPDIR=str(scratch)), capture_output=True)
    peers = folder / "peers"
    for rel in PEER_FILES.values():
        found = sorted(scratch.glob(f"pip-*/*/{rel}"))
        if not found:
            sys.exit(f"node_bench: could not unpack {rel} from PyPI; pass --peers DIR holding "
                     f"{' and '.join(PEER_FILES.values())}")
        (peers / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(found[0], peers / rel)
    return peers


def mpy_cross(src: Path, dst: Path) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mpy-cross", "-o", str(dst), str(src)], check=True)
    return dst.stat().st_size


def compile_tree(src_root: Path, dst_root: Path, files) -> int:
    return sum(mpy_cross(src_root / f, dst_root / Path(f).with_suffix(".mpy")) for f in files)


class Interpreter:
    """The micropython the bench runs: the faithful 32-bit build (board frozen in) or any other."""

    def __init__(self, explicit: str | None):
        self.faithful = explicit is None
        self.binary = port.faithful_micropython() if self.faithful else port.find_micropython(explicit)
        # The heap figures are an ESP8266's: its build keeps floats in the object word, as the port does.
        self.esp8266 = port.faithful_micropython(board="esp8266") if self.faithful else self.binary

    def path(self, *folders) -> str:
        board = [] if self.faithful else [BOARD_MODULES]
        return ":".join(str(p) for p in [*board, *folders]) + ":.frozen"


INTERPRETER: Interpreter


def identify(binary: str) -> str:
    """'<binary> (32-bit)' as the interpreter itself says (sys.executable, sys.maxsize): a shim or
    wrapper in front of it is seen through (the faithful ESP8266 has no sys.executable, as the chip:
    then the wrapper's name)."""
    out = subprocess.run([binary, "-c", "import sys; print(sys.maxsize, getattr(sys, 'executable', ''))"],
                         capture_output=True,
                         text=True, timeout=30, env=dict(os.environ, MICROPYPATH=".frozen"))
    maxsize, _, executable = out.stdout.strip().partition(" ")
    bits = {str(2**31 - 1): "32-bit", str(2**63 - 1): "64-bit"}.get(maxsize)
    return f"{executable or binary} ({bits or 'word size unknown'})"


def run_heap(chip: Chip, code: str, peers: Path) -> int:
    """Heap in use a peer program prints, run on ``chip`` with the peers' .mpy files first on its path."""
    env = dict(os.environ, MICROPYPATH=f"{peers}:{chip.path}")
    out = subprocess.run([str(chip.command), "-c", code], cwd=chip.root, env=env, capture_output=True, text=True,
                         timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("heap "):
            return int(line.split()[1])
    raise RuntimeError(f"no heap figure:\n{out.stdout}\n{out.stderr}")


class StateWaiter:
    """paho: publish commands and time the node's answers on `state`."""

    def __init__(self, port, state_topic):
        import paho.mqtt.client as paho
        self.arrived = {}
        self.cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}-{state_topic}")
        subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(state_topic, qos=0)
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        subscribed.wait(10)

    def _on_message(self, client, userdata, msg):
        now = time.perf_counter()
        try:
            value = json.loads(msg.payload)["value"]
        except (ValueError, KeyError, TypeError):
            return
        with self.cond:
            self.arrived.setdefault(value, now)
            self.cond.notify_all()

    def latencies(self, set_topic, count):
        times = []
        for i in range(count):
            value = 1 + i % 99
            with self.cond:
                self.arrived.pop(value, None)
            sent = time.perf_counter()
            self.client.publish(set_topic, json.dumps({"control": "PWM", "value": value, "unit": "%"}), qos=1)
            with self.cond:
                if not self.cond.wait_for(lambda: value in self.arrived, 5):
                    raise RuntimeError(f"no state for command {i} (value {value}) within 5 s")
                times.append((self.arrived[value] - sent) * 1000)
        return times

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=500, help="PWM commands for the latency figures")
    parser.add_argument("--peers", type=Path, help="folder with umqtt/simple.py and mqtt_async.py")
    parser.add_argument("--micropython", metavar="PATH", help="run this interpreter instead of the "
                        "board-faithful 32-bit builds (then lux as .mpy only, on that interpreter's own heap)")
    opts = parser.parse_args(argv)
    global INTERPRETER
    INTERPRETER = Interpreter(opts.micropython)
    log(f"interpreter: {identify(INTERPRETER.binary)}")
    if INTERPRETER.esp8266 != INTERPRETER.binary:
        log(f"interpreter for the ESP8266 heap: {identify(INTERPRETER.esp8266)}")

    with tempfile.TemporaryDirectory(prefix="luxnode-node-bench-") as tmp:
        tmp = Path(tmp)
        peers_src = opts.peers or fetch_peers(tmp)
        broker = Mosquitto(tmp / "mosquitto", "allow_anonymous true\nset_tcp_nodelay true\n").start()
        try:
            return measure(opts, tmp, peers_src, broker)
        finally:
            broker.stop()


def measure(opts, tmp: Path, peers_src: Path, broker) -> int:
    # Firmware as deployed: boot.py/main.py as source, the package as .mpy.
    root = tmp / "node"
    lux = sorted(p.relative_to(FIRMWARE_DIR).as_posix() for p in (FIRMWARE_DIR / "lux").glob("*.py"))
    fw_src_bytes = sum((FIRMWARE_DIR / f).stat().st_size for f in [*lux, "boot.py", "main.py"])
    fw_mpy_bytes = compile_tree(FIRMWARE_DIR, root, lux)
    fw_mpy_all = fw_mpy_bytes + compile_tree(FIRMWARE_DIR, tmp / "entry", ["boot.py", "main.py"])
    for f in ("boot.py", "main.py"):
        shutil.copy(FIRMWARE_DIR / f, root / f)
    peers = tmp / "peers-mpy"
    peer_mpy = {name: compile_tree(peers_src, peers, [rel]) for name, rel in PEER_FILES.items()}
    peer_src = {name: (peers_src / rel).stat().st_size for name, rel in PEER_FILES.items()}

    chips = esp8266_chips(tmp)
    log("heap: idle board, umqtt.simple, mqtt_async ...")
    base = chips[0]  # the peers run as lux/*.mpy does: on the same chip and heap
    idle = base.heap_in_use()
    peer_heap = {"umqtt.simple": run_heap(base, UMQTT_HEAP.format(port=broker.port), peers) - idle,
                 "mqtt_async": run_heap(base, MQTT_ASYNC_HEAP.format(port=broker.port), peers) - idle}
    variants = []
    for n, chip in enumerate(chips):
        log(f"ESP8266, {chip.how}: 200 commands of every kind, discovery and telemetry on ...")
        device = f"bench-{n}"
        cfg = heap32_config(broker.port, device)
        chip_idle = chip.heap_in_use()
        try:
            result = run_burst(chip.node(cfg), broker, chip_idle, device=device)
        except AssertionError as e:  # the node never connected or stopped answering: report it, go on
            result = str(e).splitlines()[:1] + str(e).splitlines()[-3:]
        variants.append((chip, chip_idle, result))

    log("latency: luxnode node ...")
    write_root(root, node_config("bench", "127.0.0.1", broker.port, board="esp32" if INTERPRETER.faithful else "sim",
                                 keepalive=60, interval_s=60))
    assert str(FIRMWARE_DIR) not in module_path(root).split(":")  # the node runs the root's .mpy files
    node = SimNode(root, output=lambda line: None, bridge=False, micropython=INTERPRETER.binary,
                   faithful=INTERPRETER.faithful).start()
    try:
        node.wait_line("connected to", 20)
        waiter = StateWaiter(broker.port, "luxnode/bench/state")
        with waiter.cond:  # the node's first `state`: connected, subscribed, in its loop
            waiter.cond.wait_for(lambda: waiter.arrived, 20)
        lux_lat = waiter.latencies("luxnode/bench/set", opts.commands)
        waiter.close()
    finally:
        node.stop()

    log("latency: umqtt.simple echo ...")
    env = dict(os.environ, MICROPYPATH=INTERPRETER.path(peers))
    echo = subprocess.Popen([INTERPRETER.binary, "-c", UMQTT_ECHO.format(port=broker.port)], cwd=tmp, env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        echo.stdout.readline()
        waiter = StateWaiter(broker.port, "luxnode/echo/state")
        echo_lat = waiter.latencies("luxnode/echo/set", opts.commands)
        waiter.close()
    finally:
        echo.kill()
        echo.wait()

    report(idle, peer_heap, variants, fw_src_bytes, fw_mpy_all, fw_mpy_bytes, peer_src, peer_mpy, lux_lat,
           echo_lat, opts.commands)
    return 0


def esp8266_chips(tmp: Path) -> list[Chip]:
    """The ESP8266 holding lux each way (tests/support/heap32.py). --micropython: lux as .mpy on that
    interpreter alone, the board modules as source, its own heap (not the ESP8266's)."""
    if INTERPRETER.faithful:
        return [lux_mpy(tmp / "mpy", INTERPRETER.esp8266), lux_romfs(tmp / "romfs", INTERPRETER.esp8266),
                lux_frozen(tmp / "frozen")]
    root = board_root(tmp / "mpy")
    shutil.copytree(port.deployed_firmware(INTERPRETER.binary) / "lux", root / "lux")
    return [Chip("lux as .mpy on the filesystem (luxnode deploy), the board modules as source",
                 INTERPRETER.binary, Path(INTERPRETER.binary), root, f"{BOARD_MODULES}:{root}:.frozen")]


def heap32_config(broker_port: int, device: str) -> dict:
    return test_node_config(broker_port, device_id=device, board="esp8266", telemetry_s=2,
                            sensor__dark_raw=50, sensor__bright_raw=975)


def met(ok) -> str:
    return "met" if ok else "NOT met"


def kb(b) -> str:
    return f"{b / 1024:.1f} KB"


def whole_kb(b) -> str:
    return f"{b // 1024} KB"


def report(idle, peer_heap, variants, fw_src, fw_mpy_all, fw_mpy_lux, peer_src, peer_mpy, lux_lat, echo_lat, n):
    what = identify(INTERPRETER.binary)
    kind = "board-faithful build, the board frozen in" if INTERPRETER.faithful else "the board modules as source"
    print(f"MicroPython unix port {what}, {kind}; mosquitto on loopback")
    if "64-bit" in what:
        print("(64-bit: objects are larger than on an ESP32 or ESP8266; heap figures do not carry over)")
    print()
    heap = f"the ESP8266's {ESP8266_HEAP:,}-byte heap" if INTERPRETER.faithful else "the interpreter's own heap"
    print(f"Heap above an idle board (gc.mem_alloc after gc.collect; idle: Wi-Fi up, {kb(idle)}), on {heap},")
    print("discovery and telemetry on, 200 QoS 1 commands of every kind; free heap as telemetry reports it")
    print(f"  {'program':<42}{'connected':>10}{'after 200':>11}{'free after':>12}"
          f"{'/ umqtt.simple':>16}{'/ mqtt_async':>14}")
    for chip, _, result in variants:
        if isinstance(result, Burst):
            ratios = "".join(f"{result.connected / max(1, peer_heap[p]):>{w}.2f}x"
                             for p, w in (("umqtt.simple", 15), ("mqtt_async", 13)))
            free = kb(min(result.free)) if INTERPRETER.faithful else "-"  # not the chip's heap
            print(f"  {'luxnode, ' + chip.how.split(' (')[0]:<42}{kb(result.connected):>10}{kb(result.after):>11}"
                  f"{free:>12}{ratios}")
        else:
            print(f"  {'luxnode, ' + chip.how.split(' (')[0]:<42}{'did not run the burst: see below':>40}")
    print(f"  {'umqtt.simple alone':<42}{kb(peer_heap['umqtt.simple']):>10}")
    print(f"  {'mqtt_async alone (micropython-mqtt)':<42}{kb(peer_heap['mqtt_async']):>10}")
    print(f"  {'issue-8 targets (32-bit)':<42}{'<= ' + whole_kb(TARGET_CONNECTED):>10}{'<= ' + whole_kb(TARGET_AFTER):>11}"
          f"{'>= ' + whole_kb(TARGET_FREE):>12}")
    for chip, chip_idle, result in variants:
        print(f"  {chip.how}: {identify(chip.micropython)}")
        if not isinstance(result, Burst):
            print("    the burst failed: " + " | ".join(result))
            print("    targets: NOT met")
            continue
        print(f"    idle board {kb(chip_idle)}; telemetry free_heap {' and '.join(kb(f) for f in result.free)}, "
              f"{kb(result.free_after_collect)} after gc.collect; node connections {result.connections - 1}, "
              f"error messages {result.errors} for {result.expected_errors} refused commands")
        free = min(result.free)
        print(f"    target: above idle <= {whole_kb(TARGET_CONNECTED)} connected and subscribed: "
              f"{met(result.connected <= TARGET_CONNECTED)} ({kb(result.connected)})")
        print(f"    target: above idle <= {whole_kb(TARGET_AFTER)} after 200 commands: "
              f"{met(result.after <= TARGET_AFTER)} ({kb(result.after)})")
        if INTERPRETER.faithful:
            print(f"    target: ESP8266 free heap after the burst >= {whole_kb(TARGET_FREE)}: "
                  f"{met(free >= TARGET_FREE)} ({kb(free)})")
    if "32-bit" not in what:
        print("  (the targets are for a 32-bit build on the ESP8266's heap: run without --micropython)")
    print()

    print("Code size (mpy-cross .mpy; source .py)")
    print(f"  {'luxnode firmware (lux/ + boot + main)':<40}{kb(fw_mpy_all):>10}  ({kb(fw_src)} source, lux/ alone {kb(fw_mpy_lux)})")
    for name in PEER_FILES:
        print(f"  {name + ' alone':<40}{kb(peer_mpy[name]):>10}  ({kb(peer_src[name])} source, "
              f"luxnode / it {fw_mpy_all / peer_mpy[name]:.2f}x)")
    print()
    board = "ESP32 board, " if INTERPRETER.faithful else ""
    print(f"Latency, PWM command published (QoS 1) -> `state` received, {n} commands ({board}lux as .mpy)")
    print(f"  {'program':<34}{'p50':>9}{'p99':>9}{'max':>9}")
    for label, lat in (("luxnode node", lux_lat), ("umqtt.simple echo (floor)", echo_lat)):
        print(f"  {label:<34}{percentile(lat, 50):>7.2f}ms{percentile(lat, 99):>7.2f}ms{max(lat):>7.2f}ms")
    p99 = percentile(lux_lat, 99)
    print(f"  luxnode / echo: p50 {percentile(lux_lat, 50) / percentile(echo_lat, 50):.2f}x, "
          f"p99 {p99 / percentile(echo_lat, 99):.2f}x")
    print(f"  target: p99 under 20 ms: {met(p99 < 20)} ({p99:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())
