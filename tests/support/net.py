"""Ports and bounded waits shared by the tests."""

import collections
import socket
import threading
import time


# bind(0) picks a port at random each time, so two picks in a row can give the same one
# (5 picks: about 1 in 1,800): a command given "both" ports then fails. The last picks are kept.
_picked = collections.deque(maxlen=1000)


def free_port() -> int:
    """An ephemeral TCP port that was free a moment ago, and none of this process's last picks."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _picked:
            _picked.append(port)
            return port


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def listener_ports(conf: str) -> list[int]:
    """The loopback-reachable ports of every ``listener PORT [ADDRESS]`` in a mosquitto.conf. A
    broker opens its listeners one after another (luxnode's imports websockets on the way), so
    the first one open says nothing of the others: wait for all of them."""
    ports = []
    for line in conf.splitlines():
        words = line.split()
        if words[:1] == ["listener"] and len(words) > 1 and int(words[1]) > 0 \
                and (len(words) == 2 or words[2] in ("127.0.0.1", "0.0.0.0", "localhost")):
            ports.append(int(words[1]))
    return ports


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Listener:
    """A TCP listener on loopback whose thread hands each accepted connection to ``handle``
    (in that thread). close() ends the thread before the socket closes: a thread still blocked
    in accept() on a closed descriptor would accept on whatever socket reuses that number next
    (the next test's), so the thread looks at ``closed`` every 0.1 s instead."""

    def __init__(self, handle, backlog=4):
        self.handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=backlog)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.closed = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self.handle(conn)

    def close(self):
        self.closed.set()
        self.thread.join(timeout=15)
        self.sock.close()
