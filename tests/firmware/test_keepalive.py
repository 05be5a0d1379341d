"""Keepalive of lux.mqtt against a scripted broker (CPython sockets) that floods
the client, or never answers PINGREQ: the timing is measured on the broker side.
Also the DUP flag, which that broker can see since it never acknowledges."""

import queue
import socket
import threading
import time

import pytest

from tests.firmware.client import MPClient
from tests.support.net import Listener, wait_for

PINGREQ = b"\xc0\x00"
PINGRESP = b"\xd0\x00"
CONNACK = b"\x20\x02\x00\x00"


def read_packet(conn):
    """One MQTT packet (first byte, body) from a blocking socket; None at EOF."""
    head = conn.recv(1)
    if not head:
        return None
    rem, shift = 0, 0
    while True:
        b = conn.recv(1)[0]
        rem |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    body = b""
    while len(body) < rem:
        chunk = conn.recv(rem - len(body))
        if not chunk:
            return None
        body += chunk
    return head[0], body


class ScriptedBroker:
    """Accepts clients; records (time, connection number, first byte) of every packet."""

    def __init__(self, answer_pings=True, flood_s=0.0):
        self.answer_pings = answer_pings
        self.flood_s = flood_s
        self.events = []
        self.flood_done = None
        self.conns = []
        self.listener = Listener(self._accepted)
        self.port = self.listener.port

    def _accepted(self, conn):
        self.conns.append(conn)
        threading.Thread(target=self._serve, args=(conn, len(self.conns)), daemon=True).start()

    def _serve(self, conn, number):
        # The reader never waits for the writer: packet times are when they arrived.
        replies = queue.Queue()
        threading.Thread(target=self._write, args=(conn, replies), daemon=True).start()
        try:
            while True:
                packet = read_packet(conn)
                if packet is None:
                    break
                self.events.append((time.monotonic(), number, packet[0]))
                if packet[0] == 0x10:
                    replies.put(CONNACK)
                elif packet[0] == 0xC0 and self.answer_pings:
                    replies.put(PINGRESP)
        except OSError:
            pass
        replies.put(None)

    def _write(self, conn, replies):
        """Replies first, then (after CONNACK, if asked) a flood of QoS 0 PUBLISHes."""
        msg = b"\x30\x44\x00\x05t/set" + b"x" * 61  # QoS 0 PUBLISH, 70 bytes
        end = None
        sent = 0
        try:
            while True:
                flooding = end is not None and time.monotonic() < end
                try:
                    reply = replies.get(timeout=0 if flooding else 0.05)
                except queue.Empty:
                    reply = b""
                if reply is None:
                    return
                if reply:
                    conn.sendall(reply)
                    if reply == CONNACK and self.flood_s:
                        end = time.monotonic() + self.flood_s
                elif flooding:
                    conn.sendall(msg * 20)
                    sent += 20
                elif end is not None and self.flood_done is None:
                    self.flood_done = sent
        except OSError:
            self.flood_done = sent

    def close(self):
        self.listener.close()
        for c in self.conns:
            c.close()


@pytest.fixture
def scripted():
    made = []

    def make(**kw):
        b = ScriptedBroker(**kw)
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


def test_pingreq_keeps_its_schedule_through_a_flood(scripted):
    keepalive = 2
    broker = scripted(flood_s=3 * keepalive)
    client = MPClient(port=broker.port, keepalive=keepalive, subs=[["t/set", 0]], slow_ms=1)
    try:
        client.expect("connected 1")
        wait_for(lambda: broker.flood_done is not None, 3 * keepalive + 10, what="the end of the flood")
        assert broker.flood_done, "the flood did not run"
        assert broker.flood_done * 70 > 100_000  # a real burst, longer than the keepalive
        sent = [(t, kind) for t, n, kind in broker.events if n == 1]
        connects = [e for e in broker.events if e[2] == 0x10]
        assert len(connects) == 1, "the client reconnected during the flood"
        # Broker-side gaps between packets from the client never exceed the keepalive
        # (mosquitto drops a client after 1.5 x keepalive of silence).
        times = [t for t, _ in sent] + [time.monotonic()]
        gaps = [b - a for a, b in zip(times, times[1:])]
        assert max(gaps) < keepalive, gaps
        pings = [t for t, kind in sent if kind == 0xC0]
        assert len(pings) >= 2 * keepalive  # one every keepalive/2
        assert not [line for line in client.drain() if "error" in line]
    finally:
        client.close()


def test_missing_pingresp_is_detected_within_one_keepalive(scripted):
    keepalive = 2
    broker = scripted(answer_pings=False)
    client = MPClient(port=broker.port, keepalive=keepalive, backoff_max_ms=1000)
    try:
        client.expect("connected 1")
        line = client.expect("log mqtt error", timeout=3 * keepalive)
        assert "no PINGRESP within keepalive" in line
        client.expect("connected 2", timeout=5)
        first = [t for t, n, kind in broker.events if n == 1]
        connack_at, last_ping = first[0], [t for t, n, kind in broker.events if n == 1 and kind == 0xC0][0]
        reconnect = [t for t, n, kind in broker.events if n == 2 and kind == 0x10][0]
        # Silent broker from the CONNACK on: detected within one keepalive, then reconnected
        # after the first backoff step (at most 1 s).
        assert last_ping - connack_at == pytest.approx(keepalive / 2, abs=0.4)
        assert reconnect - connack_at < keepalive + 1.0 + 0.5
    finally:
        client.close()


def test_dup_only_when_a_qos1_message_goes_out_again(scripted):
    broker = scripted()  # never sends PUBACK
    client = MPClient(port=broker.port, backoff_max_ms=1000)

    def publishes(number):
        return [kind for _, n, kind in broker.events if n == number and kind & 0xF0 == 0x30]
    try:
        client.expect("connected 1")
        client.send("pub t/a 1 0 sent")
        assert client.expect("published") == "published True"
        wait_for(lambda: publishes(1), what="the first PUBLISH")
        broker.conns[0].shutdown(socket.SHUT_RDWR)  # the connection drops before any PUBACK
        assert "closed by broker" in client.expect("log mqtt error")
        client.send("pub t/b 1 0 queued")  # during the backoff: never sent yet
        assert client.expect("published") == "published True"
        client.expect("connected 2", timeout=5)
        wait_for(lambda: len(publishes(2)) == 2, what="both messages after the reconnect")
        # t/a a second time with DUP (0x3a), t/b for the first time without (MQTT-3.3.1-1).
        assert publishes(1) == [0x32] and publishes(2) == [0x3A, 0x32]
    finally:
        client.close()
