"""Publish/subscribe through the luxnode broker with paho clients."""

import pytest

from luxnode.mqtt import encoder
from luxnode.mqtt.decoder import ZERO_COPY_PAYLOAD


@pytest.mark.parametrize("pub_qos", [0, 1, 2])
@pytest.mark.parametrize("sub_qos", [0, 1, 2])
def test_delivery_qos_is_min_of_publish_and_subscription(broker, clients, pub_qos, sub_qos):
    port = broker.ports[0]
    sub = clients(port, client_id="sub").connect()
    assert sub.subscribe("lux/+/light", sub_qos) == [sub_qos]
    pub = clients(port, client_id="pub").connect()
    for n in range(3):
        pub.publish("lux/n1/light", f"m{n}".encode(), qos=pub_qos)
    messages = sub.received(3)
    assert [m.payload for m in messages] == [b"m0", b"m1", b"m2"]
    assert {m.qos for m in messages} == {min(pub_qos, sub_qos)}
    assert not any(m.retain for m in messages)


def test_retained_message_and_empty_payload_clears(broker, clients):
    port = broker.ports[0]
    pub = clients(port).connect()
    pub.publish("lux/n1/status", b"online", qos=1, retain=True)
    first = clients(port).connect()
    first.subscribe("lux/#", 1)
    (message,) = first.received(1)
    assert (message.topic, message.payload, message.retain, message.qos) == ("lux/n1/status", b"online", True, 1)
    pub.publish("lux/n1/status", b"", qos=1, retain=True)
    # Live subscribers see the clearing message too, without the retain flag.
    assert first.received(2)[1].payload == b"" and not first.messages[1].retain
    later = clients(port).connect()
    later.subscribe("lux/#", 1)
    pub.publish("lux/marker", b"m", qos=1)
    assert [m.topic for m in later.received(1)] == ["lux/marker"]
    assert broker.call(lambda: dict(broker.broker.retained)) == {}


def test_overlapping_subscriptions_deliver_once_at_highest_qos(broker, clients):
    port = broker.ports[0]
    sub = clients(port).connect()
    sub.subscribe([("a/#", 0), ("a/+/c", 2), ("a/b/c", 1)])
    pub = clients(port).connect()
    pub.publish("a/b/c", b"x", qos=2)
    pub.publish("a/end", b"end", qos=0)
    messages = sub.received(2)
    # paho hands a QoS 2 message over at PUBREL: a network thread that reads late takes in the
    # QoS 0 marker behind it at once and hands that over first, so the order is not checked.
    assert sorted((m.topic, m.qos) for m in messages) == [("a/b/c", 2), ("a/end", 0)]


def test_wildcards_and_dollar_topics(broker, clients):
    port = broker.ports[0]
    everything = clients(port).connect()
    assert everything.subscribe([("#", 0), ("+/x", 0)]) == [0, 0]
    sys_only = clients(port).connect()
    sys_only.subscribe("$lab/#", 0)
    pub = clients(port).connect()
    pub.publish("$lab/x", b"dollar", qos=1)
    pub.publish("plain/x", b"plain", qos=1)
    assert [m.payload for m in sys_only.received(1)] == [b"dollar"]
    assert [m.payload for m in everything.received(1)] == [b"plain"]
    pub.publish("marker", b"m", qos=1)
    assert everything.received(2)[1].payload == b"m"
    assert len(everything.messages) == 2 and len(sys_only.messages) == 1



def test_unsubscribe_stops_delivery(broker, clients, raw_clients):
    port = broker.ports[0]
    sub = raw_clients(port).connect()
    sub.send(encoder.subscribe(1, [("t/#", 0), ("marker", 0)]))
    assert sub.next_packet().return_codes == [0, 0]
    sub.send(encoder.unsubscribe(2, ["t/#"]))
    assert (sub.next_packet().packet_id) == 2
    pub = clients(port).connect()
    pub.publish("t/2", b"b", qos=1)
    pub.publish("marker", b"m", qos=1)
    assert sub.next_packet().payload == b"m"


def test_clients_cannot_publish_to_sys(broker, clients):
    port = broker.ports[0]
    watcher = clients(port).connect()
    watcher.subscribe([("$SYS/#", 0), ("marker", 0)])
    pub = clients(port).connect()
    pub.publish("$SYS/broker/version", b"forged", qos=1)  # acknowledged, dropped
    pub.publish("marker", b"m", qos=1)
    assert [m.payload for m in watcher.received(1)] == [b"m"]


@pytest.mark.parametrize("qos", [0, 1, 2])
def test_large_payload_arrives_whole_between_small_ones(broker, clients, qos):
    """A payload of ZERO_COPY_PAYLOAD or more is written apart from its header: the
    messages around it keep their order and every byte arrives."""
    port = broker.ports[0]
    subs = [clients(port, client_id=f"sub{n}").connect() for n in range(2)]
    for sub in subs:
        assert sub.subscribe("lux/big", qos) == [qos]
    pub = clients(port, client_id="pub").connect()
    large = bytes(range(256)) * (ZERO_COPY_PAYLOAD // 256 + 1)
    for payload in (b"before", large, b"after"):
        pub.publish("lux/big", payload, qos=qos)
    for sub in subs:
        assert [m.payload for m in sub.received(3, timeout=30)] == [b"before", large, b"after"]
