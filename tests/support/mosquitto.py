"""A real mosquitto broker on an ephemeral port, for interop tests."""

import shutil
import signal
import subprocess
from pathlib import Path

from .net import free_port, listener_ports, port_open, wait_for


class Mosquitto:
    """mosquitto started from a generated config; can be killed and restarted on the same port."""

    def __init__(self, workdir: Path, extra_conf: str = "", port: int | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        # As root mosquitto drops to its own user and could not read pytest's 0700 folders.
        self.conf.write_text(
            f"user root\nlistener {self.port} 127.0.0.1\n"
            f"log_dest file {self.log}\nlog_type all\n{extra_conf}"
        )
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        try:
            ports = listener_ports(self.conf.read_text())
            wait_for(lambda: self.proc.poll() is not None or all(port_open(p) for p in ports),
                     what="mosquitto to listen on every listener")
        except TimeoutError:
            self.stop()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()}\n{self.log_text()}")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # never leave a broker running behind the test
                self.proc.kill()
                self.proc.wait()
                raise
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""
