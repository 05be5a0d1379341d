"""`luxnode broker` as a real subprocess (the CLI users run), on an ephemeral port."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port, listener_ports, port_open, wait_for


class LuxnodeBroker:
    """``luxnode broker -c FILE`` from a generated mosquitto.conf; can be killed and restarted."""

    def __init__(self, workdir: Path, conf: str = "", port: int | None = None):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.conf = workdir / "broker.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\n{conf}")
        self.output = workdir / "broker.out"
        self.proc = None

    def start(self) -> "LuxnodeBroker":
        with open(self.output, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "luxnode", "broker", "-c", str(self.conf)],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            ports = listener_ports(self.conf.read_text())
            wait_for(lambda: self.proc.poll() is not None or all(port_open(p) for p in ports), timeout=20,
                     what="luxnode broker to listen on every listener")
        except TimeoutError:
            self.kill()
            raise
        if self.proc.poll() is not None:
            raise RuntimeError(f"luxnode broker exited {self.proc.returncode}:\n{self.log_text()}")
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.alive():
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log_text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""


@pytest.fixture
def luxnode_broker(tmp_path):
    """``luxnode_broker(conf="...")`` -> a running LuxnodeBroker; stopped after the test."""
    started = []

    def start(conf: str = "", port: int | None = None) -> LuxnodeBroker:
        broker = LuxnodeBroker(tmp_path / f"broker{len(started)}", conf, port)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        broker.stop()
