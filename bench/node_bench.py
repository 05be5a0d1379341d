#!/usr/bin/env python3
"""Benchmark the luxnode firmware on the MicroPython unix port, beside its peers, in one run.

    python bench/node_bench.py                  # the 32-bit board-faithful build, 500 commands
    python bench/node_bench.py --commands 2000 --peers DIR
    python bench/node_bench.py --micropython "$(which micropython)"   # e.g. the 64-bit wheel

It prints which interpreter ran and its word size. By default that is the board-faithful
32-bit build (luxnode sim --faithful: the chip's object model, the board frozen in),
built from source on first use; heap figures then carry over to an ESP32 or ESP8266.

Figures, all through one mosquitto on loopback:
- heap in use (gc.mem_alloc after gc.collect) once connected and subscribed: luxnode's
  whole node (the firmware's main loop, booted from .mpy like a deployed board; again
  after the latency run, when its command code is loaded) versus
  umqtt.simple alone and the asyncio client from micropython-mqtt alone. Every program
  runs on the same simulated board modules and connects its Wi-Fi first, and every one
  is loaded from .mpy. The idle interpreter's heap is printed too.
- the issue-8 targets beside them: the node's heap above idle at most 12 KB connected and
  subscribed and 14 KB after 200 commands, and (on the faithful ESP8266: its 38 KB heap,
  discovery and telemetry on) at least 8 KB free (gc.mem_free, as telemetry reports it)
  after a burst of 200 QoS 1 commands of every kind; each printed as met / NOT met.
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
IDLE_HEAP = WIFI + """
gc.collect()
print("heap", gc.mem_alloc())
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

    def path(self, *folders) -> str:
        board = [] if self.faithful else [BOARD_MODULES]
        return ":".join(str(p) for p in [*board, *folders]) + ":.frozen"


INTERPRETER: Interpreter


def run_heap(code: str, path: list[Path], cwd: Path) -> int:
    env = dict(os.environ, MICROPYPATH=INTERPRETER.path(*path))
    out = subprocess.run([INTERPRETER.binary, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=60)
    for line in out.stdout.splitlines():
        if line.startswith("heap "):
            return int(line.split()[1])
    raise RuntimeError(f"no heap figure:\n{out.stdout}\n{out.stderr}")


def node_heap(node) -> int:
    mark = node.count
    node.request_heap()
    return int(node.wait_line("machine: heap", 30, after=mark).split()[2])


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
                        "board-faithful 32-bit build (then the ESP8266 burst is not run)")
    opts = parser.parse_args(argv)
    global INTERPRETER
    INTERPRETER = Interpreter(opts.micropython)
    log(f"interpreter: {port.describe(INTERPRETER.binary)}")

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

    log("heap: idle interpreter, umqtt.simple, mqtt_async ...")
    heap = {
        "idle interpreter": run_heap(IDLE_HEAP, [], tmp),
        "umqtt.simple": run_heap(UMQTT_HEAP.format(port=broker.port), [peers], tmp),
        "mqtt_async": run_heap(MQTT_ASYNC_HEAP.format(port=broker.port), [peers], tmp),
    }

    log("heap and latency: luxnode node ...")
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
        heap["luxnode node"] = node_heap(node)
        first = min(200, opts.commands)
        lux_lat = waiter.latencies("luxnode/bench/set", first)
        heap["luxnode node, after 200 commands"] = node_heap(node)
        lux_lat += waiter.latencies("luxnode/bench/set", opts.commands - first)
        heap["luxnode node, after the commands"] = node_heap(node)
        waiter.close()
    finally:
        node.stop()

    burst = None
    if INTERPRETER.faithful:
        log("ESP8266: 200 commands of every kind, discovery and telemetry on ...")
        burst = esp8266_burst(tmp, broker, root)

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

    report(heap, fw_src_bytes, fw_mpy_all, fw_mpy_bytes, peer_src, peer_mpy, lux_lat, echo_lat, opts.commands,
           burst)
    return 0


COMMANDS = [
    {"control": "PWM", "value": 37.5, "unit": "%"}, {"control": "ON"}, {"control": "OFF", "transition": 1},
    {"control": "AUTO", "value": 40}, {"state": "ON", "brightness": 200}, {"state": "OFF"},
    {"control": "PWM", "value": "lots"}, {"control": "DIM"}, {"nothing": 1},
]


def esp8266_burst(tmp: Path, broker, deployed: Path) -> dict:
    """The deployed firmware on the faithful ESP8266 (its heap), 200 QoS 1 commands of every kind
    with discovery and telemetry on: free heap (telemetry's and after gc.collect) and reconnects."""
    import paho.mqtt.client as paho

    root = tmp / "esp8266"
    shutil.copytree(deployed, root, ignore=shutil.ignore_patterns("config.json", "board.json", "*.json"))
    write_root(root, node_config("bench8266", "127.0.0.1", broker.port, board="esp8266", keepalive=60,
                                 interval_s=5, telemetry_s=2))
    telemetry = []
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"bench-burst-{os.getpid()}")
    client.on_message = lambda c, u, m: telemetry.append(json.loads(m.payload))
    client.connect("127.0.0.1", broker.port)
    client.subscribe("luxnode/bench8266/telemetry", qos=0)
    client.loop_start()
    node = SimNode(root, output=lambda line: None, bridge=False, faithful=True).start()
    try:
        result = {"started": True}
        try:
            node.wait_line("connected to", 30)
        except TimeoutError:
            return {"started": False, "lines": list(node.lines)[-5:]}
        for i in range(200):
            client.publish("luxnode/bench8266/set", json.dumps(COMMANDS[i % len(COMMANDS)]), qos=1).wait_for_publish(10)
        seen = len(telemetry)
        deadline = time.monotonic() + 30
        while len(telemetry) < seen + 2 and time.monotonic() < deadline:  # two periods after the burst
            time.sleep(0.1)
        result["telemetry"] = telemetry[-1] if telemetry else None
        mark = node.count
        node.request_heap()
        try:
            result["free_after_collect"] = int(node.wait_line("machine: heap", 15, after=mark).split()[3])
        except TimeoutError:
            result["free_after_collect"] = None
        result["memory_errors"] = sum("MemoryError" in line for line in node.lines)
        result["boots"] = 1 + len(node.resets)
        return result
    finally:
        node.stop()
        client.loop_stop()
        client.disconnect()


def met(ok) -> str:
    return "met" if ok else "NOT met"


def report(heap, fw_src, fw_mpy_all, fw_mpy_lux, peer_src, peer_mpy, lux_lat, echo_lat, n, burst):
    kb = lambda b: f"{b / 1024:.1f} KB"
    node = heap["luxnode node"]
    idle = heap["idle interpreter"]
    what = port.describe(INTERPRETER.binary)
    kind = "board-faithful build, the board frozen in" if INTERPRETER.faithful else "the board modules as source"
    print(f"MicroPython unix port {what}, {kind}; mosquitto on loopback")
    if "64-bit" in what:
        print("(64-bit: objects are larger than on an ESP32 or ESP8266; heap figures do not carry over)")
    print()
    print("Heap in use once connected and subscribed (gc.mem_alloc after gc.collect)")
    print(f"  {'program':<34}{'heap':>10}{'above idle':>12}{'luxnode / it':>14}")
    for name, label in (("luxnode node", "luxnode whole node"),
                        ("luxnode node, after 200 commands", "  same, after 200 commands"),
                        ("luxnode node, after the commands", f"  same, after {n} commands"),
                        ("umqtt.simple", "umqtt.simple alone"),
                        ("mqtt_async", "mqtt_async alone (micropython-mqtt)"), ("idle interpreter", "idle interpreter")):
        value = heap[name]
        ratio = "" if name.startswith("luxnode") or name == "idle interpreter" \
            else f"{(node - idle) / max(1, value - idle):.2f}x"
        print(f"  {label:<34}{kb(value):>10}{kb(value - idle):>12}{ratio:>14}")
    after = heap["luxnode node, after 200 commands"] - idle
    print(f"  target: whole node below mqtt_async alone: {met(node < heap['mqtt_async'])}")
    print(f"  target: above idle <= 12 KB connected and subscribed: {met(node - idle <= 12 * 1024)} "
          f"({kb(node - idle)})")
    print(f"  target: above idle <= 14 KB after 200 commands: {met(after <= 14 * 1024)} ({kb(after)})")
    if "32-bit" not in what:
        print("  (the targets are for a 32-bit build: run without --micropython for figures that carry over)")
    print()
    if burst is not None:
        print("ESP8266 (faithful: 38 KB heap), 200 QoS 1 commands of every kind, discovery and telemetry on")
        if not burst["started"]:
            print("  the node never connected: " + " | ".join(burst["lines"]))
            print("  target: free heap after the burst >= 8 KB: NOT met")
        else:
            tele = burst["telemetry"] or {}
            free = tele.get("free_heap")
            print(f"  telemetry free_heap {kb(free) if free is not None else 'none received'}, after gc.collect "
                  f"{kb(burst['free_after_collect']) if burst['free_after_collect'] else 'no answer'}; "
                  f"reconnects {tele.get('reconnects', '?')}, boots {burst['boots']}, "
                  f"MemoryError lines {burst['memory_errors']}")
            print(f"  target: free heap after the burst >= 8 KB: {met(free is not None and free >= 8192)}")
        print()

    print("Code size (mpy-cross .mpy; source .py)")
    print(f"  {'luxnode firmware (lux/ + boot + main)':<40}{kb(fw_mpy_all):>10}  ({kb(fw_src)} source, lux/ alone {kb(fw_mpy_lux)})")
    for name in PEER_FILES:
        print(f"  {name + ' alone':<40}{kb(peer_mpy[name]):>10}  ({kb(peer_src[name])} source, "
              f"luxnode / it {fw_mpy_all / peer_mpy[name]:.2f}x)")
    print()
    print(f"Latency, PWM command published (QoS 1) -> `state` received, {n} commands")
    print(f"  {'program':<34}{'p50':>9}{'p99':>9}{'max':>9}")
    for label, lat in (("luxnode node", lux_lat), ("umqtt.simple echo (floor)", echo_lat)):
        print(f"  {label:<34}{percentile(lat, 50):>7.2f}ms{percentile(lat, 99):>7.2f}ms{max(lat):>7.2f}ms")
    p99 = percentile(lux_lat, 99)
    print(f"  luxnode / echo: p50 {percentile(lux_lat, 50) / percentile(echo_lat, 50):.2f}x, "
          f"p99 {p99 / percentile(echo_lat, 99):.2f}x")
    print(f"  target: p99 under 20 ms: {'met' if p99 < 20 else 'NOT met'} ({p99:.2f} ms)")


if __name__ == "__main__":
    sys.exit(main())
