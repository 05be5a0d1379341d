"""The broker core without sockets: bytes in through Client.data_received, bytes out through a link."""

from luxnode.broker.core import Broker
from luxnode.broker.log import Log
from luxnode.broker.subscriptions import SubscriptionIndex
from luxnode.mqtt import Decoder, encoder
from luxnode.mqtt.packets import Connect, Will

from .conftest import LogLines, make_config


class RecordingLink:
    """The link interface the core writes to, keeping what it was given."""

    def __init__(self):
        self.written = b""
        self.closed = False
        self.reading = True
        self.decoder = Decoder(server=False)

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def packets(self) -> list:
        data, self.written = self.written, b""
        return self.decoder.feed(data)


class AllowAll:
    username_as_client_id = False

    def authenticate(self, client_id, username, password, psk_identity=None, cert_identity=None, psk_key=None):
        return 0, username

    def allowed(self, username, client_id, topic, access):
        return not topic.startswith("secret/")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def connected(broker: Broker, client_id: str, **fields):
    link = RecordingLink()
    client = broker.connection_made(link, AllowAll(), f"test:{client_id}")
    client.data_received(encoder.connect(Connect(client_id=client_id, **fields)))
    assert link.packets()[0].return_code == 0
    return client, link


def test_one_write_per_receiver_per_batch():
    broker = Broker(make_config(), Log((), LogLines()))
    sub, sub_link = connected(broker, "sub")
    sub.data_received(encoder.subscribe(1, [("t/#", 0)]))
    sub_link.packets()
    writes = []
    sub_link.write = writes.append
    pub, _ = connected(broker, "pub")
    pub.data_received(b"".join(encoder.publish(b"t/x", b"%d" % n) for n in range(100)))
    assert len(writes) == 1
    assert [p.payload for p in Decoder(server=False).feed(writes[0])] == [b"%d" % n for n in range(100)]


def test_keepalive_tick_with_a_controlled_clock():
    clock = Clock()
    broker = Broker(make_config(), Log({"all"}, LogLines()), clock=clock)
    client, link = connected(broker, "ka", keepalive=10)
    clock.now += 15.0
    broker.tick()
    assert not link.closed
    clock.now += 0.01
    broker.tick()
    assert link.closed


def test_acl_denied_publish_is_acked_but_not_routed():
    broker = Broker(make_config(), Log((), LogLines()))
    sub, sub_link = connected(broker, "sub")
    sub.data_received(encoder.subscribe(1, [("#", 1), ("secret/#", 1)]))
    assert sub_link.packets()[0].return_codes == [1, 0x80]
    pub, pub_link = connected(broker, "pub")
    pub.data_received(encoder.publish(b"secret/x", b"no", 1, packet_id=3))
    assert pub_link.packets()[0].packet_id == 3
    assert sub_link.packets() == []


def test_slow_subscriber_holds_the_publisher_until_it_catches_up():
    broker = Broker(make_config(), Log((), LogLines()))
    sub, sub_link = connected(broker, "sub")
    sub.data_received(encoder.subscribe(1, [("t", 0)]))
    pub, pub_link = connected(broker, "pub")
    sub.pause_writing()  # its transport buffer is full
    pub.data_received(encoder.publish(b"t", b"x"))
    assert not pub_link.reading
    sub.resume_writing()
    assert pub_link.reading


def test_subscription_index_prunes_and_counts():
    index = SubscriptionIndex()
    a, b = object(), object()
    index.add("a/+/c", a, 1)
    index.add("a/#", a, 0)
    index.add("a/b/c", b, 2)
    assert dict(index.match("a/b/c")) == {a: 1, b: 2}
    assert index.match("$a/b/c") == []
    assert index.remove("a/+/c", a) and not index.remove("a/+/c", a)
    assert dict(index.match("a/b/c")) == {a: 0, b: 2}
    index.remove("a/#", a)
    index.remove("a/b/c", b)
    assert index.count == 0 and index._root.children == {}


def test_live_subscriber_backlog_holds_the_publisher_for_a_bounded_time():
    clock = Clock()
    broker = Broker(make_config(), Log((), LogLines()), clock=clock)
    sub, sub_link = connected(broker, "sub")
    sub.data_received(encoder.subscribe(1, [("t", 1)]))
    pub, pub_link = connected(broker, "pub")
    pub.data_received(b"".join(encoder.publish(b"t", b"%d" % n, 1, packet_id=n + 1) for n in range(130)))
    assert not pub_link.reading  # 20 in flight + 100 queued: the publisher waits
    deliveries = [p for p in sub_link.packets() if p.type == 3]
    assert len(deliveries) == 20
    sub.data_received(b"".join(encoder.puback(p.packet_id) for p in deliveries))
    assert not pub_link.reading  # 110 still queued
    clock.now += 2.5
    broker.tick()
    assert pub_link.reading  # the subscriber is not catching up: its queue takes the rest
    acked = 20
    while acked < 130:
        batch = [p for p in sub_link.packets() if p.type == 3]
        acked += len(batch)
        sub.data_received(b"".join(encoder.puback(p.packet_id) for p in batch))
    assert broker.sessions["sub"].inflight == {} and not sub.hold_exempt


def test_connection_messages_off_keeps_protocol_warnings():
    lines = LogLines()
    broker = Broker(make_config(connection_messages=False), Log({"notice", "warning"}, lines))
    client, link = connected(broker, "quiet")
    client.data_received(encoder.DISCONNECT_BYTES)
    noisy, _ = connected(broker, "noisy")
    noisy.data_received(b"\xf0\x00")
    assert "quiet" not in lines.text
    assert "Client noisy (test:noisy) disconnected: malformed packet: reserved packet type 15." in lines.text


def test_stuck_reader_is_held_for_at_most_the_limit_then_loses_qos0():
    clock = Clock()
    lines = LogLines()
    broker = Broker(make_config(), Log({"notice"}, lines), clock=clock)
    stuck, stuck_link = connected(broker, "stuck")
    stuck.data_received(encoder.subscribe(1, [("t", 0)]))
    healthy, healthy_link = connected(broker, "healthy")
    healthy.data_received(encoder.subscribe(1, [("t", 0)]))
    stuck_link.packets(), healthy_link.packets()
    pub, pub_link = connected(broker, "pub")
    stuck.pause_writing()
    pub.data_received(encoder.publish(b"t", b"1"))
    assert not pub_link.reading
    clock.now += 2.5
    broker.tick()
    assert pub_link.reading
    pub.data_received(encoder.publish(b"t", b"2"))
    assert pub_link.reading  # no longer held by the stuck reader
    assert [p.payload for p in healthy_link.packets()] == [b"1", b"2"]
    assert [p.payload for p in stuck_link.packets()] == [b"1"]  # "2" dropped for it
    assert "Outgoing messages are being dropped for client stuck." in lines.text
    stuck.resume_writing()
    pub.data_received(encoder.publish(b"t", b"3"))
    assert [p.payload for p in stuck_link.packets()] == [b"3"]


class Revocable(AllowAll):
    """Lets everyone in and everywhere until told otherwise (as a reloaded file would)."""

    def __init__(self):
        self.refused: set[str] = set()
        self.denied: set[str] = set()

    def authenticate(self, client_id, username, password, psk_identity=None, cert_identity=None, psk_key=None):
        return (5, None) if client_id in self.refused else (0, username)

    def allowed(self, username, client_id, topic, access):
        return topic not in self.denied


def test_auth_reload_disconnects_refused_clients_with_their_will_and_forgets_acl_decisions():
    lines = LogLines()
    broker = Broker(make_config(), Log({"notice"}, lines))
    auth = Revocable()
    links = {}
    for client_id in ("watcher", "revoked", "kept"):
        links[client_id] = RecordingLink()
        client = broker.connection_made(links[client_id], auth, f"test:{client_id}")
        client.data_received(encoder.connect(Connect(client_id=client_id, will=Will(f"{client_id}/status", b"gone"))))
    watcher = broker.sessions["watcher"].client
    watcher.data_received(encoder.subscribe(1, [("+/status", 0), ("t", 0)]))
    kept = broker.sessions["kept"].client
    kept.data_received(encoder.publish(b"t", b"allowed"))
    links["watcher"].packets()
    auth.refused.add("revoked")
    auth.denied.add("t")
    broker.auth_reloaded()
    assert links["revoked"].closed and not links["kept"].closed and not links["watcher"].closed
    assert "Client revoked disconnected, not authorised: the reloaded auth files refuse it" in lines.text
    kept.data_received(encoder.publish(b"t", b"denied now"))
    assert [(p.topic, p.payload) for p in links["watcher"].packets() if p.type == 3] == [
        ("revoked/status", b"gone")]
