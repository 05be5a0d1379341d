"""A subscriber that stops reading (a frozen dashboard, a hung node) must not stop the
messages of everyone else: mosquitto drops QoS 0 for the stuck client and keeps delivering
to the others. A short hold of the publisher is fine; a long one is an outage."""

import socket
import threading
import time

from . import packets as P

RUN_S = 8.0
LONGEST_GAP_S = 4.0  # the hold a healthy subscriber may see before the broker gives up on the stuck one


def client(port: int, client_id: str, topic: str, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(P.connect(client_id) + P.subscribe([(topic, 0)]))
    assert P.read_packet(sock)[0] == 0x20
    assert P.read_packet(sock)[0] == 0x90
    return sock


def test_stuck_subscriber_does_not_stall_others(luxnode_broker):
    broker = luxnode_broker("allow_anonymous true\n")
    stuck = client(broker.port, "stuck-dashboard", "#", receive_buffer=4096)  # never read again
    healthy = client(broker.port, "healthy", "flood/t")
    publisher = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    publisher.sendall(P.connect("flooder"))
    assert P.read_packet(publisher)[0] == 0x20

    stop = threading.Event()
    arrivals: list[float] = []

    def receive():
        healthy.settimeout(0.2)
        while not stop.is_set():
            try:
                if not healthy.recv(1 << 16):
                    return
            except socket.timeout:
                continue
            arrivals.append(time.monotonic())

    def flood():
        burst = P.publish("flood/t", b"x" * 64) * 100
        try:
            while not stop.is_set():
                publisher.sendall(burst)
        except OSError:
            pass  # a held publisher times out here; the receiver's gaps tell the story

    threads = [threading.Thread(target=receive, daemon=True), threading.Thread(target=flood, daemon=True)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(RUN_S)  # the run's length is the measurement, not a wait for an event
    stop.set()
    ended = time.monotonic()
    publisher.shutdown(socket.SHUT_RDWR)  # wakes a flood thread blocked in sendall by a held publisher
    for thread in threads:
        thread.join(15)
    for sock in (stuck, healthy, publisher):
        sock.close()

    marks = [started] + arrivals + [ended]
    longest = max(b - a for a, b in zip(marks, marks[1:]))
    assert longest < LONGEST_GAP_S, (
        f"the healthy subscriber got nothing for {longest:.1f} s while another subscriber was stuck "
        f"({len(arrivals)} reads in {RUN_S:.0f} s)")
    assert broker.alive()
