"""The board-faithful watchdog resets a loop that never comes back, as the chips' timer
interrupts do: a Python busy loop, or a call blocked in recv(). ESP8266: the SDK's software
watchdog, fed only by WDT.feed() once WDT() exists, resets 1.6-3.2 s after the last feed;
ESP32: the task watchdog resets `timeout` ms after the last feed. Before WDT() neither resets.

The board prints its monotonic clock (ticks_ms, CLOCK_MONOTONIC as the host's time.monotonic)
at its last feed; the host reads the same clock when the reset line arrives, so a delay in
reading can only lengthen the measured interval, never shorten it below the chip's."""

import os
import queue
import socket
import subprocess
import threading
import time

import pytest

from luxnode.sim import port
from luxnode.sim.node import SimNode
from tests.sim.faithful import chip_root, faithful_binary

TICKS_PERIOD = 1 << 30  # ticks_ms wraps here on the 32-bit build
LATE_MS = 500  # what a loaded host may add between the reset and the test reading its line
ESP8266_WINDOW = (1600, 3200)
ESP32_TIMEOUT_MS = 1000


def _host_ticks_ms():
    return int(time.monotonic() * 1000) % TICKS_PERIOD


class Board:
    """The faithful build running ``code`` in a chip's root, its lines timed as they arrive."""

    def __init__(self, root, code, runner=False):
        env = dict(os.environ, MICROPYPATH=".frozen", LUXNODE_SIM_NOISE="0")
        if runner:
            env["LUXNODE_SIM_CONTROL"] = "stdin"
        self.proc = subprocess.Popen([faithful_binary(port.board_name(root)), "-c", code], cwd=root, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put((_host_ticks_ms(), line.rstrip("\n")))
        self.lines.put((_host_ticks_ms(), None))

    def expect(self, start, timeout):
        """(host ticks_ms on arrival, line) of the first line starting with ``start``."""
        end = time.monotonic() + timeout
        seen = []
        while True:
            try:
                at, line = self.lines.get(timeout=max(0.01, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {start!r} within {timeout} s: {seen}") from None
            if line is None:
                raise AssertionError(f"board exited waiting for {start!r}: {seen}")
            seen.append(line)
            if line.startswith(start):
                return at, line

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self.proc.stdin.close()


@pytest.fixture
def board(tmp_path):
    started = []

    def start(chip, code, runner=False):
        started.append(Board(chip_root(tmp_path / chip, chip), code, runner))
        return started[-1]

    yield start
    for each in started:
        each.close()


def _arm(chip):
    return "w = machine.WDT()\n" if chip == "esp8266" else f"w = machine.WDT(timeout={ESP32_TIMEOUT_MS})\n"


def _window(chip):
    return ESP8266_WINDOW if chip == "esp8266" else (ESP32_TIMEOUT_MS, ESP32_TIMEOUT_MS)


def _reset_after_feed(running, chip):
    """Milliseconds from the board's last feed (its 'fed' line) to the reset line, and the cause."""
    fed = int(running.expect("fed ", 10)[1].split()[1])
    running.expect("machine: watchdog timeout", 10)
    at, line = running.expect("machine: reset ", 10)
    return (at - fed) % TICKS_PERIOD, line.split()[2]


CAUSE = {"esp8266": "SOFT_WDT_RESET", "esp32": "WDT_RESET"}
BUSY = """import machine, time
%s
time.sleep_ms(%d)
w.feed()
print("fed", time.ticks_ms())
while True:
    pass
"""


# (chip, ms from WDT() to the last feed): the ESP8266's at two phases of its 1.6 s timer
@pytest.mark.parametrize("chip, settle_ms", [("esp8266", 300), ("esp8266", 1100), ("esp32", 300)])
def test_a_busy_loop_is_reset_within_the_chips_window(board, chip, settle_ms):
    elapsed, cause = _reset_after_feed(board(chip, BUSY % (_arm(chip), settle_ms)), chip)
    low, high = _window(chip)
    assert low <= elapsed <= high + LATE_MS and cause == CAUSE[chip], (elapsed, cause)


@pytest.mark.parametrize("chip", ["esp8266", "esp32"])
def test_a_recv_that_never_returns_is_reset_within_the_chips_window(board, chip):
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts in its backlog, never writes
        code = """import machine, socket, time
%s
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", %d)[0][-1])
w.feed()
print("fed", time.ticks_ms())
s.recv(1)
print("recv returned")
""" % (_arm(chip), server.getsockname()[1])
        elapsed, cause = _reset_after_feed(board(chip, code), chip)
    low, high = _window(chip)
    assert low <= elapsed <= high + LATE_MS and cause == CAUSE[chip], (elapsed, cause)


@pytest.mark.parametrize("chip", ["esp8266", "esp32"])
def test_a_loop_fed_in_time_runs_on_busy_and_blocked(board, chip):
    # Fed every 1.2 s (under the ESP8266's 1.6 s, under a 1.5 s ESP32 timeout) for 4.5 s,
    # busy half of each period and blocked in a recv that times out the other half.
    arm = "w = machine.WDT()" if chip == "esp8266" else "w = machine.WDT(timeout=1500)"
    with socket.create_server(("127.0.0.1", 0)) as server:
        code = """import machine, socket, time
%s
s = socket.socket()
s.connect(socket.getaddrinfo("127.0.0.1", %d)[0][-1])
s.settimeout(0.6)
end = time.ticks_add(time.ticks_ms(), 4500)
while time.ticks_diff(end, time.ticks_ms()) > 0:
    busy = time.ticks_add(time.ticks_ms(), 600)
    while time.ticks_diff(busy, time.ticks_ms()) > 0:
        pass
    try:
        s.recv(1)
    except OSError:
        pass
    w.feed()
print("still running")
""" % (arm, server.getsockname()[1])
        board(chip, code).expect("still running", 20)  # a reset first ends the board: fails


@pytest.mark.parametrize("chip", ["esp8266", "esp32"])
def test_nothing_resets_before_wdt_exists(board, chip):
    # ESP8266: the port's event loop feeds the SDK's watchdog until WDT() stops it doing so;
    # ESP32: the task watchdog has no user until WDT().
    code = """import machine, time
end = time.ticks_add(time.ticks_ms(), 3500)  # beyond either watchdog's window
while time.ticks_diff(end, time.ticks_ms()) > 0:
    pass
print("still running")
"""
    board(chip, code).expect("still running", 20)


def test_esp32_wdt_again_sets_the_new_timeout_without_a_feed(board):
    # esp_task_wdt_reconfigure: the countdown since the last feed runs on with the new timeout.
    code = """import machine, time
w = machine.WDT(timeout=5000)
print("fed", time.ticks_ms())
time.sleep_ms(500)
machine.WDT(timeout=%d)
while True:
    pass
""" % ESP32_TIMEOUT_MS
    elapsed, cause = _reset_after_feed(board("esp32", code), "esp32")
    assert ESP32_TIMEOUT_MS <= elapsed <= ESP32_TIMEOUT_MS + LATE_MS and cause == "WDT_RESET", elapsed


@pytest.mark.parametrize("chip", ["esp8266", "esp32"])
def test_the_supervisor_boots_the_node_again_after_a_watchdog_reset(tmp_path, chip):
    root = chip_root(tmp_path / chip, chip, device_id="node-1")
    (root / "boot.py").write_text("")
    (root / "main.py").write_text("import machine\nprint('cause', machine.reset_cause())\n%s"
                                  "while True:\n    pass\n" % _arm(chip))
    faithful_binary(chip)
    node = SimNode(root, faithful=True, bridge=False, output=lambda line: None)
    with node:
        node.wait_line("cause 3", timeout=20)  # SOFT_WDT_RESET (ESP8266) and WDT_RESET (ESP32) are 3
    assert node.resets[0] == CAUSE[chip] and node.exit_code is None, (node.resets, list(node.lines))
