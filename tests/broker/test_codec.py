"""The sans-IO MQTT codec, driven by bytes."""

import pytest
from hypothesis import given, settings, strategies as st

from luxnode.mqtt import Decoder, ProtocolError, encoder, packets, topics
from luxnode.mqtt.packets import Connect, Will

# CONNECT from paho (MQTT 3.1.1, clean session, keepalive 60, client id "c1").
CONNECT_311 = bytes.fromhex("100e00044d5154540402003c000263 31".replace(" ", ""))


def decode(data: bytes, server: bool = True, **kw):
    return Decoder(server=server, **kw).feed(data)


def test_connect_311_fields():
    (packet,) = decode(CONNECT_311)
    assert packet.type == packets.CONNECT
    assert (packet.protocol_name, packet.protocol_level) == ("MQTT", 4)
    assert packet.clean_session and packet.keepalive == 60 and packet.client_id == "c1"
    assert packet.will is None and packet.username is None and packet.password is None


def test_connect_round_trip_with_will_and_credentials():
    sent = Connect("MQIsdp", 3, False, 30, "node-1", Will("a/status", b"offline", 1, True), "u", b"p\x00w")
    (packet,) = decode(encoder.connect(sent))
    assert packet == sent and packet.supported


def test_unknown_protocol_level_is_returned_for_connack_1():
    (packet,) = decode(encoder.connect(Connect("MQTT", 5, True, 0, "x")))
    assert not packet.supported


def test_remaining_length_over_4_bytes():
    with pytest.raises(ProtocolError, match="remaining length longer than 4 bytes"):
        decode(bytes.fromhex("10ffffffff01"))


def test_reserved_flags_on_subscribe():
    good = encoder.subscribe(1, [("a/#", 1)])
    assert decode(good)[0].topics == [("a/#", 1)]
    with pytest.raises(ProtocolError, match="reserved flags 0x0 set on SUBSCRIBE"):
        decode(bytes((0x80,)) + good[1:])


def test_reserved_connect_flag_and_will_rules():
    raw = bytearray(CONNECT_311)
    raw[9] |= 1
    with pytest.raises(ProtocolError, match="reserved CONNECT flag"):
        decode(bytes(raw))
    raw = bytearray(CONNECT_311)
    raw[9] |= 0x08  # will QoS 1 without the will flag
    with pytest.raises(ProtocolError, match="without the will flag"):
        decode(bytes(raw))


def test_invalid_utf8_and_nul_in_topic():
    bad = b"\x30\x05\x00\x02\xc3\x28x"
    with pytest.raises(ProtocolError, match="invalid UTF-8 in PUBLISH topic"):
        decode(bad)
    with pytest.raises(ProtocolError, match="invalid UTF-8 in topic filter"):
        decode(b"\x82\x06\x00\x01\x00\x01\xff\x00")
    with pytest.raises(ProtocolError, match="invalid PUBLISH topic"):
        decode(encoder.publish(b"a/+", b"x"))
    with pytest.raises(ProtocolError, match="NUL character in client id"):
        decode(encoder.connect(Connect(client_id="a\0b")))


def test_publish_qos_and_dup_rules():
    (p,) = decode(encoder.publish(b"t", b"hi", qos=2, retain=True, dup=True, packet_id=7))
    assert (p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id) == ("t", b"hi", 2, True, True, 7)
    with pytest.raises(ProtocolError, match="QoS 3"):
        decode(b"\x36\x03\x00\x01t")
    with pytest.raises(ProtocolError, match="DUP set on QoS 0"):
        decode(b"\x38\x03\x00\x01t")
    with pytest.raises(ProtocolError, match="packet id 0"):
        decode(encoder.publish(b"t", b"", qos=1, packet_id=0))


def test_oversize_payload_refused_at_the_header():
    decoder = Decoder(max_payload=10)
    assert decoder.feed(encoder.publish(b"t", b"x" * 10))[0].payload == b"x" * 10
    with pytest.raises(ProtocolError, match="exceeds the limit of 10"):
        decoder.feed(encoder.publish(b"t", b"x" * 11))
    # A header announcing a huge packet is refused before its body arrives.
    with pytest.raises(ProtocolError, match="exceeds the size limit"):
        Decoder(max_payload=10).feed(b"\x30\xff\xff\x7f")


def test_stream_split_at_every_byte():
    stream = (encoder.connect(Connect(client_id="abc")) + encoder.publish(b"a/b", b"x" * 300, 1, packet_id=9)
              + encoder.subscribe(2, [("a/+", 2), ("$SYS/#", 0)]) + encoder.PINGREQ_BYTES
              + encoder.pubrel(9) + encoder.unsubscribe(3, ["a/+"]) + encoder.DISCONNECT_BYTES)
    whole = decode(stream)
    decoder = Decoder()
    pieces = []
    for i in range(len(stream)):
        pieces += decoder.feed(stream[i:i + 1])
    assert pieces == whole
    assert [p.type for p in whole] == [packets.CONNECT, packets.PUBLISH, packets.SUBSCRIBE,
                                      packets.PINGREQ, packets.PUBREL, packets.UNSUBSCRIBE,
                                      packets.DISCONNECT]


def test_server_refuses_client_only_packets_and_reserved_types():
    with pytest.raises(ProtocolError, match="unexpected CONNACK"):
        decode(encoder.connack(False, 0))
    with pytest.raises(ProtocolError, match="reserved packet type 15"):
        decode(b"\xf0\x00")
    (connack,) = decode(encoder.connack(True, 5), server=False)
    assert connack.session_present and connack.return_code == 5
    (suback,) = decode(encoder.suback(4, [0, 1, 0x80]), server=False)
    assert suback.return_codes == [0, 1, 0x80]


def test_remaining_length_boundaries():
    for n in (0, 127, 128, 16383, 16384, 2097151, 2097152, 268435455):
        encoded = encoder.remaining_length(n)
        assert len(encoded) == (1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4)
    payload = b"p" * 20000
    assert decode(encoder.publish(b"t", payload))[0].payload == payload


def test_subscribe_qos_byte_and_empty():
    with pytest.raises(ProtocolError, match="requested QoS byte 0x3"):
        decode(b"\x82\x06\x00\x01\x00\x01a\x03")
    with pytest.raises(ProtocolError, match="without topic filters"):
        decode(b"\x82\x02\x00\x01")


@pytest.mark.parametrize("topic_filter, topic, expected", [
    ("a/+/c", "a/b/c", True), ("a/+/c", "a/b/d", False), ("a/#", "a", True),
    ("a/#", "a/b/c", True), ("#", "$SYS/x", False), ("+/x", "$SYS/x", False),
    ("$SYS/#", "$SYS/broker/uptime", True), ("+", "/", False), ("+/+", "/", True),
    ("a/b", "a/b/c", False),
])
def test_topic_matching(topic_filter, topic, expected):
    assert topics.matches(topic_filter, topic) is expected


def test_filter_and_name_validation():
    assert topics.filter_error("a/#") is None and topics.filter_error("+/+/#") is None
    assert "'#' must be" in topics.filter_error("a/#/b")
    assert "'+' must be" in topics.filter_error("a/b+")
    assert topics.filter_error("") == "empty topic filter"
    assert "wildcard" in topics.name_error("a/#")
    assert topics.name_error("a\x1fb") == "control character U+001F in topic name"
    assert topics.filter_error("a/\x85") == "control character U+0085 in topic filter"
    assert topics.name_error("a\ufdd0") == "non-character U+FDD0 in topic name"
    assert topics.name_error("/".join("a" * 201)) is None          # 200 separators, as mosquitto
    assert "deeper than 201 levels" in topics.filter_error("/".join("a" * 202))


def test_packets_before_a_malformed_one_are_handed_over():
    good = encoder.connect(Connect(client_id="c")) + encoder.publish(b"t", b"before")
    with pytest.raises(ProtocolError) as caught:
        decode(good + b"\x36\x00")
    assert [p.type for p in caught.value.packets] == [packets.CONNECT, packets.PUBLISH]

# Any level mosquitto accepts: no wildcard, separator, surrogate, control character or non-character.
topic_levels = st.text(st.characters(blacklist_characters="+#/", blacklist_categories=("Cs", "Cc")), max_size=8).filter(
    lambda level: not topics.FORBIDDEN_CHARACTER.search(level))
topic_names = st.lists(topic_levels, min_size=1, max_size=4).map("/".join).filter(bool)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(topic_names, st.binary(max_size=300), st.integers(0, 2), st.booleans(),
                          st.integers(1, 65535)), min_size=1, max_size=6),
       st.lists(st.integers(1, 50), max_size=30))
def test_publish_round_trip_under_any_split(messages, cuts):
    stream = b"".join(encoder.publish(t.encode(), p, q, r, False, i if q else 0) for t, p, q, r, i in messages)
    decoder, decoded, pos = Decoder(), [], 0
    for cut in cuts + [len(stream)]:
        decoded += decoder.feed(stream[pos:pos + cut])
        pos += cut
    decoded += decoder.feed(stream[pos:])
    assert [(d.topic, d.payload, d.qos, d.retain, d.packet_id) for d in decoded] == [
        (t, p, q, r, i if q else 0) for t, p, q, r, i in messages]
