"""Drive tests/firmware/mp_client.py (lux.mqtt on the unix port) from a test."""

import json
import queue
import threading
from pathlib import Path

from tests.support.micropython import FIRMWARE, spawn

SCRIPT = Path(__file__).with_name("mp_client.py")


class MPClient:
    def __init__(self, **args):
        code = "ARGS = %r\n" % json.dumps(args) + SCRIPT.read_text()
        self.proc = spawn(code, path=(FIRMWARE,))
        self.lines = queue.Queue()
        self.seen = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix, timeout=10.0):
        """The next line starting with prefix (earlier lines are kept in .seen)."""
        try:
            while True:
                line = self.lines.get(timeout=timeout)
                if line is None:
                    raise AssertionError(f"client exited waiting for {prefix!r}: {self.proc.stderr.read()}\n"
                                         + "\n".join(self.seen))
                self.seen.append(line)
                if line.startswith(prefix):
                    return line
        except queue.Empty:
            raise AssertionError(f"no {prefix!r} within {timeout} s; got:\n" + "\n".join(self.seen)) from None

    def drain(self):
        """Every line printed so far."""
        while True:
            try:
                line = self.lines.get_nowait()
            except queue.Empty:
                return self.seen
            if line is None:
                return self.seen
            self.seen.append(line)

    def send(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=5)
            except (OSError, ValueError, Exception):
                self.proc.kill()
                self.proc.wait()
