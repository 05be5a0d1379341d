"""Hostile loads from issue 9, each with an operator's PINGREQ round trip measured beside it.

- ``wildcard_subscribes``: 20,000 retained messages stored, then one client sends
  1,000 wildcard SUBSCRIBEs (``bench/other/K/#``, matching none of them) at once:
  seconds until the last SUBACK. A broker that scans every retained message per
  SUBSCRIBE does 20 million topic matches here.
- ``big_publish``: one 100 MB QoS 0 PUBLISH from a publisher to a subscriber:
  seconds from its first byte sent to its last byte received. ``big_publishes``
  runs it BIG_RUNS times on one broker and gives the median: on a shared machine a
  single run moves by a factor of two with the other processes' load.
- ``connect_flood``: 8 connections each announce a 200 MB CONNECT and stream its
  body for a few seconds, never authenticating: the broker's peak resident memory
  and CPU over that whole window.

Blocking sockets in threads, so the load generator's own event loop cannot delay
the bystander's PINGREQ. Packets come from broker_load (encoded by hand there).
"""

import socket
import threading
import time

from broker_load import PINGREQ, open_client, publish_packet, recv_exact, remaining_length

RETAINED = 20_000
SUBSCRIBES = 1_000
BIG_PAYLOAD = 100 * 1000 * 1000
BIG_RUNS = 3
FLOOD_CONNECTIONS = 8
FLOOD_ANNOUNCED = 200 * 1000 * 1000
CHUNK = 1 << 20


class Pinger(threading.Thread):
    """An operator's connection: PINGREQ every 10 ms, round trips recorded (the worst is the figure)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.sock = open_client(port, "bench-operator", keepalive=600)
        self.sock.settimeout(60)
        self.rtts: list[float] = []
        self.stopping = threading.Event()
        self.error = None

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                start = time.perf_counter()
                self.sock.sendall(PINGREQ)
                if recv_exact(self.sock, 2) != b"\xd0\x00":
                    raise ConnectionError("expected PINGRESP")
                self.rtts.append(time.perf_counter() - start)
                self.stopping.wait(0.01)
        except OSError as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def finish(self) -> dict:
        self.stopping.set()
        self.join(90)
        self.sock.close()
        worst = max(self.rtts) if self.rtts else float("nan")
        return {"ping_max_ms": 1000 * worst, "pings": len(self.rtts), "ping_error": self.error}


def _puback_after(sock: socket.socket, topic: str) -> None:
    """A QoS 1 PUBLISH and its PUBACK: everything this client sent before is processed."""
    sock.sendall(publish_packet(topic, b"m", 1, 7))
    if recv_exact(sock, 4)[0] != 0x40:
        raise ConnectionError("expected PUBACK")


def wildcard_subscribes(port: int, retained: int = RETAINED, subscribes: int = SUBSCRIBES) -> dict:
    loader = open_client(port, "bench-retainer", keepalive=600)
    loader.settimeout(120)
    packets = [b"\x31" + publish_packet(f"bench/retained/{i // 100}/{i % 100}", b"%016d" % i)[1:]
               for i in range(retained)]  # 0x31: QoS 0, retain
    for start in range(0, retained, 1000):
        loader.sendall(b"".join(packets[start:start + 1000]))
    _puback_after(loader, "bench/marker")
    subscriber = open_client(port, "bench-subscriber", keepalive=600)
    subscriber.settimeout(120)
    burst = []
    for k in range(subscribes):
        body = (k % 65535 + 1).to_bytes(2, "big") + _utf8(f"bench/other/{k}/#") + b"\x00"
        burst.append(b"\x82" + remaining_length(len(body)) + body)
    pinger = Pinger(port)
    pinger.start()
    start = time.perf_counter()
    subscriber.sendall(b"".join(burst))
    recv_exact(subscriber, 5 * subscribes)  # the SUBACKs (nothing matched, so nothing else came)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, **pinger.finish()}
    for sock in (loader, subscriber):
        sock.close()
    return result


def big_publish(port: int, size: int = BIG_PAYLOAD) -> dict:
    topic = "bench/big"
    subscriber = open_client(port, "bench-big-sub", keepalive=600)
    subscriber.settimeout(120)
    body = (1).to_bytes(2, "big") + _utf8(topic) + b"\x00"
    subscriber.sendall(b"\x82" + remaining_length(len(body)) + body)
    recv_exact(subscriber, 5)
    publisher = open_client(port, "bench-big-pub", keepalive=600)
    publisher.settimeout(120)
    packet = publish_packet(topic, bytes(size))
    received = {}

    def receive():  # the same packet comes back: QoS 0 keeps its header
        try:
            buffer = bytearray(len(packet))
            view, got = memoryview(buffer), 0
            while got < len(packet):
                n = subscriber.recv_into(view[got:])
                if not n:
                    raise ConnectionError("broker closed the subscriber")
                got += n
            received["at"] = time.perf_counter()
        except OSError as exc:
            received["error"] = f"{type(exc).__name__}: {exc}"

    reader = threading.Thread(target=receive, daemon=True)
    reader.start()
    start = time.perf_counter()
    try:
        publisher.sendall(packet)
    except OSError as exc:
        received.setdefault("error", f"publisher: {type(exc).__name__}: {exc}")
    reader.join(120)
    for sock in (subscriber, publisher):
        sock.close()
    if "at" not in received:
        return {"seconds": None, "error": received.get("error", "not received in 120 s")}
    return {"seconds": received["at"] - start, "bytes": size}


def big_publishes(port: int, runs: int = BIG_RUNS) -> dict:
    """``big_publish`` ``runs`` times: the median run, with every run's seconds in ``runs``."""
    results = [big_publish(port) for _ in range(runs)]
    failed = [result for result in results if result["seconds"] is None]
    if failed:
        return failed[0]
    median = sorted(results, key=lambda result: result["seconds"])[runs // 2]
    return {**median, "runs": [result["seconds"] for result in results]}


def connect_flood(port: int, rss_kib, cpu_seconds, seconds: float, connections: int = FLOOD_CONNECTIONS,
                  announced: int = FLOOD_ANNOUNCED) -> dict:
    baseline = rss_kib()
    peak = [baseline]
    sent = [0] * connections
    deadline = time.monotonic() + seconds
    stop = threading.Event()

    def attacker(index: int) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=0.5)
        except OSError:
            return
        chunk = bytes(CHUNK)
        try:
            sock.sendall(b"\x10" + remaining_length(announced))
            while sent[index] < announced and time.monotonic() < deadline:
                try:
                    sent[index] += sock.send(chunk[:min(CHUNK, announced - sent[index])])
                except socket.timeout:
                    continue  # the broker stopped reading: fine, keep the socket open
        except OSError:
            pass  # closed by the broker: the cheapest answer
        finally:
            sock.close()

    def sampler() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], rss_kib())
            except (OSError, RuntimeError):
                return
            stop.wait(0.05)

    pinger = Pinger(port)
    pinger.start()
    watch = threading.Thread(target=sampler, daemon=True)
    watch.start()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    attackers = [threading.Thread(target=attacker, args=(i,), daemon=True) for i in range(connections)]
    for thread in attackers:
        thread.start()
    for thread in attackers:
        thread.join(seconds + 30)
    # CPU and RSS over the whole window, even when the broker closed the attackers at once
    # (a window of a few ticks would make the CPU figure noise).
    stop.wait(max(0.0, deadline - time.monotonic()))
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    stop.set()
    watch.join(5)
    return {"peak_rss_mib": peak[0] / 1024, "baseline_rss_mib": baseline / 1024,
            "cpu_pct": 100 * cpu / elapsed, "accepted_mib": sum(sent) / (1 << 20), "seconds": elapsed,
            **pinger.finish()}


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw

