"""Certificate mode sets the clock by SNTP before the TLS handshake (an ESP32 starts at
2000-01-01 and its mbedTLS checks certificate dates): the whole node against real
mosquitto with a certificate, and an SNTP server in the test that stays silent first."""

import shutil
import socket
import threading
import time

import pytest

from tests.firmware.certs import make_ca_and_server
from tests.firmware.node import Node, needs_cert_check, node_config
from tests.support.dns import DNSServer

NTP_DELTA = 2208988800  # 1900 -> 1970
pytestmark = needs_cert_check  # every test here is certificate mode


class SntpServer:
    """Answers SNTP requests on loopback once `answering` is set; before that, silence.
    Each answer is preceded by a forged one (not echoing the request's transmit time)."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answering = threading.Event()
        self.requests = 0
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def reply(originate, when):
        secs = (int(when) + NTP_DELTA) % 2**32
        return (bytes([0x24, 2, 6, 0xEC]) + bytes(20) + originate
                + secs.to_bytes(4, "big") + bytes(4) + secs.to_bytes(4, "big") + bytes(4))

    def _serve(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                continue
            self.requests += 1
            if self.answering.is_set() and len(data) >= 48:
                self.sock.sendto(self.reply(b"forged!!", time.time() + 5 * 365 * 86400), addr)
                self.sock.sendto(self.reply(data[40:48], time.time()), addr)

    def close(self):
        self.running = False
        self.thread.join(15)  # returns once the loop saw the flag; 15 s for a starved thread
        self.sock.close()


@pytest.fixture
def sntp():
    server = SntpServer()
    yield server
    server.close()


def cert_node(mosquitto, tmp_path, ntp_server, env=None):
    """A node in certificate mode asking ntp_server, and its broker (mosquitto with a certificate)."""
    ca, cert, key = make_ca_and_server(tmp_path)
    broker = mosquitto(f"allow_anonymous true\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n")
    root = tmp_path / "fs"
    root.mkdir()
    shutil.copy(ca, root / "ca.pem")
    node = Node(root, node_config(broker.port, mqtt__tls={"mode": "cert", "ca": "ca.pem"}, ntp_server=ntp_server),
                env=env).start()
    return node, broker


def test_cert_mode_sets_the_clock_before_the_handshake_and_waits_for_it(mosquitto, sntp, tmp_path):
    node, broker = cert_node(mosquitto, tmp_path, f"127.0.0.1:{sntp.port}")
    try:
        node.control("bench")
        before = int(node.expect("machine: bench").split()[-1])
        node.expect(f"luxnode: clock: no answer from 127.0.0.1:{sntp.port}; again in 2 s", timeout=15)
        node.control("bench")  # the loop ran on meanwhile: the sensor was sampled
        assert int(node.expect("machine: bench").split()[-1]) > before
        sntp.answering.set()
        line = node.expect("luxnode: clock: ", timeout=15)
        while "UTC from" not in line:
            line = node.expect("luxnode: clock: ", timeout=15)
        assert line.split()[2] == time.strftime("%Y-%m-%d", time.gmtime()), line  # not the forged year
        node.expect("luxnode: connected to 127.0.0.1", timeout=15)
        out = node.drain()
        assert out.index(f"UTC from 127.0.0.1:{sntp.port}") < out.index("mqtt: connecting"), out
        assert sntp.requests >= 2
        assert "New client connected" in broker.log_text()
    finally:
        node.stop()


def test_without_any_answer_the_node_never_connects(mosquitto, sntp, tmp_path):
    node, broker = cert_node(mosquitto, tmp_path, f"127.0.0.1:{sntp.port}")
    try:
        node.expect("again in 4 s", timeout=20)  # a growing pause between requests
        out = node.drain()
        assert "mqtt: connecting" not in out, out  # no handshake, no plain-text fallback
        assert "New client connected" not in broker.log_text()
    finally:
        node.stop()


def test_a_servers_name_is_resolved_by_polling_not_by_the_ports_blocking_lookup(mosquitto, sntp, tmp_path):
    # The default server is a name (pool.ntp.org). The port's getaddrinfo blocks here for 20 s
    # (as lwIP retries on a chip); the station's DNS server answers in 1 s, asked like the broker's name.
    dns = DNSServer("time.test", delay_s=1.0)
    sntp.answering.set()
    node, _ = cert_node(mosquitto, tmp_path, f"time.test:{sntp.port}",
                        env={"LUXNODE_SIM_DNS_SERVER": dns.address, "LUXNODE_SIM_DNS_MS": "20000"})
    try:
        node.expect(f"UTC from time.test:{sntp.port}", timeout=15)
        node.expect("luxnode: connected to 127.0.0.1", timeout=15)
    finally:
        node.stop()
        dns.close()
    assert dns.questions == 1


def test_a_dns_answer_cut_short_is_retried_not_a_crash(mosquitto, sntp, tmp_path):
    # A .local time server is asked of every mDNS responder on the link: any host there can
    # answer, with anything.
    dns = DNSServer("time.test", cut_short=True)
    node, _ = cert_node(mosquitto, tmp_path, f"time.test:{sntp.port}", env={"LUXNODE_SIM_DNS_SERVER": dns.address})
    try:
        node.expect(f"clock: malformed DNS answer for time.test from time.test:{sntp.port}; again in 2 s", timeout=15)
        node.expect("again in 4 s", timeout=15)  # asked again, with the growing pause
        out = node.drain()
        assert "crashed" not in out and "Traceback" not in out, out
    finally:
        node.stop()
        dns.close()
    assert dns.questions == 2
