"""Persistence across a crash: `kill -9` and restart keep retained messages and a persistent
session's queued QoS 1 message (autosave_interval 0 saves before any acknowledgement leaves);
with a periodic autosave a clean stop (SIGTERM) saves everything."""

import socket

from . import packets as P


def session(port: int, client_id: str, clean: bool = False) -> tuple[socket.socket, bool]:
    """A raw client: returns the socket and CONNACK's session-present flag."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(P.connect(client_id, keepalive=60, clean=clean))
    first, body = P.read_packet(sock)
    assert first == 0x20 and body[1] == 0, f"CONNACK refused: {body!r}"
    return sock, bool(body[0] & 1)


def subscribe(sock: socket.socket, topic: str, qos: int) -> None:
    sock.sendall(P.subscribe([(topic, qos)], packet_id=7))
    assert P.read_packet(sock) == (0x90, b"\x00\x07" + bytes([qos]))


def publish_acked(port: int, topic: str, payload: bytes, retain: bool = False) -> None:
    """Publish at QoS 1 and return only after the broker's PUBACK: from then on it owns the message."""
    sock, _ = session(port, "pers-publisher", clean=True)
    with sock:
        sock.sendall(P.publish(topic, payload, qos=1, retain=retain, packet_id=42))
        assert P.read_packet(sock) == (0x40, b"\x00\x2a")
        sock.sendall(P.DISCONNECT)


def prepare(port: int) -> None:
    """A persistent session subscribed to lab/queue goes offline; then one retained and
    one QoS 1 message for the offline session are acknowledged by the broker."""
    keeper, _ = session(port, "keeper")
    subscribe(keeper, "lab/queue", 1)
    keeper.sendall(P.DISCONNECT)
    keeper.close()
    publish_acked(port, "lab/retained", b"kept-across-restart", retain=True)
    publish_acked(port, "lab/queue", b"queued-while-offline")


def check_survived(port: int) -> None:
    keeper, present = session(port, "keeper")
    with keeper:
        assert present, "the persistent session was lost"
        assert P.receive_publish(keeper) == ("lab/queue", b"queued-while-offline", 1)
    late, _ = session(port, "late-reader", clean=True)
    with late:
        late.sendall(P.subscribe([("lab/retained", 0)], packet_id=1))
        assert P.read_packet(late)[0] == 0x90
        first, body = P.read_packet(late)
        assert first & 0x01, "retained flag"
        assert body.endswith(b"kept-across-restart")


def test_kill_9_and_restart_keeps_retained_and_queued_qos1(luxnode_broker, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    conf = f"allow_anonymous true\npersistence true\npersistence_location {store}\nautosave_interval 0\n"
    broker = luxnode_broker(conf)
    prepare(broker.port)
    broker.kill()
    restarted = luxnode_broker(conf, port=broker.port)
    check_survived(restarted.port)


def test_sigterm_saves_with_periodic_autosave(luxnode_broker, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    conf = f"allow_anonymous true\npersistence true\npersistence_location {store}\nautosave_interval 1800\n"
    broker = luxnode_broker(conf)
    prepare(broker.port)
    broker.stop()
    assert any(store.iterdir()), "nothing written to persistence_location"
    restarted = luxnode_broker(conf, port=broker.port)
    check_survived(restarted.port)


def test_restart_without_persistence_forgets(luxnode_broker):
    """The control: without persistence the same steps leave nothing behind, so the tests
    above prove the store, not a broker that was never stopped."""
    broker = luxnode_broker("allow_anonymous true\n")
    prepare(broker.port)
    broker.kill()
    restarted = luxnode_broker("allow_anonymous true\n", port=broker.port)
    keeper, present = session(restarted.port, "keeper")
    keeper.close()
    assert not present


def test_kill_9_mid_stream_keeps_every_acknowledged_message(luxnode_broker, tmp_path):
    """A publisher streams QoS 1 messages to an offline persistent session; the broker is
    killed (-9) mid-stream. After the restart the session holds every message whose PUBACK
    the publisher had received: an acknowledgement is a promise the store keeps."""
    store = tmp_path / "store"
    store.mkdir()
    conf = f"allow_anonymous true\npersistence true\npersistence_location {store}\nautosave_interval 0\n"
    broker = luxnode_broker(conf)
    keeper, _ = session(broker.port, "keeper")
    subscribe(keeper, "lab/stream", 1)
    keeper.sendall(P.DISCONNECT)
    keeper.close()

    acked: set[int] = set()
    pub, _ = session(broker.port, "stream-publisher", clean=True)
    next_n = 0
    with pub:
        while len(acked) < 300:  # then kill; 900 at most, below max_queued_messages 1000
            while next_n < 900 and next_n - len(acked) < 20:
                pub.sendall(P.publish("lab/stream", b"%d" % next_n, qos=1, packet_id=next_n + 1))
                next_n += 1
            first, body = P.read_packet(pub)
            assert first == 0x40
            acked.add((body[0] << 8 | body[1]) - 1)
        broker.kill()

    restarted = luxnode_broker(conf, port=broker.port)
    keeper, present = session(restarted.port, "keeper")
    assert present
    got: set[int] = set()
    with keeper:
        keeper.settimeout(3)
        while not acked <= got:
            topic, payload, _ = P.receive_publish(keeper)
            got.add(int(payload))
    assert acked <= got
