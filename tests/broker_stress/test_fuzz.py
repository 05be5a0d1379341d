"""Random and mutated packets against `luxnode broker`: it must survive every one, keep
serving well-behaved paho clients, and hang up on packets MQTT 3.1.1 calls malformed."""

import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import packets as P
from .bystanders import Bystanders
from .fuzzing import assert_healthy, fuzz_settings, send_and_hang_up


@pytest.fixture
def target(luxnode_broker):
    broker = luxnode_broker("allow_anonymous true\n")
    bystanders = Bystanders(broker.port)
    yield broker, bystanders
    bystanders.close()


def answer_until_closed(port: int, data: bytes) -> bytes:
    """Send ``data`` (our side stays open) and return what the broker sends until it hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
        except socket.timeout:
            pytest.fail(f"broker kept the connection open 5 s after {data[:64]!r}; it answered {received!r}")
    return received


# -- strategies ---------------------------------------------------------------------------

# Mostly topic-like strings, with the characters MQTT treats specially (wildcards, $, NUL).
topic_chars = st.sampled_from(list("ab/+#$ \x00é") + ["\U0001f4a1"])
topics = st.one_of(st.text(topic_chars, max_size=12), st.text(max_size=12))
client_ids = st.text(st.characters(codec="utf-8"), max_size=24).filter(lambda s: not s.startswith("bystander"))
packet_ids = st.integers(0, 65535)

valid_packets = st.one_of(
    st.builds(P.connect, client_ids, keepalive=st.integers(0, 65535), clean=st.booleans(),
              username=st.none() | st.text(max_size=8), password=st.none() | st.binary(max_size=8),
              will=st.none() | st.tuples(topics, st.binary(max_size=16), st.integers(0, 3), st.booleans()),
              protocol=st.sampled_from([("MQTT", 4), ("MQIsdp", 3), ("MQTT", 5), ("MQTT", 3), ("MQTX", 4)])),
    st.builds(P.publish, topics, st.binary(max_size=64), qos=st.integers(0, 3), retain=st.booleans(),
              packet_id=packet_ids, dup=st.booleans()),
    st.builds(P.subscribe, st.lists(st.tuples(topics, st.integers(0, 3)), max_size=3), packet_ids),
    st.builds(P.unsubscribe, st.lists(topics, max_size=3), packet_ids),
    st.builds(P.ack, st.integers(4, 7), packet_ids),
    st.sampled_from([P.PINGREQ, P.DISCONNECT]),
)

BOGUS_LENGTHS = [b"\xff\xff\xff\xff\x7f", b"\xff\xff\xff\x7f", b"\x80\x80\x80\x80", b"\x00", b"\x7f", b"\xff\x7f"]


def header_length(data: bytes) -> int:
    """Bytes taken by the fixed header (type byte + remaining length) of a packet we built."""
    i = 1
    while i < len(data) and data[i] & 0x80:
        i += 1
    return i + 1


@st.composite
def mutated(draw, packet=valid_packets):
    data = bytearray(draw(packet))
    how = draw(st.sampled_from(["keep", "flip", "truncate", "length", "flags", "insert", "garbage"]))
    if how == "flip":
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    elif how == "truncate":
        data = data[:draw(st.integers(0, len(data) - 1))]
    elif how == "length":
        data = data[:1] + draw(st.sampled_from(BOGUS_LENGTHS) | st.builds(P.varint, st.integers(0, 268_435_455))) \
            + data[header_length(data):]
    elif how == "flags":
        data[0] = (data[0] & 0xF0) | draw(st.integers(0, 15))
    elif how == "insert":
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=8))
    elif how == "garbage":
        data = bytearray(draw(st.binary(min_size=1, max_size=64)))
    return bytes(data)


@st.composite
def sessions(draw):
    """What one misbehaving client sends: often a valid CONNECT first, so the mutations
    reach the packet handlers behind the handshake, then 1-4 (mostly broken) packets."""
    head = P.connect(f"fz-{draw(st.integers(0, 10**6))}") if draw(st.booleans()) else b""
    return head + b"".join(draw(st.lists(mutated(), min_size=1, max_size=4)))


# -- tests ----------------------------------------------------------------------------------

@fuzz_settings(150)
@given(stream=sessions())
def test_broker_survives_mutated_packets(target, stream):
    broker, bystanders = target
    send_and_hang_up(broker.port, stream)
    assert_healthy(broker, bystanders)


@fuzz_settings(40)
@given(chunks=st.lists(st.binary(min_size=1, max_size=256), min_size=1, max_size=5))
def test_broker_survives_random_bytes_after_connect(target, chunks):
    broker, bystanders = target
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sock:
        sock.sendall(P.connect("fz-random"))
        assert sock.recv(4) == b"\x20\x02\x00\x00"
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (ConnectionResetError, BrokenPipeError):
            pass
    assert_healthy(broker, bystanders)


CONNECT = P.connect("fz-malformed")
MALFORMED = {
    "first packet is not CONNECT": P.publish("a", b"x"),
    "second CONNECT": CONNECT + CONNECT,
    "protocol name MQTX": P.connect("fz", protocol=("MQTX", 4)),
    "CONNECT reserved flag bit 0 set": P.packet(0x10, P.string("MQTT") + b"\x04\x03\x00\x3c" + P.string("fz")),
    "remaining length of 5 bytes": CONNECT + b"\x30\xff\xff\xff\xff\x7f",
    "PUBLISH with QoS 3": CONNECT + b"\x36" + P.publish("a", b"x", qos=1)[1:],
    "PUBLISH to a wildcard topic": CONNECT + P.publish("a/#", b"x"),
    "PUBLISH topic with NUL": CONNECT + P.publish("a\x00b", b"x"),
    "PUBLISH topic not UTF-8": CONNECT + P.packet(0x30, P.string(b"\xff\xfe") + b"x"),
    "SUBSCRIBE with reserved flags 0000": CONNECT + b"\x80" + P.subscribe([("a", 0)])[1:],
    "SUBSCRIBE without a filter": CONNECT + P.packet(0x82, b"\x00\x01"),
    "SUBSCRIBE asking QoS 3": CONNECT + P.subscribe([("a", 3)]),
    "UNSUBSCRIBE with reserved flags 0000": CONNECT + b"\xa0" + P.unsubscribe(["a"])[1:],
    "PUBREL with flags 0000": CONNECT + b"\x60\x02\x00\x01",
    "packet type 0": CONNECT + b"\x00\x00",
    "packet type 15": CONNECT + b"\xf0\x00",
    "PINGREQ with a body": CONNECT + b"\xc0\x01\x00",
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_packet_gets_disconnected(target, data):
    """MQTT 3.1.1 says the server closes the network connection on a malformed packet;
    it must do so without a FIN from the client, and everyone else carries on."""
    broker, bystanders = target
    received = answer_until_closed(broker.port, data)
    # At most a CONNACK (a refusal, or the accept of the valid CONNECT before the bad packet).
    assert received in (b"", b"\x20\x02\x00\x00", b"\x20\x02\x00\x01"), received
    assert_healthy(broker, bystanders)


def test_packets_before_a_malformed_one_are_processed(target):
    """A valid PUBLISH that shares a TCP segment with a malformed packet behind it is
    still delivered: only the connection ends, nothing sent before the error is lost."""
    broker, bystanders = target
    data = P.connect("fz-batch") + P.publish("probe/bystander", b"before-bad", qos=0) + b"\x36\x00"
    assert answer_until_closed(broker.port, data) == b"\x20\x02\x00\x00", "the CONNACK of the valid CONNECT"
    with bystanders.cond:
        assert bystanders.cond.wait_for(lambda: b"before-bad" in bystanders.received, 5), \
            "the valid PUBLISH before the malformed packet was dropped"
    assert_healthy(broker, bystanders)


@fuzz_settings(60)
@given(payloads=st.lists(st.binary(max_size=300), min_size=1, max_size=12),
       qos=st.integers(0, 2), cuts=st.lists(st.integers(1, 400), max_size=30), data=st.data())
def test_stream_split_anywhere_arrives_whole_and_in_order(target, payloads, qos, cuts, data):
    """The same valid stream, cut into pieces at arbitrary byte offsets (each piece its own
    send), is delivered exactly as if it had arrived in one piece."""
    broker, bystanders = target
    topic = f"frag/{data.draw(st.integers(0, 10**9))}"
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as sub, \
            socket.create_connection(("127.0.0.1", broker.port), timeout=5) as pub:
        sub.sendall(P.connect(topic.replace("/", "-") + "-sub") + P.subscribe([(topic, 2)]))
        assert P.read_packet(sub)[0] == 0x20 and P.read_packet(sub)[0] == 0x90
        pub.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        stream = P.connect(topic.replace("/", "-") + "-pub") + b"".join(
            P.publish(topic, payload, qos=qos, packet_id=i + 1) for i, payload in enumerate(payloads))
        offsets = sorted({c for c in cuts if c < len(stream)})
        for start, end in zip([0] + offsets, offsets + [len(stream)]):
            pub.sendall(stream[start:end])
        assert P.read_packet(pub) == (0x20, b"\x00\x00")
        if qos:  # finish the publisher's flows: a broker may forward QoS 2 only on PUBREL
            expected = 0x40 if qos == 1 else 0x50
            for i in range(len(payloads)):
                assert P.read_packet(pub) == (expected, (i + 1).to_bytes(2, "big"))
                if qos == 2:
                    pub.sendall(P.ack(6, i + 1))
        got = [P.receive_publish(sub)[1] for _ in payloads]
        assert got == payloads
    assert_healthy(broker, bystanders)
