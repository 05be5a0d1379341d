"""CONNECT validation and malformed packets: the offender is closed, with a log line naming the cause."""

import pytest

from luxnode.mqtt import encoder
from luxnode.mqtt.packets import Connect

from .conftest import RawClient


def connack_code(port: int, packet: Connect) -> int:
    raw = RawClient(port).send(encoder.connect(packet))
    try:
        code = raw.next_packet().return_code
        if code:
            assert raw.closed_by_broker()
        return code
    finally:
        raw.close()


def test_connect_validation_return_codes(start_broker):
    broker = start_broker(max_keepalive=120)
    port = broker.ports[0]
    assert connack_code(port, Connect("MQTT", 5, True, 10, "v5")) == 1
    assert connack_code(port, Connect("MQTT", 3, True, 10, "wrong-level")) == 1
    assert connack_code(port, Connect("MQTT", 4, False, 10, "")) == 2
    assert connack_code(port, Connect("MQTT", 4, True, 10, "")) == 0
    assert connack_code(port, Connect("MQIsdp", 3, True, 10, "mqtt31-client")) == 0
    assert connack_code(port, Connect("MQIsdp", 3, True, 10, "x" * 24)) == 2
    assert connack_code(port, Connect("MQIsdp", 3, True, 10, "")) == 2
    assert connack_code(port, Connect("MQTT", 4, True, 121, "slow")) == 2
    assert connack_code(port, Connect("MQTT", 4, True, 120, "y" * 100)) == 0
    broker.log.wait("refused: keepalive 121 s above max_keepalive 120")


def test_clientid_prefixes_refused_by_auth(start_broker):
    port = start_broker(clientid_prefixes="lux-").ports[0]
    assert connack_code(port, Connect(client_id="lux-1")) == 0
    assert connack_code(port, Connect(client_id="other")) != 0


MALFORMED = {
    "bad remaining length": (b"\x30\xff\xff\xff\xff\x01", "remaining length longer than 4 bytes"),
    "reserved flags": (b"\x80\x06\x00\x01\x00\x01a\x00", "reserved flags 0x0 set on SUBSCRIBE"),
    "invalid utf-8": (b"\x30\x05\x00\x02\xc3\x28x", "invalid UTF-8 in PUBLISH topic"),
    "oversize": (encoder.publish(b"big", b"x" * 2000), "exceeds the limit of 1000"),
    "qos 3": (b"\x36\x03\x00\x01t", "PUBLISH with QoS 3"),
    "wildcard topic": (encoder.publish(b"a/#", b""), "invalid PUBLISH topic: wildcard in topic name 'a/#'"),
    "pubrel flags": (b"\x60\x02\x00\x01", "reserved flags 0x0 set on PUBREL"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_packet_closes_only_that_connection(start_broker, clients, raw_clients, case):
    broker = start_broker(message_size_limit=1000)
    port = broker.ports[0]
    bystander = clients(port, client_id="bystander").connect()
    bystander.subscribe("t", 1)
    offender = raw_clients(port).connect("offender")
    data, cause = MALFORMED[case]
    offender.send(data)
    assert offender.closed_by_broker()
    text = broker.log.wait("Client offender (127.0.0.1:")
    (line,) = [line for line in text.splitlines() if "Client offender (" in line]
    assert "disconnected: malformed packet: " in line and cause in line
    publisher = clients(port).connect()
    publisher.publish("t", b"still here", qos=1)
    assert bystander.received(1)[0].payload == b"still here"


def test_malformed_connect_and_packets_before_connect(broker, raw_clients):
    port = broker.ports[0]
    bad_flag = bytearray(encoder.connect(Connect(client_id="c")))
    bad_flag[9] |= 1
    assert raw_clients(port).send(bytes(bad_flag)).closed_by_broker()
    broker.log.wait("malformed packet: reserved CONNECT flag set")
    assert raw_clients(port).send(encoder.subscribe(1, [("a", 0)])).closed_by_broker()
    broker.log.wait("malformed packet: SUBSCRIBE before CONNECT")
    twice = raw_clients(port).connect("twice")
    assert twice.send(encoder.connect(Connect(client_id="twice"))).closed_by_broker()
    broker.log.wait("protocol error: second CONNECT")
    assert raw_clients(port).send(b"\x10\x06\x00\x04ABCD").closed_by_broker()
    broker.log.wait("unknown protocol name 'ABCD'")


@pytest.mark.parametrize("topic_filter", ["a/#/b", "x+/y", "a/b#", ""])
def test_malformed_filters_close_the_connection(broker, raw_clients, topic_filter):
    """MQTT-4.7.1-2/3, 4.7.3-1 let a server close or refuse; mosquitto closes, so do we."""
    raw = raw_clients(broker.ports[0]).connect()
    raw.send(encoder.subscribe(7, [("ok/+", 2), (topic_filter, 1)]))
    assert raw.closed_by_broker()
    broker.log.wait("malformed packet: SUBSCRIBE with an invalid filter")


def test_ping_and_unsuback(broker, raw_clients):
    raw = raw_clients(broker.ports[0]).connect()
    raw.send(encoder.PINGREQ_BYTES)
    assert raw.next_packet().type == 13
    raw.send(encoder.unsubscribe(9, ["never/subscribed"]))
    assert (raw.next_packet().type, ) == (11,)


def test_packets_before_a_malformed_one_in_the_same_read_are_handled(broker, clients, raw_clients):
    port = broker.ports[0]
    watcher = clients(port).connect()
    watcher.subscribe("batch/#", 0)
    raw = raw_clients(port)
    raw.send(encoder.connect(Connect(client_id="batch")) + encoder.publish(b"batch/x", b"before-bad") + b"\x36\x00")
    assert raw.next_packet().return_code == 0
    assert raw.closed_by_broker()
    assert watcher.received(1)[0].payload == b"before-bad"
    broker.log.wait("Client batch (127.0.0.1:")
