"""Bytes in, packets out: a stream decoder with no I/O.

``Decoder.feed(data)`` takes whatever arrived on the wire (partial packets,
many packets at once) and returns the complete packets in order. Anything the
protocol forbids raises ``ProtocolError`` with the cause; the caller closes
that one connection.
"""

from . import topics
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


def _string(body: bytes, pos: int, what: str) -> tuple[str, int]:
    raw, pos = _binary(body, pos, what)
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ProtocolError(f"invalid UTF-8 in {what}") from None
    if "\0" in text:
        raise ProtocolError(f"NUL character in {what}")
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
    arrives, before it is buffered.
    """

    __slots__ = ("_pending", "_accepts", "_max_payload", "_max_remaining")

    def __init__(self, server: bool = True, max_payload: int = 0, max_packet: int = 0):
        self._pending = b""
        self._accepts = FROM_CLIENT if server else FROM_SERVER
        self._max_payload = max_payload
        # Header, topic (up to 65535 bytes + 2) and packet id come on top of the payload.
        self._max_remaining = min(MAX_REMAINING, max_payload + 65541) if max_payload else MAX_REMAINING
        if max_packet:  # mosquitto's max_packet_size, counted as mosquitto 2.0.11 does: remaining length + 1
            self._max_remaining = min(self._max_remaining, max_packet - 1)

    def feed(self, data: bytes) -> list:
        """The complete packets in ``data`` (and what was left over before it).

        On a protocol violation the ``ProtocolError`` carries the packets that
        preceded it in ``.packets``.
        """
        buf = self._pending + data if self._pending else data
        size = len(buf)
        pos = 0
        packets = []
        append = packets.append
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
                        error = ProtocolError("remaining length longer than 4 bytes")
                        error.packets = packets
                        raise error
                if index >= size:
                    break
            start = index + 1
            end = start + length
            if length > self._max_remaining:
                error = ProtocolError(f"packet of {length} bytes exceeds the size limit")
                error.packets = packets
                raise error
            if end > size:
                break
            try:
                append(self._packet(buf[pos], buf[start:end]))
            except ProtocolError as exc:
                exc.packets = packets  # the good packets before the bad one still count
                raise
            pos = end
        self._pending = buf[pos:] if pos < size else b""
        return packets

    def _packet(self, first: int, body: bytes):
        kind = first >> 4
        if kind == PUBLISH:
            return self._publish(first, body)
        if kind not in self._accepts:
            if kind in NAMES:
                raise ProtocolError(f"unexpected {NAMES[kind]} packet")
            raise ProtocolError(f"reserved packet type {kind}")
        flags = first & 15
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
        if kind == CONNECT:
            return self._connect(body)
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

    def _publish(self, first: int, body: bytes) -> Publish:
        qos = (first >> 1) & 3
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3")
        dup = bool(first & 8)
        if dup and not qos:
            raise ProtocolError("PUBLISH with DUP set on QoS 0")
        if len(body) < 2:
            raise ProtocolError("PUBLISH too short for a topic")
        end = 2 + (body[0] << 8 | body[1])
        if end > len(body):
            raise ProtocolError("PUBLISH topic runs past the end of the packet")
        try:
            topic = body[2:end].decode()
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in PUBLISH topic") from None
        if not topic or "+" in topic or "#" in topic or "\0" in topic:  # name_error, inline: once per message
            raise ProtocolError(f"invalid PUBLISH topic: {topics.name_error(topic)}")
        packet_id = 0
        if qos:
            packet_id = _packet_id(body, end, "PUBLISH")
            end += 2
        payload = body[end:]
        if self._max_payload and len(payload) > self._max_payload:
            raise ProtocolError(f"PUBLISH payload of {len(payload)} bytes exceeds the limit of {self._max_payload}")
        return Publish(topic, payload, qos, bool(first & 1), dup, packet_id)

    def _connect(self, body: bytes) -> Connect:
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
        if flags & 1:
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
            topic, pos = _string(body, pos, "will topic")
            problem = topics.name_error(topic)
            if problem:
                raise ProtocolError(f"invalid will topic: {problem}")
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
            topic_filter, pos = _string(body, pos, "topic filter")
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
            topic_filter, pos = _string(body, pos, "topic filter")
            packet.filters.append(topic_filter)
        if not packet.filters:
            raise ProtocolError("UNSUBSCRIBE without topic filters")
        return packet
