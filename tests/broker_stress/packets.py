"""MQTT 3.1.1 packets encoded and read by hand, independent of the broker's own codec, so
the tests can build valid packets, break them on purpose, and check what the broker
sends without trusting the decoder under test."""

import asyncio
import struct


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(value: str | bytes) -> bytes:
    raw = value.encode() if isinstance(value, str) else value
    return struct.pack("!H", len(raw)) + raw


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + varint(len(body)) + body


def connect(client_id: str, keepalive: int = 60, clean: bool = True, username: str | None = None,
            password: bytes | None = None, will: tuple[str, bytes, int, bool] | None = None,
            protocol: tuple[str, int] = ("MQTT", 4)) -> bytes:
    flags = (0x02 if clean else 0) | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    tail = string(client_id)
    if will is not None:
        topic, message, qos, retain = will
        flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
        tail += string(topic) + string(message)
    if username is not None:
        tail += string(username)
    if password is not None:
        tail += string(password)
    name, level = protocol
    return packet(0x10, string(name) + bytes([level, flags]) + struct.pack("!H", keepalive) + tail)


def publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False, packet_id: int = 1,
            dup: bool = False) -> bytes:
    first = 0x30 | (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    return packet(first, string(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload)


def subscribe(filters: list[tuple[str, int]], packet_id: int = 1) -> bytes:
    return packet(0x82, struct.pack("!H", packet_id) + b"".join(string(f) + bytes([q]) for f, q in filters))


def unsubscribe(filters: list[str], packet_id: int = 1) -> bytes:
    return packet(0xA2, struct.pack("!H", packet_id) + b"".join(string(f) for f in filters))


def ack(kind: int, packet_id: int) -> bytes:
    """PUBACK (4), PUBREC (5), PUBREL (6, flags 0b0010), PUBCOMP (7)."""
    return packet(kind << 4 | (0x02 if kind == 6 else 0), struct.pack("!H", packet_id))


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


def read_packet(sock) -> tuple[int, bytes]:
    """One packet from a blocking socket: (first byte, body)."""
    first = _exact(sock, 1)[0]
    length, shift = 0, 0
    while True:
        digit = _exact(sock, 1)[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    return first, _exact(sock, length)


async def read_packet_async(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One packet from an asyncio stream: (first byte, body)."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        digit = (await reader.readexactly(1))[0]
        length |= (digit & 0x7F) << shift
        shift += 7
        if not digit & 0x80:
            break
    return first, await reader.readexactly(length)


def publish_fields(first: int, body: bytes) -> tuple[str, int, bytes]:
    """(topic, packet id or 0, payload) of a received PUBLISH."""
    end = 2 + (body[0] << 8 | body[1])
    topic, packet_id = body[2:end].decode(), 0
    if first & 0x06:
        packet_id, end = body[end] << 8 | body[end + 1], end + 2
    return topic, packet_id, body[end:]


def receive_publish(sock) -> tuple[str, bytes, int]:
    """The next PUBLISH from a blocking socket as (topic, payload, QoS), acknowledged as a
    subscriber does (PUBACK or PUBREC); a PUBREL on the way gets its PUBCOMP."""
    while True:
        first, body = read_packet(sock)
        if first >> 4 == 6:
            sock.sendall(ack(7, body[0] << 8 | body[1]))
            continue
        assert first >> 4 == 3, f"expected PUBLISH, got {first:#x} {body!r}"
        topic, packet_id, payload = publish_fields(first, body)
        qos = (first >> 1) & 3
        if qos:
            sock.sendall(ack(4 if qos == 1 else 5, packet_id))
        return topic, payload, qos


def _exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data
