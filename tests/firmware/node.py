"""A whole node (boot.py + main.py) on the unix port with the simulated board,
and a paho-mqtt observer, for node-level firmware tests.

Under LUXNODE_FAITHFUL=<chip> the node runs on the board-faithful build with the
board frozen in (source copies on MICROPYPATH are dropped), the chip's heap, and
that chip as its board wherever a test asks for the generic "sim" board.
"""

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from luxnode.paths import BOARDS_DIR, REPO
from luxnode.sim import port
from tests.support.micropython import FAITHFUL, FIRMWARE, executable

SIM_BOARD = REPO / "host_tools" / "luxnode" / "sim" / "board"
FAKEBOARD = REPO / "tests" / "firmware" / "fakeboard"


# What the ESP8266 cannot run at all, so a faithful ESP8266 skips it (the firmware refuses
# both modes there, which test_port_compat.py and test_node.py check).
AXTLS = ("ESP8266: its tls is axTLS, with no TLS-PSK and no certificate verification "
         "(extmod/modtls_axtls.c); the firmware refuses the mode there")
needs_psk = pytest.mark.skipif(FAITHFUL == "esp8266", reason=AXTLS)
needs_cert_check = pytest.mark.skipif(FAITHFUL == "esp8266", reason=AXTLS)


def board_file(name):
    return json.loads((BOARDS_DIR / f"{name}.json").read_text())


def is_firmware(folder):
    """A firmware tree as deploy takes it (the checkout's, or a test's modified copy)."""
    return (folder / "main.py").is_file() and (folder / "lux").is_dir()


def node_config(port, **over):
    cfg = {
        "device_id": "node-1", "board": FAITHFUL or "sim",
        "wifi": {"ssid": "lab", "password": "pw"},
        "mqtt": {"host": "127.0.0.1", "port": port, "keepalive": 10, "reconnect_max_s": 1},
        "sensor": {"interval_s": 1, "deadband": 1.0, "dark_raw": 200, "bright_raw": 3900, "sample_ms": 100},
        "dimmer": {"freq": 1000, "invert": True, "gamma": 2.2, "fade_ms": 0, "save_delay_s": 0.3},
    }
    if json.loads((BOARDS_DIR / f"{over.get('board', cfg['board'])}.json").read_text())["adc"]["bits"] == 10:
        cfg["sensor"].update(dark_raw=50, bright_raw=975)  # the same bench on a 10-bit ADC
    for key, value in over.items():
        section, _, leaf = key.partition("__")
        if leaf:
            cfg.setdefault(section, {})[leaf] = value
        elif value is None:
            cfg.pop(section, None)
        else:
            cfg[section] = value
    return cfg


class Node:
    """The firmware as a board runs it: boot.py then main.py in the node's filesystem root."""

    def __init__(self, root, config, board="sim", env=None, faithful=FAITHFUL):
        """faithful: run on the board-faithful build, as this chip when ``board`` is "sim"."""
        self.root = root
        self.faithful = faithful
        if board == "sim" and faithful:
            board = faithful
        self.board = board
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.json").write_text(json.dumps(config))
        shutil.copy(BOARDS_DIR / f"{board}.json", root / "board.json")
        self.env = dict(os.environ, MICROPYPATH=f"{SIM_BOARD}:{FIRMWARE}", LUXNODE_SIM_RTC=str(root / ".rtc"),
                        LUXNODE_SIM_CONTROL="stdin", LUXNODE_SIM_NOISE="0", **(env or {}))
        self.proc = None
        self.lines = queue.Queue()
        self.seen = []

    def start(self, **env):
        env = dict(self.env, **env)
        binary, heap = executable(), []
        if self.faithful:  # the board is frozen in: its source copies would cost heap the chip does not spend,
            binary = port.faithful_micropython(board=self.board)
            # ... and lux/ runs as luxnode deploy leaves it, .mpy: compiled on an ESP8266 it would not
            # fit. So does a test's own copy of the firmware (a folder with main.py and lux/).
            parts = [str(port.deployed_firmware(binary, Path(p))) if is_firmware(Path(p)) else p
                     for p in env["MICROPYPATH"].split(":") if Path(p) not in (SIM_BOARD, FAKEBOARD)]
            env["MICROPYPATH"] = ":".join(parts + [".frozen"])
            board = json.loads((BOARDS_DIR / f"{self.board}.json").read_text())
            heap = ["-X", f"heapsize={board['heap_bytes'] + port.board_heap_overhead(binary, self.root)}"]
        self.proc = subprocess.Popen(
            [binary, *heap, "-c", "import boot\nimport main"], cwd=self.root, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()
        return self

    def _read(self, proc):
        for line in proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, text, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {text!r} within {timeout} s:\n" + "\n".join(self.seen)) from None
            if line is None:
                raise AssertionError(f"node exited waiting for {text!r}:\n" + "\n".join(self.seen))
            self.seen.append(line)
            if text in line:
                return line

    def drain(self):
        """Every line printed so far that no expect() has read, as one text."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.seen.append(line)
        return "\n".join(self.seen)

    def wait_exit(self, timeout=10.0):
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)  # every line the node printed is queued
        self.drain()
        return code

    def control(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Observer:
    """paho-mqtt subscriber that keeps every message it sees."""

    made = 0

    def __init__(self, port, topics=("luxnode/#", "homeassistant/#")):
        self.messages = queue.Queue()
        self.all = []
        Observer.made += 1  # distinct ids: a reconnecting observer must not take over another's session
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"observer-{Observer.made}")
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload, m.retain))
        self.client.connect("127.0.0.1", port)
        for t in topics:
            self.client.subscribe(t, 1)
        self.client.loop_start()

    def publish(self, topic, payload, qos=1, retain=False):
        self.client.publish(topic, payload, qos, retain).wait_for_publish(5)

    def expect(self, topic, predicate=lambda p: True, timeout=10.0):
        """The next message on topic whose decoded payload satisfies predicate."""
        end = time.monotonic() + timeout
        while True:
            try:
                t, payload, retain = self.messages.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching message on {topic} within {timeout} s; saw:\n"
                                     + "\n".join(f"{t} {p!r}" for t, p, _ in self.all[-30:])) from None
            self.all.append((t, payload, retain))
            if t == topic:
                try:
                    value = json.loads(payload)
                except ValueError:
                    value = payload.decode()
                if predicate(value):
                    return value

    def count(self, topic):
        while True:
            try:
                self.all.append(self.messages.get_nowait())
            except queue.Empty:
                break
        return sum(1 for t, _, _ in self.all if t == topic)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


# Fixtures shared by the node tests (tests/firmware/test_node.py, tests/sim/test_faithful_node.py):
# a test module imports them by name.
@pytest.fixture
def broker(mosquitto):
    return mosquitto("allow_anonymous true\n")


@pytest.fixture
def observer(broker):
    o = Observer(broker.port)
    yield o
    o.close()


@pytest.fixture
def nodes():
    started = []

    def make(*a, **kw):
        node = Node(*a, **kw)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()
