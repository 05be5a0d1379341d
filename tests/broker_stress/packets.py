"""MQTT 3.1.1 packets encoded by hand, independent of the broker's own codec, so the tests
can build valid packets and then break them on purpose."""

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


def _exact(sock, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data
