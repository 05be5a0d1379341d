"""One MQTT 3.1.1 load generator shared by every broker under test.

Raw sockets and pre-encoded packets keep the generator cheap enough that the
broker, not the generator, sets the pace: QoS 0 deliveries have a fixed size, so
the subscriber counts bytes; QoS 1/2 deliveries are parsed and acknowledged, and
every payload carries its sequence number so a lost message is named, not guessed.

The packets are encoded here by hand, on purpose: the yardstick imports nothing from
luxnode (whose codec is under test) nor from tests/ (tests/broker_stress/packets.py is
its twin there), so a change to either cannot change what the three brokers are fed.
"""

import asyncio
import socket
import struct
import threading
import time

PAYLOAD_SIZE = 64
TOPIC = "bench/tp"
FANIN_PREFIX = "bench/fanin/"


# -- encoding ---------------------------------------------------------------------------

def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        digit, n = n % 128, n // 128
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def utf8(s: str) -> bytes:
    raw = s.encode()
    return struct.pack("!H", len(raw)) + raw


def connect_packet(client_id: str, keepalive: int = 60, clean: bool = True) -> bytes:
    body = utf8("MQTT") + bytes([4, 0x02 if clean else 0]) + struct.pack("!H", keepalive) + utf8(client_id)
    return b"\x10" + remaining_length(len(body)) + body


def subscribe_packet(topic: str, qos: int, packet_id: int = 1) -> bytes:
    body = struct.pack("!H", packet_id) + utf8(topic) + bytes([qos])
    return b"\x82" + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, qos: int = 0, packet_id: int = 0) -> bytes:
    body = utf8(topic) + (struct.pack("!H", packet_id) if qos else b"") + payload
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


def seq_payload(seq: int) -> bytes:
    """64 bytes that start with the message's sequence number in decimal."""
    return b"%010d" % seq + b"x" * (PAYLOAD_SIZE - 10)


def packet_id(seq: int) -> int:
    return seq % 65535 + 1


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


# -- a blocking client for the 1:1 throughput runs ----------------------------------------

def recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        data += chunk
    return data


def open_client(port: int, client_id: str, keepalive: int = 60) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id, keepalive))
    connack = recv_exact(sock, 4)
    if connack[0] != 0x20 or connack[3] != 0:
        raise ConnectionError(f"CONNACK refused: {connack.hex()}")
    return sock


def subscribe(sock: socket.socket, topic: str, qos: int) -> None:
    sock.sendall(subscribe_packet(topic, qos))
    suback = recv_exact(sock, 5)
    if suback[0] != 0x90 or suback[4] != qos:
        raise ConnectionError(f"SUBACK unexpected: {suback.hex()}")


class Subscriber(threading.Thread):
    """Receives ``count`` messages on TOPIC, acknowledging QoS 1/2, recording each sequence number."""

    def __init__(self, sock: socket.socket, qos: int, count: int, idle_timeout: float):
        super().__init__(daemon=True)
        self.sock, self.qos, self.count, self.idle_timeout = sock, qos, count, idle_timeout
        self.seen = bytearray(count)
        self.unique = 0
        self.duplicates = 0
        self.last_at = None
        self.error = None

    def run(self):
        self.sock.settimeout(self.idle_timeout)
        try:
            if self.qos == 0:
                self._count_fixed_frames()
            else:
                self._parse_and_ack()
        except (socket.timeout, ConnectionError, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def _count_fixed_frames(self):
        frame = publish_packet(TOPIC, seq_payload(0))
        received = 0
        first = b""
        buf = bytearray(1 << 20)
        while received < self.count * len(frame):
            n = self.sock.recv_into(buf)
            if not n:
                raise ConnectionError("broker closed the connection")
            if len(first) < 2:
                first += bytes(buf[:2])
                if first[0] & 0xF0 != 0x30 or first[1] != frame[1]:
                    raise ConnectionError(f"unexpected delivery {first.hex()}")
            received += n
            self.last_at = time.perf_counter()
            self.unique = received // len(frame)

    def _parse_and_ack(self):
        buf = b""
        sock = self.sock
        while self.unique < self.count:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("broker closed the connection")
            self.last_at = time.perf_counter()
            buf = buf + chunk if buf else chunk
            replies = []
            i, n = 0, len(buf)
            while n - i >= 2:
                b0 = buf[i]
                rl, shift, j = 0, 0, i + 1
                while j < n:
                    digit = buf[j]
                    j += 1
                    rl |= (digit & 0x7F) << shift
                    shift += 7
                    if not digit & 0x80:
                        break
                else:
                    break  # header not complete yet
                end = j + rl
                if end > n:
                    break
                kind = b0 >> 4
                if kind == 3:
                    qos = (b0 >> 1) & 3
                    tl = buf[j] << 8 | buf[j + 1]
                    p = j + 2 + tl
                    if qos:
                        pid = buf[p:p + 2]
                        p += 2
                        replies.append((b"\x40\x02" if qos == 1 else b"\x50\x02") + pid)
                    seq = int(buf[p:p + 10])
                    if self.seen[seq]:
                        self.duplicates += 1
                    else:
                        self.seen[seq] = 1
                        self.unique += 1
                elif kind == 6:  # PUBREL -> PUBCOMP
                    replies.append(b"\x70\x02" + buf[j:j + 2])
                i = end
            buf = buf[i:]
            if replies:
                sock.sendall(b"".join(replies))

    def missing(self) -> int:
        return self.count - self.unique


def encode_stream(qos: int, count: int) -> list[bytes]:
    return [publish_packet(TOPIC, seq_payload(s), qos, packet_id(s) if qos else 0) for s in range(count)]


def publish_stream(sock: socket.socket, qos: int, packets: list[bytes], window: int = 20) -> None:
    """Publish ``count`` messages; at QoS 1/2 keep at most ``window`` unacknowledged.

    20 is the in-flight limit of mosquitto_pub and paho. A larger window makes
    mosquitto 2.0.11 stall: QoS 2 messages queued beyond its own in-flight limit
    toward the subscriber are never sent (inflight quota fixes came in 2.0.13)."""
    count = len(packets)
    if qos == 0:
        blob = b"".join(packets)
        step = 1 << 16
        for i in range(0, len(blob), step):
            sock.sendall(blob[i:i + step])
        return
    sent = done = 0
    pending = b""
    while done < count:
        # Refill on every acknowledgement, as mosquitto_pub does: the new PUBLISH carries
        # the TCP ACK, so a broker with Nagle on never waits for a delayed ACK.
        if sent < count and sent - done < window:
            upto = min(count, done + window)
            sock.sendall(b"".join(packets[sent:upto]))
            sent = upto
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise ConnectionError("broker closed the publisher's connection")
        pending += chunk
        usable = len(pending) - len(pending) % 4
        rel = []
        for k in range(0, usable, 4):
            kind = pending[k] >> 4
            if kind == 4 or kind == 7:  # PUBACK (QoS 1) or PUBCOMP (QoS 2) completes a message
                done += 1
            elif kind == 5:  # PUBREC -> PUBREL
                rel.append(b"\x62\x02" + pending[k + 2:k + 4])
            else:
                raise ConnectionError(f"unexpected packet to publisher: {pending[k:k + 4].hex()}")
        pending = pending[usable:]
        if rel:
            sock.sendall(b"".join(rel))


def one_to_one(port: int, qos: int, count: int, idle_timeout: float = 10.0) -> dict:
    """1 publisher -> 1 subscriber on one topic: delivered messages/s, lost and duplicate counts."""
    tag = f"{qos}-{time.monotonic_ns() % 10**9}"
    sub_sock = open_client(port, f"bench-sub-{tag}")
    subscribe(sub_sock, TOPIC, qos)
    pub_sock = open_client(port, f"bench-pub-{tag}")
    sub = Subscriber(sub_sock, qos, count, idle_timeout)
    packets = encode_stream(qos, count)
    sub.start()
    start = time.perf_counter()
    pub_error = None
    try:
        publish_stream(pub_sock, qos, packets)
    except (ConnectionError, OSError) as exc:
        pub_error = f"{type(exc).__name__}: {exc}"
    published_at = time.perf_counter()
    sub.join(idle_timeout + 60)
    elapsed = (sub.last_at or published_at) - start
    for sock in (pub_sock, sub_sock):
        try:
            sock.sendall(DISCONNECT)
        except OSError:
            pass
        sock.close()
    return {
        "qos": qos, "count": count, "delivered": sub.unique, "lost": sub.missing(),
        "duplicates": sub.duplicates, "seconds": elapsed,
        "rate": sub.unique / elapsed if elapsed > 0 else 0.0,
        "error": pub_error or sub.error,
    }


# -- many connections: idle memory and fan-in -------------------------------------------

async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0 = (await reader.readexactly(1))[0]
    rl, mult = 0, 1
    while True:
        digit = (await reader.readexactly(1))[0]
        rl += (digit & 0x7F) * mult
        mult *= 128
        if not digit & 0x80:
            break
    return b0, await reader.readexactly(rl)


async def open_async(port: int, client_id: str, keepalive: int):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(connect_packet(client_id, keepalive))
    b0, body = await read_packet(reader)
    if b0 != 0x20 or body[1] != 0:
        raise ConnectionError(f"{client_id}: CONNACK refused {body.hex()}")
    return reader, writer


async def open_many(port: int, count: int, prefix: str, keepalive: int = 120, parallel: int = 50):
    """``count`` connected clients, opened ``parallel`` at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(i):
        async with gate:
            return await asyncio.wait_for(open_async(port, f"{prefix}{i:04d}", keepalive), 30)

    return await asyncio.gather(*(one(i) for i in range(count)))


async def close_many(clients) -> None:
    for _, writer in clients:
        try:
            writer.write(DISCONNECT)
            writer.close()
        except (ConnectionError, RuntimeError):
            pass
    await asyncio.sleep(0)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


class FanInSubscriber(threading.Thread):
    """The wildcard subscriber of the fan-in run, on its own thread and blocking socket so
    that the publishers' event loop never delays the moment a message is timed."""

    def __init__(self, sock: socket.socket, measure_from: float):
        super().__init__(daemon=True)
        self.sock, self.measure_from = sock, measure_from
        self.received = 0
        self.latencies: list[float] = []
        self.stopping = False

    def run(self):
        self.sock.settimeout(0.2)
        buf = b""
        while not self.stopping:
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            buf += chunk
            i = 0
            # Every delivery is a QoS 0 PUBLISH with a 2-byte header (remaining length < 128).
            while len(buf) - i >= 2 and len(buf) - i >= 2 + buf[i + 1]:
                end = i + 2 + buf[i + 1]
                if buf[i] >> 4 == 3:
                    tl = buf[i + 2] << 8 | buf[i + 3]
                    (stamp,) = struct.unpack_from("!d", buf, i + 4 + tl)
                    self.received += 1
                    if stamp >= self.measure_from:
                        self.latencies.append(now - stamp)
                i = end
            buf = buf[i:]


async def fan_in(port: int, connections: int, seconds: float, cpu_sampler, warmup: float = 1.0) -> dict:
    """``connections`` clients each publish once a second (QoS 0), spread evenly over the
    second; one subscriber on the wildcard measures latency. Broker CPU is sampled over
    the run after ``warmup`` seconds."""
    sub_sock = open_client(port, "bench-fanin-sub", 120)
    subscribe(sub_sock, FANIN_PREFIX + "#", 0)
    publishers = await open_many(port, connections, "bench-fanin-")
    sent = 0
    start = time.perf_counter() + 0.2
    measure_from = start + warmup
    stop = start + warmup + seconds
    sub = FanInSubscriber(sub_sock, measure_from)
    sub.start()

    async def publisher(i, writer):
        nonlocal sent
        topic = f"{FANIN_PREFIX}{i:04d}"
        at = start + i / connections
        while at < stop:
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            stamp = struct.pack("!d", time.perf_counter())
            writer.write(publish_packet(topic, stamp + b"f" * (PAYLOAD_SIZE - 8)))
            sent += 1
            at += 1.0

    # The publishers start now, so the warm-up second is already spread evenly over time.
    running = asyncio.gather(*(publisher(i, w) for i, (_, w) in enumerate(publishers)))
    await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
    cpu_start = cpu_sampler()
    await running
    cpu_end = cpu_sampler()
    cpu_wall = time.perf_counter() - measure_from
    # Let the last messages arrive; a bounded wait, not a guess at the broker's speed.
    deadline = time.perf_counter() + 10
    while sub.received < sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    sub.stopping = True
    sub.join(5)
    await close_many(publishers)
    sub_sock.close()
    latencies = sub.latencies
    return {
        "connections": connections, "sent": sent, "received": sub.received,
        "p50_ms": percentile(latencies, 50) * 1e3, "p99_ms": percentile(latencies, 99) * 1e3,
        "max_ms": max(latencies, default=float("nan")) * 1e3,
        "cpu_pct": 100.0 * (cpu_end - cpu_start) / cpu_wall,
    }


async def idle_memory(port: int, connections: int, rss_kib, settle: float = 1.0) -> dict:
    """Resident memory per idle connection: VmRSS with ``connections`` idle clients minus before."""
    warm = await open_many(port, 5, "bench-warm-")
    await close_many(warm)
    await asyncio.sleep(settle)
    before = rss_kib()
    clients = await open_many(port, connections, "bench-idle-", keepalive=300)
    await asyncio.sleep(settle)
    # Every client must still be connected: a PINGREQ round trip on each proves it.
    for _, writer in clients:
        writer.write(PINGREQ)
    answers = await asyncio.gather(*(asyncio.wait_for(read_packet(r), 30) for r, _ in clients))
    if any(b0 != 0xD0 for b0, _ in answers):
        raise ConnectionError("a client got no PINGRESP")
    after = rss_kib()
    await close_many(clients)
    return {"connections": connections, "rss_before_kib": before, "rss_after_kib": after,
            "per_conn_kib": (after - before) / connections}
