"""Hostile clients against `luxnode broker` (a subprocess, as users run it) and, where the
comparison matters, mosquitto 2.0.11 on the same config. Every test keeps an operator
bystander on the broker whose PINGREQ round trip must stay small while the attack runs."""

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.broker.conftest import start_broker  # noqa: F401  (the in-process broker fixture)
from tests.broker_stress import packets as P
from tests.broker_stress.conftest import LuxnodeBroker

# What an operator's PINGREQ may take while a broker is under attack, on a loaded 2-core
# CI machine. The service failures these tests catch took seconds to forever.
BYSTANDER_RTT_S = 1.0


@pytest.fixture
def luxnode_broker(tmp_path):
    """``luxnode_broker(conf="...")`` -> a running LuxnodeBroker; stopped after the test."""
    started = []

    def start(conf: str = "") -> LuxnodeBroker:
        broker = LuxnodeBroker(tmp_path / f"broker{len(started)}", conf)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connected(port: int, client_id: str, timeout: float = 10, **fields) -> socket.socket:
    """A raw MQTT 3.1.1 connection that got CONNACK 0."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(P.connect(client_id, **fields))
    first, body = P.read_packet(sock)
    assert first == 0x20 and body[1] == 0, f"{client_id}: CONNACK {body!r}"
    return sock


def closed_by_broker(sock: socket.socket, timeout: float = 5) -> bool:
    """True once the broker closes ``sock`` (anything it sends first is skipped); False if it
    is still open after ``timeout`` seconds."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except socket.timeout:
        return False
    except OSError:
        pass
    return True


class Operator:
    """An operator's connection that sends PINGREQ every 20 ms from a thread and keeps the
    round trips; ``check()`` fails if one took longer than ``limit`` or went unanswered."""

    def __init__(self, port: int, client_id: str = "operator", **fields):
        self.sock = connected(port, client_id, **fields)
        self.rtts: list[float] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(30)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                self.sock.sendall(P.PINGREQ)
                first, _ = P.read_packet(self.sock)
                if first != 0xD0:
                    self.error = f"expected PINGRESP, got {first:#x}"
                    return
                self.rtts.append(time.perf_counter() - start)
                self._stop.wait(0.02)
        except (OSError, ConnectionError) as exc:
            self.error = f"operator connection failed: {exc!r}"

    @property
    def worst(self) -> float:
        return max(self.rtts, default=0.0)

    def check(self, limit: float = BYSTANDER_RTT_S) -> float:
        """Stop pinging; the worst round trip (s), which must be within ``limit``."""
        self._stop.set()
        self._thread.join(35)
        assert self.error is None, self.error
        assert self.rtts, "the operator got no PINGRESP at all"
        assert self.worst <= limit, f"operator PINGREQ round trip {self.worst * 1000:.0f} ms > {limit * 1000:.0f} ms"
        self.sock.close()
        return self.worst


@pytest.fixture
def operator():
    """``operator(port)`` -> a pinging Operator, stopped after the test."""
    made = []

    def make(port: int, **fields) -> Operator:
        made.append(Operator(port, **fields))
        return made[-1]

    yield make
    for op in made:
        op._stop.set()
        op.sock.close()
