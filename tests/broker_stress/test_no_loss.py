"""No message lost at QoS 1 and 2 under load: 1 publisher streams numbered messages (20 in
flight, as mosquitto_pub and paho do) to 1 subscriber through `luxnode broker`; every number
arrives, exactly once at QoS 2. A subscriber that stops reading loses nothing either while
the backlog fits max_queued_messages."""

import socket
import threading

import pytest

from . import packets as P

COUNT = 20_000
WINDOW = 20


def client(port: int, client_id: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(P.connect(client_id))
    assert P.read_packet(sock) == (0x20, b"\x00\x00")
    return sock


def publish_all(sock: socket.socket, qos: int, count: int) -> None:
    """Publish 0..count-1 with at most WINDOW unacknowledged; complete each QoS 2 flow."""
    sent = done = 0
    while done < count:
        if sent < count and sent - done < WINDOW:
            upto = min(count, done + WINDOW)
            sock.sendall(b"".join(P.publish("load/n", b"%08d" % n, qos=qos, packet_id=n % 65535 + 1)
                                  for n in range(sent, upto)))
            sent = upto
        first, body = P.read_packet(sock)
        kind = first >> 4
        if kind == 5:  # PUBREC -> PUBREL
            sock.sendall(P.ack(6, body[0] << 8 | body[1]))
        elif kind in (4, 7):  # PUBACK / PUBCOMP
            done += 1
        else:
            raise AssertionError(f"unexpected packet to the publisher: {first:#x}")


class Receiver(threading.Thread):
    """Reads deliveries, acknowledges them (PUBACK, or PUBREC then PUBCOMP) and counts each number."""

    def __init__(self, sock: socket.socket, count: int):
        super().__init__(daemon=True)
        self.sock, self.count = sock, count
        self.seen = [0] * count
        self.unique = 0
        self.error = None

    def run(self):
        try:
            while self.unique < self.count:
                n = int(P.receive_publish(self.sock)[1])
                self.unique += not self.seen[n]
                self.seen[n] += 1
        except Exception as exc:  # reported by the test thread
            self.error = exc


@pytest.mark.parametrize("qos", [1, 2])
def test_every_message_arrives(luxnode_broker, qos):
    broker = luxnode_broker("allow_anonymous true\n")
    sub = client(broker.port, f"noloss-sub-{qos}")
    sub.sendall(P.subscribe([("load/#", qos)]))
    assert P.read_packet(sub) == (0x90, b"\x00\x01" + bytes([qos]))
    receiver = Receiver(sub, COUNT)
    receiver.start()
    publish_all(client(broker.port, f"noloss-pub-{qos}"), qos, COUNT)
    receiver.join(60)
    assert receiver.error is None, f"{receiver.error!r} after {receiver.unique} of {COUNT} messages"
    missing = [n for n, times in enumerate(receiver.seen) if not times]
    assert not missing, f"{len(missing)} of {COUNT} lost, first {missing[:10]}"
    if qos == 2:
        assert max(receiver.seen) == 1, "a QoS 2 message arrived twice"


def test_subscriber_that_stops_reading_loses_nothing(luxnode_broker):
    """The subscriber reads nothing until the publisher has all its PUBACKs: the broker
    holds the backlog (900 < max_queued_messages 1000) and hands over every message after."""
    broker = luxnode_broker("allow_anonymous true\nmax_queued_messages 1000\n")
    sub = client(broker.port, "noloss-sleeper")
    sub.sendall(P.subscribe([("load/#", 1)]))
    assert P.read_packet(sub) == (0x90, b"\x00\x01\x01")
    publish_all(client(broker.port, "noloss-pub"), 1, 900)
    receiver = Receiver(sub, 900)
    receiver.run()
    assert receiver.error is None, receiver.error
    assert receiver.unique == 900
