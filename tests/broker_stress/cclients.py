"""The Debian C clients (mosquitto_sub, mosquitto_pub) driven from tests, every wait bounded."""

import shutil
import subprocess
import threading

import pytest

from tests.support.net import wait_for


def require_clients() -> None:
    if not (shutil.which("mosquitto_pub") and shutil.which("mosquitto_sub")):
        pytest.fail("mosquitto-clients is not installed (apt-get install mosquitto-clients)")


def pub(port: int, topic: str, message: str, *options: str, timeout: float = 10) -> subprocess.CompletedProcess:
    """One mosquitto_pub; returns the finished process (check .returncode, .stderr)."""
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "-t", topic, "-m", message,
                           *options], capture_output=True, text=True, timeout=timeout)


class Sub:
    """mosquitto_sub -d -v running in the background; its output is collected line by line.

    -d makes it print the SUBACK, so a test publishes only once the subscription exists."""

    def __init__(self, port: int, topic: str, *options: str):
        # stdbuf: the debug lines are otherwise held in stdio's pipe buffer.
        self.proc = subprocess.Popen(["stdbuf", "-oL", "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", topic,
                                      "-d", "-v", *options],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def messages(self) -> list[str]:
        """Delivered messages as "topic payload" lines (debug lines start with "Client ")."""
        with self._lock:
            return [line for line in self.lines if not line.startswith(("Client ", "Subscribed "))]

    def wait_subscribed(self, timeout: float = 10) -> str:
        wait_for(lambda: "Subscribed (mid" in self.output or self.proc.poll() is not None, timeout,
                 what="mosquitto_sub to get its SUBACK")
        return self.output

    def wait_message(self, line: str, timeout: float = 10) -> None:
        wait_for(lambda: line in self.messages(), timeout, what=f"mosquitto_sub to print {line!r}:\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
