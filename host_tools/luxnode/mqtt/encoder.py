"""Packets out as bytes: one function per packet, no I/O.

``publish`` takes the topic already encoded so a broker that fans one message
out to many subscribers encodes the topic once.
"""

from .packets import (
    CONNACK, CONNECT, PINGREQ, PINGRESP, DISCONNECT, PUBACK, PUBCOMP, PUBREC, PUBREL, SUBACK,
    SUBSCRIBE, UNSUBACK, UNSUBSCRIBE, Connect,
)


def remaining_length(length: int) -> bytes:
    """The variable-length encoding of a remaining length."""
    if length < 128:
        return _SHORT[length]
    out = bytearray()
    while True:
        byte = length & 127
        length >>= 7
        if length:
            out.append(byte | 128)
        else:
            out.append(byte)
            return bytes(out)


_SHORT = [bytes((n,)) for n in range(128)]


def _string(text: str) -> bytes:
    return _binary(text.encode())


def _binary(raw: bytes) -> bytes:
    return len(raw).to_bytes(2, "big") + raw


def publish(topic: bytes, payload: bytes, qos: int = 0, retain: bool = False,
            dup: bool = False, packet_id: int = 0) -> bytes:
    """A PUBLISH packet; ``topic`` is the UTF-8 encoded topic name."""
    return publish_header(topic, len(payload), qos, retain, dup, packet_id) + payload


def publish_header(topic: bytes, payload_size: int, qos: int = 0, retain: bool = False,
                   dup: bool = False, packet_id: int = 0) -> bytes:
    """A PUBLISH packet up to its payload (a large payload is written after it as it is)."""
    first = 0x30 | (qos << 1) | retain | (8 if dup else 0)
    if qos:
        return b"".join((bytes((first,)), remaining_length(4 + len(topic) + payload_size),
                         len(topic).to_bytes(2, "big"), topic, packet_id.to_bytes(2, "big")))
    return b"".join((bytes((first,)), remaining_length(2 + len(topic) + payload_size),
                     len(topic).to_bytes(2, "big"), topic))


def ack(kind: int, packet_id: int) -> bytes:
    """PUBACK, PUBREC, PUBREL (flags 0b0010), PUBCOMP or UNSUBACK."""
    return bytes((kind << 4 | (2 if kind == PUBREL else 0), 2, packet_id >> 8, packet_id & 255))


def puback(packet_id: int) -> bytes:
    return ack(PUBACK, packet_id)


def pubrec(packet_id: int) -> bytes:
    return ack(PUBREC, packet_id)


def pubrel(packet_id: int) -> bytes:
    return ack(PUBREL, packet_id)


def pubcomp(packet_id: int) -> bytes:
    return ack(PUBCOMP, packet_id)


def unsuback(packet_id: int) -> bytes:
    return ack(UNSUBACK, packet_id)


def connack(session_present: bool, return_code: int) -> bytes:
    return bytes((CONNACK << 4, 2, 1 if session_present else 0, return_code))


def suback(packet_id: int, return_codes: list[int]) -> bytes:
    body = packet_id.to_bytes(2, "big") + bytes(return_codes)
    return bytes((SUBACK << 4,)) + remaining_length(len(body)) + body


PINGREQ_BYTES = bytes((PINGREQ << 4, 0))
PINGRESP_BYTES = bytes((PINGRESP << 4, 0))
DISCONNECT_BYTES = bytes((DISCONNECT << 4, 0))


def connect(packet: Connect) -> bytes:
    """A CONNECT packet from its fields (clients and tests)."""
    flags = 2 if packet.clean_session else 0
    payload = [_string(packet.client_id)]
    if packet.will is not None:
        flags |= 4 | packet.will.qos << 3 | (32 if packet.will.retain else 0)
        payload += [_string(packet.will.topic), _binary(packet.will.payload)]
    if packet.username is not None:
        flags |= 128
        payload.append(_string(packet.username))
    if packet.password is not None:
        flags |= 64
        payload.append(_binary(packet.password))
    body = (_string(packet.protocol_name) + bytes((packet.protocol_level, flags))
            + packet.keepalive.to_bytes(2, "big") + b"".join(payload))
    return bytes((CONNECT << 4,)) + remaining_length(len(body)) + body


def subscribe(packet_id: int, topics: list[tuple[str, int]]) -> bytes:
    body = packet_id.to_bytes(2, "big") + b"".join(_string(f) + bytes((q,)) for f, q in topics)
    return bytes((SUBSCRIBE << 4 | 2,)) + remaining_length(len(body)) + body


def unsubscribe(packet_id: int, filters: list[str]) -> bytes:
    body = packet_id.to_bytes(2, "big") + b"".join(_string(f) for f in filters)
    return bytes((UNSUBSCRIBE << 4 | 2,)) + remaining_length(len(body)) + body
