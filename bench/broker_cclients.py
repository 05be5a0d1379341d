"""The Debian C clients as a second, independent load: mosquitto_pub -l streams lines to
one mosquitto_sub, whose printed lines are counted."""

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from broker_load import DISCONNECT, PAYLOAD_SIZE, open_client, publish_packet

TOPIC = "bench/c"


class LineCounter(threading.Thread):
    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd = fd
        self.lines = 0
        self.last_at = None

    def run(self):
        while True:
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                return
            self.lines += chunk.count(b"\n")
            self.last_at = time.perf_counter()


def available() -> bool:
    return bool(shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub"))


def stream(port: int, count: int, workdir: Path, idle_timeout: float = 5.0) -> dict:
    lines = workdir / f"lines-{count}.txt"
    if not lines.exists():
        lines.write_bytes(b"".join(b"%010d" % i + b"c" * (PAYLOAD_SIZE - 10) + b"\n" for i in range(count)))
    sub = subprocess.Popen(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", TOPIC, "-q", "0"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    counter = LineCounter(sub.stdout.fileno())
    counter.start()
    try:
        # mosquitto_sub has no "subscribed" signal: publish markers until one comes through.
        marker = open_client(port, "bench-c-marker")
        deadline = time.monotonic() + 10
        while counter.lines == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("mosquitto_sub received nothing within 10 s")
            marker.sendall(publish_packet(TOPIC, b"ready"))
            time.sleep(0.05)
        marker.sendall(DISCONNECT)
        marker.close()
        time.sleep(0.3)
        base = counter.lines
        start = time.perf_counter()
        with open(lines, "rb") as stdin:
            pub = subprocess.Popen(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", TOPIC,
                                    "-q", "0", "-l"], stdin=stdin, stderr=subprocess.DEVNULL)
        while counter.lines - base < count:
            if time.perf_counter() - (counter.last_at or start) > idle_timeout and pub.poll() is not None:
                break
            time.sleep(0.01)
        pub.wait(timeout=60)
        delivered = counter.lines - base
        elapsed = (counter.last_at or time.perf_counter()) - start
    finally:
        sub.terminate()
        sub.wait(timeout=10)
    return {"count": count, "delivered": delivered, "lost": count - delivered, "seconds": elapsed,
            "rate": delivered / elapsed if elapsed > 0 else 0.0}
