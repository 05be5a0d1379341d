"""Item 6 of issue 9: malformed input MQTT 3.1.1 lets a server accept or refuse, closed as
mosquitto 2.0.11 closes it, byte for byte the same cases against both brokers.

mosquitto's UTF-8 check refuses NUL, the control characters U+0001-U+001F and
U+007F-U+009F and the non-characters in every string field (client id, username, will
topic, topic, filter); it closes on malformed filters in SUBSCRIBE and UNSUBSCRIBE, and on
an acknowledgement that does not fit the message it names. From MQTT 3.1 clients it
tolerates the reserved CONNECT flag and fixed-header flags. One deliberate difference:
mosquitto 2.0.11 accepts MQTT 3.1 client ids longer than 23 characters, which MQTT 3.1
says to refuse with CONNACK 2; luxnode refuses them."""

import socket

import pytest

from tests.broker_stress import packets as P
from tests.broker_stress.conftest import LuxnodeBroker
from tests.support.mosquitto import Mosquitto

from .conftest import Operator, connected

CONF = "allow_anonymous true\n"


@pytest.fixture(scope="module")
def brokers(tmp_path_factory):
    """Both brokers for the whole module, each with an operator pinging it throughout."""
    lux = LuxnodeBroker(tmp_path_factory.mktemp("luxnode"), CONF).start()
    mosq = Mosquitto(tmp_path_factory.mktemp("mosquitto"), CONF).start()
    operators = {"luxnode": Operator(lux.port), "mosquitto": Operator(mosq.port)}
    yield {"luxnode": lux.port, "mosquitto": mosq.port}
    try:
        for op in operators.values():
            op.check()
        assert "Traceback" not in lux.log_text()
    finally:
        lux.stop()
        mosq.stop()


def answered(sock: socket.socket, data: bytes) -> list[int] | None:
    """Send ``data`` and a PINGREQ: the first bytes of what came back before the PINGRESP,
    or None if the broker closed the connection instead."""
    sock.settimeout(5)
    try:
        sock.sendall(data + P.PINGREQ)
        got = []
        while True:
            first, body = P.read_packet(sock)
            if first == 0xD0:
                return got
            got.append(first)
            if first == 0x20:
                got.append(body[1])  # the CONNACK return code
    except (ConnectionError, OSError):
        return None
    finally:
        sock.close()


def fresh(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def level(n: int) -> str:
    return "/".join("a" * n)


def connect_with_bit(data: bytes, index: int, bit: int) -> bytes:
    out = bytearray(data)
    out[index] |= bit
    return bytes(out)


CONNECT_31 = P.connect("mqtt31-flags", protocol=("MQIsdp", 3))
CONNECT_311 = P.connect("mqtt311-flags")
CONTROL = {"U+0001": "\x01", "U+001F": "\x1f", "U+007F": "\x7f", "U+0085": "\x85", "U+009F": "\x9f",
           "U+FDD0": "\ufdd0", "U+FFFF": "\uffff"}

# name -> (bytes sent on a fresh connection, or after CONNECT when the name says "after"), expected
CASES: dict[str, tuple[bytes, bool]] = {}
for name, char in CONTROL.items():
    CASES[f"client id {name}"] = (P.connect(f"c{char}"), False)
    CASES[f"username {name}"] = (P.connect("u", username=f"u{char}"), False)
    CASES[f"will topic {name}"] = (P.connect("w", will=(f"w{char}", b"x", 0, False)), False)
    CASES[f"after: publish topic {name}"] = (P.publish(f"t{char}", b"x"), False)
    CASES[f"after: subscribe filter {name}"] = (P.subscribe([(f"t{char}", 0)]), False)
CASES.update({
    "client id U+00A0 (printable)": (P.connect("c\u00a0"), True),
    "after: publish topic U+00A0 (printable)": (P.publish("t\u00a0", b"x"), True),
    "after: publish 201 levels": (P.publish(level(201), b"x"), True),
    "after: publish 202 levels": (P.publish(level(202), b"x"), False),
    "after: subscribe 201 levels": (P.subscribe([(level(201), 0)]), True),
    "after: subscribe 202 levels": (P.subscribe([(level(202), 0)]), False),
    "will topic 202 levels": (P.connect("w", will=(level(202), b"x", 0, False)), False),
    "after: subscribe ''": (P.subscribe([("ok", 0), ("", 0)]), False),
    "after: subscribe 'a/b#'": (P.subscribe([("ok", 0), ("a/b#", 0)]), False),
    "after: subscribe 'a+/b'": (P.subscribe([("ok", 0), ("a+/b", 0)]), False),
    "after: subscribe 'a/#/b'": (P.subscribe([("a/#/b", 0)]), False),
    "after: unsubscribe ''": (P.unsubscribe([""]), False),
    "after: unsubscribe 'a+/b'": (P.unsubscribe(["a+/b"]), False),
    "after: publish wildcard topic": (P.publish("a/+", b"x"), False),
    "after: publish NUL topic": (P.publish("a\0", b"x"), False),
    "MQTT 3.1 reserved CONNECT flag": (connect_with_bit(CONNECT_31, 2 + 2 + 6 + 1, 1), True),
    "MQTT 3.1 fixed-header flags": (connect_with_bit(CONNECT_31, 0, 3), True),
    "MQTT 3.1.1 reserved CONNECT flag": (connect_with_bit(CONNECT_311, 2 + 2 + 4 + 1, 1), False),
    "MQTT 3.1.1 fixed-header flags": (connect_with_bit(CONNECT_311, 0, 3), False),
    "MQTT 3.1 client id of 23": (P.connect("x" * 23, protocol=("MQIsdp", 3)), True),
})


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_verdict_as_mosquitto(brokers, case):
    data, accepted = CASES[case]
    for name, port in brokers.items():
        sock = connected(port, "strict") if case.startswith("after:") else fresh(port)
        got = answered(sock, data)
        if accepted:
            assert got is not None and (got[:1] != [0x20] or got[1] == 0), f"{name} refused {case}: {got}"
        else:
            assert got is None, f"{name} kept the connection open after {case}: {got}"


def test_mqtt31_long_client_id_refused_where_mosquitto_accepts_it(brokers):
    """MQTT 3.1: "If the Client ID contains more than 23 characters, the server responds
    to the CONNECT message with a CONNACK return code 2". mosquitto 2.0.11 lets it in."""
    long_id = P.connect("x" * 24, protocol=("MQIsdp", 3))
    assert answered(fresh(brokers["luxnode"]), long_id) is None  # CONNACK 2, then closed
    sock = fresh(brokers["luxnode"])
    sock.sendall(long_id)
    assert P.read_packet(sock) == (0x20, b"\x00\x02")
    assert answered(fresh(brokers["mosquitto"]), long_id) == [0x20, 0]


def delivered(port: int, qos: int, client_id: str) -> tuple[socket.socket, int]:
    """A subscriber holding one QoS ``qos`` message it has not acknowledged yet."""
    sub = connected(port, client_id)
    sub.sendall(P.subscribe([(f"acks/{client_id}", 2)]))
    assert P.read_packet(sub)[0] == 0x90
    pub = connected(port, f"{client_id}-pub")
    pub.sendall(P.publish(f"acks/{client_id}", b"m", qos=qos, packet_id=9))
    P.read_packet(pub)
    if qos == 2:  # mosquitto delivers a QoS 2 message once it has the PUBREL
        pub.sendall(P.ack(6, 9))
        P.read_packet(pub)
    pub.close()
    first, body = P.read_packet(sub)
    return sub, P.publish_fields(first, body)[1]


ACKS = {  # (QoS delivered, acknowledgements sent, closed)
    "PUBREC for a QoS 1 message": (1, [5], True),
    "PUBCOMP for a QoS 1 message": (1, [7], True),
    "PUBACK for a QoS 2 message": (2, [4], True),
    "PUBCOMP before PUBREC": (2, [7], True),
    "PUBACK after PUBREC": (2, [5, 4], True),
    "PUBREC twice": (2, [5, 5], False),
    "PUBACK twice": (1, [4, 4], False),
}


@pytest.mark.parametrize("case", sorted(ACKS))
def test_acknowledgement_that_does_not_fit_its_message(brokers, case):
    qos, kinds, closed = ACKS[case]
    for name, port in brokers.items():
        sub, packet_id = delivered(port, qos, f"acker{qos}")
        got = answered(sub, b"".join(P.ack(kind, packet_id) for kind in kinds))
        assert (got is None) == closed, f"{name}: {case} -> {got}"


@pytest.mark.parametrize("kind", [4, 5, 7])
def test_acknowledgement_of_an_unknown_packet_id_is_ignored(brokers, kind):
    for name, port in brokers.items():
        got = answered(connected(port, "unknown-ack"), P.ack(kind, 4242))
        assert got is not None, f"{name} closed on ack {kind} of an unknown id"
