"""The broker's name resolved without blocking (lux.dns): one UDP question to the WiFi
station's DNS server, polled like any socket, because the ports' getaddrinfo waits for
the answer (lwIP retries for seconds) and the ESP8266's watchdog fires after 1.6 s.
A DNS server in the test answers (through a CNAME), stays silent, or says no such name."""

import shutil
import socket
import threading

import pytest

from luxnode.paths import BOARDS_DIR
from tests.support.micropython import FAITHFUL, FIRMWARE, run

CLIENT = """
import time
import lux.dns
from lux.mqtt import MQTTClient, UP
{setup}
c = MQTTClient("dns-test", "{host}", {port}, keepalive=30, log=print)
longest = 0
start = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), start) < {limit_ms} and c.state != UP:
    t = time.ticks_ms()
    c.poll(20)
    longest = max(longest, time.ticks_diff(time.ticks_ms(), t))
print("state", c.state, "longest", longest)
"""


def encode(name):
    return b"".join(bytes([len(p)]) + p for p in name.encode().split(b".")) + b"\0"


class DnsServer:
    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.questions = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(512)
            except OSError:
                continue
            end = data.index(b"\0", 12) + 5
            question = data[12:end]
            self.questions.append(question)
            if self.mode == "silent":
                continue
            if self.mode == "nxdomain":
                self.sock.sendto(data[:2] + b"\x81\x83\0\1\0\0\0\0\0\0" + question, addr)
                continue
            if self.mode == "short":  # says it holds an answer, then ends
                self.sock.sendto(data[:2] + b"\x81\x80\0\1\0\1\0\0\0\0" + question + b"\xc0\x0c\0\1", addr)
                continue
            cname = encode("real.test")
            answers = (b"\xc0\x0c\0\5\0\1\0\0\0\x3c" + len(cname).to_bytes(2, "big") + cname
                       + b"\xc0\x0c\0\1\0\1\0\0\0\x3c\0\4" + bytes([127, 0, 0, 1]))
            self.sock.sendto(b"\x12\x34" + b"\x81\x80\0\1\0\2\0\0\0\0" + question + answers, addr)  # not ours
            self.sock.sendto(data[:2] + b"\x81\x80\0\1\0\2\0\0\0\0" + question + answers, addr)

    def close(self):
        self.running = False
        self.thread.join(15)  # returns once the loop saw the flag; 15 s for a starved thread
        self.sock.close()


@pytest.fixture
def dns_server():
    servers = []

    def make(mode):
        servers.append(DnsServer(mode))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def client(tmp_path, dns, host, port, limit_ms, station=True):
    """The client resolving host; station: dns is the station's DNS server (else the real lux.dns.server)."""
    if FAITHFUL:  # the lookups on that chip's board (its socket, its lwIP binding)
        shutil.copy(BOARDS_DIR / f"{FAITHFUL}.json", tmp_path / "board.json")
    setup = 'lux.dns.server = lambda host: ("127.0.0.1", %d)' % dns.port if station else ""
    return run(CLIENT.format(setup=setup, host=host, port=port, limit_ms=limit_ms), cwd=tmp_path,
               env={"LUXNODE_SIM_MDNS": f"127.0.0.1:{dns.port}"})


def test_a_broker_name_is_resolved_through_its_cname_and_connected(mosquitto, dns_server, tmp_path):
    broker = mosquitto("allow_anonymous true\n")
    dns = dns_server("answer")
    out = client(tmp_path, dns, "broker.test", broker.port, 10000)
    assert "mqtt: broker.test is 127.0.0.1" in out and "state 3" in out, out
    assert dns.questions == [encode("broker.test") + b"\0\1\0\1"]  # one question, type A


def test_a_silent_dns_server_costs_the_loop_nothing_and_is_asked_again(dns_server, tmp_path):
    dns = dns_server("silent")
    out = client(tmp_path, dns, "broker.test", 1, 7000)
    assert "mqtt error: no DNS answer for broker.test; retry in" in out, out
    assert int(out.split("longest")[1]) < 500, out  # each poll returns: the watchdog is fed on time
    assert len(dns.questions) == 2  # after the 5 s bound and the 1 s backoff, once more


def test_no_such_name_is_an_error_that_names_it(dns_server, tmp_path):
    dns = dns_server("nxdomain")
    out = client(tmp_path, dns, "nowhere.test", 1, 1500)
    assert "mqtt error: no address for nowhere.test (DNS error 3); retry in" in out, out


def test_an_answer_cut_short_is_an_error_that_names_it_and_the_loop_goes_on(dns_server, tmp_path):
    dns = dns_server("short")
    out = client(tmp_path, dns, "broker.test", 1, 2500)
    assert "mqtt error: malformed DNS answer for broker.test; retry in" in out, out
    assert "Traceback" not in out and "state 0" in out, out
    assert len(dns.questions) >= 2  # asked again after the backoff


@pytest.mark.skipif(not FAITHFUL, reason="the plain unix port sends to the host's real mDNS group; the faithful "
                    "board's socket has the link's responders where LUXNODE_SIM_MDNS says")
def test_a_local_name_is_asked_of_the_links_mdns_responders_not_the_dns_server(mosquitto, dns_server, tmp_path):
    # homeassistant.local and the like: a router's DNS server does not know them (the ESP32
    # port's own getaddrinfo asks mDNS, blocking for up to 5 s; the ESP8266's cannot at all)
    broker = mosquitto("allow_anonymous true\n")
    responder = dns_server("answer")  # answers as an mDNS responder does a legacy unicast question
    out = client(tmp_path, responder, "broker.local", broker.port, 10000, station=False)
    assert "mqtt: broker.local is 127.0.0.1" in out and "state 3" in out, out
    assert responder.questions == [encode("broker.local") + b"\0\1\0\1"]
