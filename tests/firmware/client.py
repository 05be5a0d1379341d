"""Drive tests/firmware/mp_client.py (lux.mqtt on the unix port) from a test.

Under LUXNODE_FAITHFUL=<chip> the client runs in a folder holding that chip's board.json,
so the faithful build's board is that chip: its socket options, its `tls` (axTLS on an
ESP8266: no TLS-PSK, no certificate checks) and its GC heap, with lux/ deployed as .mpy, as
the firmware meets them there."""

import json
import queue
import shutil
import tempfile
import threading
from pathlib import Path

from luxnode.paths import BOARDS_DIR
from luxnode.sim import port
from tests.firmware.node import board_file
from tests.support.micropython import FAITHFUL, FIRMWARE, spawn

SCRIPT = Path(__file__).with_name("mp_client.py")


class MPClient:
    def __init__(self, **args):
        code = "ARGS = %r\n" % json.dumps(args) + SCRIPT.read_text()
        self.root, path, heap = None, FIRMWARE, "2M"
        if FAITHFUL:  # the chip's board and heap, lux/ as deployed (.mpy)
            self.root = Path(tempfile.mkdtemp(prefix="mp-client-"))
            shutil.copy(BOARDS_DIR / f"{FAITHFUL}.json", self.root / "board.json")
            binary = port.faithful_micropython(board=FAITHFUL)
            path = port.deployed_firmware(binary)
            heap = board_file(FAITHFUL)["heap_bytes"] + port.board_heap_overhead(binary, self.root)
        self.proc = spawn(code, path=(path,), cwd=self.root, heap=heap)
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

    def wait_exit(self, timeout=10.0):
        """The exit code, once every line the client printed (a traceback too) is in .seen."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        self.drain()
        return code

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
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
