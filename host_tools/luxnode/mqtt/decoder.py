"""Bytes in, packets out: a stream decoder with no I/O.

``Decoder.feed(data)`` takes whatever arrived on the wire (partial packets,
many packets at once) and returns the complete packets in order. Anything the
protocol forbids raises ``ProtocolError`` with the cause; the caller closes
that one connection.

Buffering is linear: a packet that arrives in many reads is kept as a list of
chunks and joined once, when its last byte is in. A broker's decoder checks
the fixed header before buffering the body: the first packet must be CONNECT,
and no CONNECT may be longer than the largest valid one (``MAX_CONNECT``), so an
unauthenticated peer announcing a huge CONNECT is refused at once.
"""

from . import topics
from .topics import MAX_SEPARATORS, forbidden_character
from .packets import (
    CONNACK, CONNECT, DISCONNECT, NAMES, PINGREQ, PINGRESP, PUBACK, PUBCOMP, PUBLISH,
    PUBREC, PUBREL, SUBACK, SUBSCRIBE, UNSUBACK, UNSUBSCRIBE,
    Ack, Bare, Connack, Connect, ProtocolError, Publish, Suback, Subscribe, Unsubscribe, Will,
)

# The largest remaining length four bytes can carry.
MAX_REMAINING = 268_435_455

# Packets each side may receive.
FROM_CLIENT = frozenset((CONNECT, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBSCRIBE,
                         UNSUBSCRIBE, PINGREQ, DISCONNECT))
FROM_SERVER = frozenset((CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK,
                         UNSUBACK, PINGRESP))

# Fixed-header flags the protocol requires (PUBLISH carries its own).
REQUIRED_FLAGS = {PUBREL: 2, SUBSCRIBE: 2, UNSUBSCRIBE: 2}

# Topic names a connection published, with their text, so a repeated topic is checked
# once: up to this many bytes of names of at most TOPIC_CACHE_NAME bytes each.
TOPIC_CACHE_BYTES = 8192
TOPIC_CACHE_NAME = 256
_NO_TOPICS: dict[bytes, str] = {}  # never written to

# A payload this large is handed over as a memoryview of the received bytes, not copied.
ZERO_COPY_PAYLOAD = 1 << 20

# The largest valid CONNECT: protocol name "MQIsdp" (8), level, flags, keepalive (4),
# then client id, will topic, will message, username and password, each at most
# 2 + 65535 bytes. Anything longer is malformed whatever it holds.
MAX_CONNECT = 12 + 5 * (2 + 65535)


def _string(body: bytes, pos: int, what: str, check=None, invalid: str = "") -> tuple[str, int]:
    """The UTF-8 string at ``pos`` and the position after it, checked by ``check(text, raw)``
    (default: the characters mosquitto refuses); a problem is raised after ``invalid``."""
    raw, pos = _binary(body, pos, what)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ProtocolError(f"invalid UTF-8 in {what}") from None
    problem = check(text, raw) if check is not None else topics.text_error(text, what, raw)
    if problem:
        raise ProtocolError(invalid + problem)
    return text, pos


def _binary(body: bytes, pos: int, what: str) -> tuple[bytes, int]:
    if pos + 2 > len(body):
        raise ProtocolError(f"packet ends before the length of {what}")
    end = pos + 2 + (body[pos] << 8 | body[pos + 1])
    if end > len(body):
        raise ProtocolError(f"{what} runs past the end of the packet")
    return body[pos + 2:end], end


def _packet_id(body: bytes, pos: int, kind: str) -> int:
    if pos + 2 > len(body):
        raise ProtocolError(f"{kind} too short for a packet id")
    packet_id = body[pos] << 8 | body[pos + 1]
    if packet_id == 0:
        raise ProtocolError(f"{kind} with packet id 0")
    return packet_id


class Decoder:
    """Incremental decoder for one connection.

    ``server=True`` decodes what a broker receives (CONNECT, SUBSCRIBE, ...),
    ``server=False`` what a client receives. ``max_payload`` (0 = no limit)
    bounds PUBLISH payloads; a larger one is refused as soon as its header
    arrives, before it is buffered. ``expect_connect`` (a broker's connection)
    refuses a first packet that is not CONNECT, or longer than ``MAX_CONNECT``,
    on its fixed header.
    """

    __slots__ = ("_chunks", "_buffered", "_needed", "_accepts", "_max_payload", "_max_remaining",
                 "_awaiting_connect", "_topics", "_topics_bytes")

    def __init__(self, server: bool = True, max_payload: int = 0, max_packet: int = 0,
                 expect_connect: bool = False):
        # Bytes of an incomplete packet, joined once ``_needed`` of them are in.
        # Both start as shared empty objects, so an idle connection costs nothing for them.
        self._chunks: list[bytes] | tuple = ()
        self._buffered = 0
        self._needed = 0
        self._accepts = FROM_CLIENT if server else FROM_SERVER
        self._max_payload = max_payload
        # Header, topic (up to 65535 bytes + 2) and packet id come on top of the payload.
        self._max_remaining = min(MAX_REMAINING, max_payload + 65541) if max_payload else MAX_REMAINING
        if max_packet:  # mosquitto's max_packet_size, counted as mosquitto 2.0.11 does: remaining length + 1
            self._max_remaining = min(self._max_remaining, max_packet - 1)
        self._awaiting_connect = expect_connect
        self._topics: dict[bytes, str] = _NO_TOPICS
        self._topics_bytes = 0

    def feed(self, data: bytes) -> list:
        """The complete packets in ``data`` (and what was left over before it).

        On a protocol violation the ``ProtocolError`` carries the packets that
        preceded it in ``.packets``.
        """
        chunks = self._chunks
        if chunks:
            chunks.append(data)
            self._buffered += len(data)
            if self._buffered < self._needed:
                return []
            buf = b"".join(chunks)
            self._chunks = ()
        else:
            buf = data
        size = len(buf)
        pos = 0
        needed = 0
        packets = []
        append = packets.append
        try:
            while size - pos >= 2:
                # Remaining length: 1..4 bytes, 7 bits each, least significant first.
                index = pos + 1
                byte = buf[index]
                length = byte & 127
                if byte & 128:
                    shift = 7
                    while True:
                        index += 1
                        if index >= size:
                            break
                        byte = buf[index]
                        length |= (byte & 127) << shift
                        if not byte & 128:
                            break
                        shift += 7
                        if shift > 21:
                            raise ProtocolError("remaining length longer than 4 bytes")
                    if index >= size:
                        break
                start = index + 1
                end = start + length
                if length > self._max_remaining:
                    raise ProtocolError(f"packet of {length} bytes exceeds the size limit")
                if self._awaiting_connect:
                    self._check_first(buf[pos], length)
                if end > size:
                    needed = end - pos
                    break
                if buf[pos] >> 4 == PUBLISH:
                    append(self._publish(buf[pos], buf, start, end))
                else:
                    append(self._packet(buf[pos], buf[start:end]))
                pos = end
        except ProtocolError as exc:
            exc.packets = packets  # the good packets before the bad one still count
            raise
        if pos < size:
            rest = buf[pos:] if pos else buf
            self._chunks = [rest]
            self._buffered = len(rest)
            self._needed = needed
        return packets

    def _check_first(self, first: int, length: int) -> None:
        """A server's first packet, from its fixed header alone (before its body is buffered)."""
        kind = first >> 4
        if kind != CONNECT:
            raise ProtocolError(f"{NAMES.get(kind, f'reserved packet type {kind}')} before CONNECT")
        if length > MAX_CONNECT:
            raise ProtocolError(f"CONNECT of {length} bytes, longer than any valid CONNECT ({MAX_CONNECT})")
        self._awaiting_connect = False

    def _packet(self, first: int, body: bytes):
        kind = first >> 4
        if kind not in self._accepts:
            if kind in NAMES:
                raise ProtocolError(f"unexpected {NAMES[kind]} packet")
            raise ProtocolError(f"reserved packet type {kind}")
        flags = first & 15
        if kind == CONNECT:
            return self._connect(body, flags)
        if flags != REQUIRED_FLAGS.get(kind, 0):
            raise ProtocolError(f"reserved flags {flags:#x} set on {NAMES[kind]}")
        if kind in (PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK):
            if len(body) != 2:
                raise ProtocolError(f"{NAMES[kind]} of {len(body)} bytes, expected 2")
            return Ack(kind, _packet_id(body, 0, NAMES[kind]))
        if kind in (PINGREQ, PINGRESP, DISCONNECT):
            if body:
                raise ProtocolError(f"{NAMES[kind]} with a {len(body)}-byte body")
            return Bare(kind)
        if kind == SUBSCRIBE:
            return self._subscribe(body)
        if kind == UNSUBSCRIBE:
            return self._unsubscribe(body)
        if kind == CONNACK:
            if len(body) != 2 or body[0] & 0xFE:
                raise ProtocolError("malformed CONNACK")
            return Connack(bool(body[0]), body[1])
        # SUBACK
        packet_id = _packet_id(body, 0, "SUBACK")
        return Suback(packet_id, list(body[2:]))

    def _publish(self, first: int, buf: bytes, start: int, end: int) -> Publish:
        """PUBLISH read in place from ``buf[start:end]``: the payload is copied at most once."""
        qos = (first >> 1) & 3
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3")
        dup = bool(first & 8)
        if dup and not qos:
            raise ProtocolError("PUBLISH with DUP set on QoS 0")
        if end - start < 2:
            raise ProtocolError("PUBLISH too short for a topic")
        topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
        if topic_end > end:
            raise ProtocolError("PUBLISH topic runs past the end of the packet")
        raw = buf[start + 2:topic_end]
        topic = self._topics.get(raw)
        if topic is None:
            topic = self._topic(raw)
        packet_id = 0
        if qos:
            if topic_end + 2 > end:
                raise ProtocolError("PUBLISH too short for a packet id")
            packet_id = buf[topic_end] << 8 | buf[topic_end + 1]
            if packet_id == 0:
                raise ProtocolError("PUBLISH with packet id 0")
            topic_end += 2
        if self._max_payload and end - topic_end > self._max_payload:
            raise ProtocolError(f"PUBLISH payload of {end - topic_end} bytes exceeds the limit of {self._max_payload}")
        if end - topic_end >= ZERO_COPY_PAYLOAD:
            payload = memoryview(buf)[topic_end:end]
        else:
            payload = buf[topic_end:end]
        return Publish(topic, payload, qos, bool(first & 1), dup, packet_id)

    def _topic(self, raw: bytes) -> str:
        """A PUBLISH topic name seen for the first time on this connection, checked."""
        try:
            topic = raw.decode()
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in PUBLISH topic") from None
        if (not topic or "+" in topic or "#" in topic or forbidden_character(topic, raw) is not None
                or topic.count("/") > MAX_SEPARATORS):
            raise ProtocolError(f"invalid PUBLISH topic: {topics.name_error(topic)}")
        if len(raw) <= TOPIC_CACHE_NAME:
            if self._topics is _NO_TOPICS or self._topics_bytes + len(raw) > TOPIC_CACHE_BYTES:
                self._topics = {}
                self._topics_bytes = 0
            self._topics[raw] = topic
            self._topics_bytes += len(raw)
        return topic

    def _connect(self, body: bytes, header_flags: int) -> Connect:
        name, pos = _string(body, 0, "protocol name")
        if name not in ("MQTT", "MQIsdp"):
            raise ProtocolError(f"unknown protocol name {name!r}")
        if pos + 4 > len(body):
            raise ProtocolError("CONNECT too short for its variable header")
        level = body[pos]
        packet = Connect(protocol_name=name, protocol_level=level)
        if not packet.supported:
            return packet  # the broker answers CONNACK 1 without reading further
        flags = body[pos + 1]
        packet.keepalive = body[pos + 2] << 8 | body[pos + 3]
        pos += 4
        # mosquitto 2.0.11 tolerates both reserved bits from MQTT 3.1 clients, which
        # predate the rule (MQTT-2.2.2-2, MQTT-3.1.2-3 are 3.1.1's).
        if level == 4 and header_flags:
            raise ProtocolError(f"reserved flags {header_flags:#x} set on CONNECT")
        if level == 4 and flags & 1:
            raise ProtocolError("reserved CONNECT flag set")
        packet.clean_session = bool(flags & 2)
        will_flag, will_qos, will_retain = flags & 4, (flags >> 3) & 3, bool(flags & 32)
        if will_qos == 3:
            raise ProtocolError("will QoS 3")
        if not will_flag and (will_qos or will_retain):
            raise ProtocolError("will QoS or retain set without the will flag")
        has_user, has_password = flags & 128, flags & 64
        if has_password and not has_user and level == 4:
            raise ProtocolError("password flag set without the username flag")
        packet.client_id, pos = _string(body, pos, "client id")
        if will_flag:
            topic, pos = _string(body, pos, "will topic", topics.name_error, "invalid will topic: ")
            payload, pos = _binary(body, pos, "will message")
            packet.will = Will(topic, payload, will_qos, will_retain)
        if has_user:
            packet.username, pos = _string(body, pos, "username")
        if has_password:
            packet.password, pos = _binary(body, pos, "password")
        if pos != len(body):
            raise ProtocolError(f"{len(body) - pos} unexpected bytes at the end of CONNECT")
        return packet

    def _subscribe(self, body: bytes) -> Subscribe:
        packet = Subscribe(_packet_id(body, 0, "SUBSCRIBE"))
        pos = 2
        while pos < len(body):
            # MQTT-4.7.1-2/3, 4.7.3-1: mosquitto closes on a malformed filter, and so do we.
            topic_filter, pos = _string(body, pos, "topic filter", topics.filter_error,
                                        "SUBSCRIBE with an invalid filter: ")
            if pos >= len(body):
                raise ProtocolError("SUBSCRIBE filter without a requested QoS")
            qos = body[pos]
            if qos > 2:
                raise ProtocolError(f"SUBSCRIBE requested QoS byte {qos:#x}")
            packet.topics.append((topic_filter, qos))
            pos += 1
        if not packet.topics:
            raise ProtocolError("SUBSCRIBE without topic filters")
        return packet

    def _unsubscribe(self, body: bytes) -> Unsubscribe:
        packet = Unsubscribe(_packet_id(body, 0, "UNSUBSCRIBE"))
        pos = 2
        while pos < len(body):
            topic_filter, pos = _string(body, pos, "topic filter", topics.filter_error,
                                        "UNSUBSCRIBE with an invalid filter: ")
            packet.filters.append(topic_filter)
        if not packet.filters:
            raise ProtocolError("UNSUBSCRIBE without topic filters")
        return packet
