# MQTT 3.1.1 packets without sockets: encoders write into a caller's buffer,
# Reader splits a byte stream into packets inside one preallocated buffer.
from micropython import const

# Packet types (first byte, flags included where fixed). Underscored const()
# names are folded in at compile time and cost no RAM; lux.mqtt keeps its own.
_CONNECT = const(0x10)
_PUBLISH = const(0x30)
_SUBSCRIBE = const(0x82)


class ProtocolError(Exception):
    pass


def put_len(buf, i, n):
    # Remaining length: 7 bits per byte, high bit = more bytes follow.
    while True:
        b = n & 0x7F
        n >>= 7
        buf[i] = b | 0x80 if n else b
        i += 1
        if not n:
            return i


def put_u16(buf, i, v):
    buf[i] = v >> 8
    buf[i + 1] = v & 0xFF
    return i + 2


def put_str(buf, i, s):
    i = put_u16(buf, i, len(s))
    buf[i:i + len(s)] = s
    return i + len(s)


def connect(buf, client_id, user, password, keepalive, clean, will):
    """_CONNECT into buf; returns its length. Strings are bytes; will is None or
    (topic, message, retain, qos): one argument, as each name costs the heap a qstr."""
    rem = 10 + 2 + len(client_id)
    flags = 0x02 if clean else 0
    if will:
        rem += 4 + len(will[0]) + len(will[1])
        flags |= 0x04 | will[3] << 3 | (0x20 if will[2] else 0)
    if user:
        rem += 2 + len(user)
        flags |= 0x80
        if password:
            rem += 2 + len(password)
            flags |= 0x40
    buf[0] = _CONNECT
    i = put_len(buf, 1, rem)
    i = put_str(buf, i, b"MQTT")
    buf[i] = 4  # protocol level 3.1.1
    buf[i + 1] = flags
    i = put_u16(buf, i + 2, keepalive)
    i = put_str(buf, i, client_id)
    if will:
        i = put_str(buf, i, will[0])
        i = put_str(buf, i, will[1])
    if user:
        i = put_str(buf, i, user)
        if password:
            i = put_str(buf, i, password)
    return i


def publish_head(buf, topic, size, qos, retain, dup, pid):
    """Fixed and variable header of a _PUBLISH; the payload follows it on the wire."""
    rem = 2 + len(topic) + (2 if qos else 0) + size
    buf[0] = _PUBLISH | (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    i = put_len(buf, 1, rem)
    i = put_str(buf, i, topic)
    if qos:
        i = put_u16(buf, i, pid)
    return i


def subscribe(buf, pid, topic, qos):
    buf[0] = _SUBSCRIBE
    i = put_len(buf, 1, 5 + len(topic))
    i = put_u16(buf, i, pid)
    i = put_str(buf, i, topic)
    buf[i] = qos
    return i + 1


def ack(buf, kind, pid):
    """PUBACK, PUBREC, PUBREL or PUBCOMP: kind is the first byte (0x40, 0x50, 0x62, 0x70)."""
    buf[0] = kind
    buf[1] = 2
    return put_u16(buf, 2, pid)


def u16(mv, i):
    return mv[i] << 8 | mv[i + 1]


class Reader:
    """Stream splitter. space() gives the free space to read into, got(n) records it,
    parse(handler) calls handler(first_byte, body, remaining_length) per packet.
    A packet larger than the buffer is handed over with only its head in body
    (len(body) < remaining_length) and the rest is discarded as it arrives, so
    the stream stays in step."""

    def __init__(self, size):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.n = 0
        self.skip = 0

    def reset(self):
        self.n = 0
        self.skip = 0

    def space(self):
        # Usually empty: the whole buffer, without a new memoryview per loop.
        return self.mv[self.n:] if self.n else self.mv

    def got(self, n):
        self.n += n

    def parse(self, handler):
        mv, n, size = self.mv, self.n, len(self.buf)
        i = 0
        while True:
            if self.skip:
                k = min(self.skip, n - i)
                i += k
                self.skip -= k
                if self.skip:
                    break
            if n - i < 2:
                break
            rem = 0
            shift = 0
            j = i + 1
            while True:
                if j >= n:
                    rem = -1
                    break
                b = mv[j]
                rem |= (b & 0x7F) << shift
                j += 1
                if not b & 0x80:
                    break
                shift += 7
                if shift > 21:
                    raise ProtocolError("bad remaining length")
            if rem < 0:
                break
            head = j - i
            end = j + rem
            if end <= n:
                handler(mv[i], mv[j:end], rem)
                i = end
            elif head + rem > size:
                if i or n < size:
                    break  # compact, then fill the whole buffer with the head
                handler(mv[0], mv[j:n], rem)
                self.skip = end - n
                i = n
            else:
                break
        if i:  # move what is left of the stream to the front
            left = n - i
            if left:
                mv[0:left] = mv[i:n]
            self.n = left
