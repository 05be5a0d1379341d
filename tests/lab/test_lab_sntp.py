"""The lab's time source: its SNTP server answers the firmware's own client (lux/clock.py on
the MicroPython unix port), drops what is not a client request while serving a bystander,
and the lab starts, shows, records and stops it (provisioning: tests/device/test_provision_ntp.py)."""

import os
import socket
import struct
import time
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from luxnode.lab import sntp
from luxnode.lab.sntp import SntpServer
from tests.firmware.node import SIM_BOARD
from tests.lab.labrun import LabCommand, processes_under
from tests.support.micropython import FIRMWARE, run
from tests.support.net import free_port, wait_for


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server():
    time_server = SntpServer(free_udp_port()).start()
    yield time_server
    time_server.stop()


def ask(port, request, timeout=2.0):
    """One datagram to the server; its answer, or None when none came within timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(request, ("127.0.0.1", port))
        try:
            return s.recv(1024)
        except TimeoutError:
            return None


MARK = b"\x01\x02\x03\x04\x05\x06\x07\x08"


def client_request(transmit=MARK, first=0x23):
    return bytes([first, 0, 6, 0]) + bytes(36) + transmit


CLOCK_SCRIPT = """
from lux.clock import Clock
clock = Clock("127.0.0.1:%d", print)
for _ in range(100):
    if clock.poll(100):
        break
"""


def test_the_firmwares_own_sntp_client_sets_its_clock_from_the_lab(server):
    out = run(CLOCK_SCRIPT % server.port, path=(SIM_BOARD, FIRMWARE), timeout=30)
    line = next(line for line in out.splitlines() if "UTC from" in line)
    stamp = datetime.strptime(" ".join(line.split()[1:3]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    assert abs(stamp.timestamp() - time.time()) < 5, line
    assert line.endswith(f"from 127.0.0.1:{server.port}")
    wait_for(lambda: server.answered == 1, 2, what="one answer")


def seconds(stamp):
    whole, fraction = struct.unpack("!II", stamp)
    return whole - sntp.NTP_DELTA + fraction / 2**32


def test_an_answer_is_a_synchronised_server_echoing_the_request_and_no_larger():
    before = time.time()
    reply = sntp.answer(client_request(), before, before + 0.25)
    first, stratum, poll, _, _, _, _, reference, originate, received, transmit = \
        struct.unpack("!BBBb4s4s4s8s8s8s8s", reply)
    assert len(reply) == 48 and first == 0x24 and 1 <= stratum <= 15 and poll == 6  # LI 0, v4, mode 4
    assert originate == MARK
    assert seconds(received) == pytest.approx(before, abs=1e-6)
    assert seconds(transmit) == pytest.approx(before + 0.25, abs=1e-6) == seconds(reference)
    assert sntp.answer(client_request(first=0x1B), before, before)[0] == 0x1C  # a v3 client gets v3


@pytest.mark.parametrize("request_bytes", [
    b"",                                  # empty
    client_request()[:47],                # one byte short
    client_request(first=0x24),           # a server's packet (mode 4): no answer, no loop between servers
    client_request(first=0x21),           # symmetric active
    client_request(first=0x26),           # control (mode 6, ntpq): not served
    client_request(first=0x27),           # private (mode 7, monlist): the classic amplifier
    client_request(first=0x03),           # version 0
    client_request(first=0x3B),           # version 7
], ids=["empty", "short", "server", "symmetric", "control", "private", "v0", "v7"])
def test_what_is_not_a_client_request_is_dropped_and_a_bystander_is_served(server, request_bytes):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(request_bytes, ("127.0.0.1", server.port))
        s.sendto(client_request(b"\xbb" * 8), ("127.0.0.1", server.port))  # the bystander's, after it
        assert s.recv(1024)[24:32] == b"\xbb" * 8  # the first answer is the bystander's: none for the bad one
    wait_for(lambda: server.answered == 1, 2, what="the answer counted")  # counted once sent
    assert server.ignored == 1


def test_a_long_request_gets_the_48_byte_answer_only(server):
    reply = ask(server.port, client_request() + bytes(1000))
    assert reply is not None and len(reply) == 48


def test_a_flood_of_junk_does_not_stop_the_answers(server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
        for i in range(2000):
            flood.sendto(bytes([0x27]) + bytes(i % 100), ("127.0.0.1", server.port))
    reply = wait_for(lambda: ask(server.port, client_request(), timeout=0.5), 20, what="an answer after the flood")
    assert reply[24:32] == MARK
    # counted after the send, so the client can hold its answer before the count moves
    wait_for(lambda: server.answered >= 1, 2, what="the answer counted")
    assert server.ignored > 0


def luxnode_lab(home, *extra):
    return subprocess.run([sys.executable, "-m", "luxnode", "lab", "--no-browser", "--nodes", "0", *extra],
                          env=dict(os.environ, LUXNODE_HOME=str(home)), capture_output=True, text=True, timeout=60)


def test_a_busy_ntp_port_is_one_clear_line_and_starts_nothing(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        result = luxnode_lab(tmp_path / "home", "--port", str(free_port()), "--psk-port", str(free_port()),
                             "--ws-port", str(free_port()), "--http-port", str(free_port()), "--ntp-port", str(port))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot serve time on UDP port {port} (Address already in use); choose another with --ntp-port" \
        in result.stderr
    assert processes_under(tmp_path / "home") == []


def test_the_lab_serves_time_shows_it_and_records_it(tmp_path):
    with LabCommand(tmp_path / "home", nodes=0) as lab:
        port = lab.ports["ntp_port"]
        banner = lab.wait_line("SNTP on UDP port", timeout=60)
        assert f"SNTP on UDP port {port}, all interfaces" in banner
        assert lab.registry()["broker"]["ntp_port"] == port
        reply = ask(port, client_request())
        assert reply is not None and reply[24:32] == MARK
        assert lab.interrupt() == 0, lab.output()
    assert ask(port, client_request(), timeout=0.3) is None  # stopped with the lab


def test_the_lab_refuses_ntp_port_0(tmp_path):
    result = luxnode_lab(tmp_path / "home", "--ntp-port", "0")
    assert result.returncode == 2 and "--ntp-port 0: expected a UDP port, 1..65535" in result.stderr, result.stderr
