"""MQTT 3.1.1 / 3.1 control packets as plain objects.

The decoder produces these; the encoder turns their fields back into bytes.
Every class carries its packet type as ``type`` so a receiver can dispatch on
an int instead of ``isinstance`` chains.
"""

from dataclasses import dataclass, field

CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
PUBREC = 5
PUBREL = 6
PUBCOMP = 7
SUBSCRIBE = 8
SUBACK = 9
UNSUBSCRIBE = 10
UNSUBACK = 11
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

NAMES = {
    CONNECT: "CONNECT", CONNACK: "CONNACK", PUBLISH: "PUBLISH", PUBACK: "PUBACK",
    PUBREC: "PUBREC", PUBREL: "PUBREL", PUBCOMP: "PUBCOMP", SUBSCRIBE: "SUBSCRIBE",
    SUBACK: "SUBACK", UNSUBSCRIBE: "UNSUBSCRIBE", UNSUBACK: "UNSUBACK",
    PINGREQ: "PINGREQ", PINGRESP: "PINGRESP", DISCONNECT: "DISCONNECT",
}

# (protocol name, protocol level) pairs this codec speaks.
MQTT_311 = ("MQTT", 4)
MQTT_31 = ("MQIsdp", 3)

# CONNACK return codes.
ACCEPTED = 0
REFUSED_PROTOCOL_VERSION = 1
REFUSED_IDENTIFIER = 2
REFUSED_SERVER_UNAVAILABLE = 3
REFUSED_BAD_CREDENTIALS = 4
REFUSED_NOT_AUTHORIZED = 5

SUBACK_FAILURE = 0x80


class ProtocolError(Exception):
    """The peer broke the protocol; the message names what was wrong."""


@dataclass(slots=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclass(slots=True)
class Connect:
    type = CONNECT
    protocol_name: str = "MQTT"
    protocol_level: int = 4
    clean_session: bool = True
    keepalive: int = 0
    client_id: str = ""
    will: Will | None = None
    username: str | None = None
    password: bytes | None = None

    @property
    def supported(self) -> bool:
        return (self.protocol_name, self.protocol_level) in (MQTT_311, MQTT_31)


@dataclass(slots=True)
class Connack:
    type = CONNACK
    session_present: bool = False
    return_code: int = ACCEPTED


@dataclass(slots=True)
class Publish:
    """``payload`` is bytes, or a read-only memoryview of the received data from 1 MiB on
    (the decoder does not copy large payloads)."""

    type = PUBLISH
    topic: str
    payload: bytes = b""
    qos: int = 0
    retain: bool = False
    dup: bool = False
    packet_id: int = 0


@dataclass(slots=True)
class Ack:
    """PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a type and a packet id."""

    type: int
    packet_id: int


@dataclass(slots=True)
class Subscribe:
    type = SUBSCRIBE
    packet_id: int
    topics: list[tuple[str, int]] = field(default_factory=list)


@dataclass(slots=True)
class Suback:
    type = SUBACK
    packet_id: int
    return_codes: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Unsubscribe:
    type = UNSUBSCRIBE
    packet_id: int
    filters: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Bare:
    """PINGREQ, PINGRESP and DISCONNECT: a fixed header and nothing else."""

    type: int
