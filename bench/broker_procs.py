"""Start the brokers under test and read their CPU time and resident memory from /proc.

free_port and port_open mirror tests/support/net.py and Broker.stop the test fixtures'
stop: bench scripts run as ``python bench/NAME.py`` with only bench/ on the import
path, and a benchmark should not change when a test helper does."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
AMQTT_VENV = BENCH_DIR / ".venv"
AMQTT_VERSION = "0.12.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def venv_tool(executable: str, requirement: str) -> str:
    """An executable from bench/.venv, installing its package on first use. amqtt lives
    there because it pins websockets==15.0.1, older than the project's; py-spy to keep
    the profiler out of the project's environment."""
    exe = AMQTT_VENV / "bin" / executable
    if not exe.exists():
        if not (AMQTT_VENV / "bin" / "pip").exists():
            print(f"creating {AMQTT_VENV} ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(AMQTT_VENV)], check=True)
        subprocess.run([str(AMQTT_VENV / "bin" / "pip"), "install", "-q", requirement], check=True)
    return str(exe)


def amqtt_command() -> list[str]:
    return [venv_tool("amqtt", f"amqtt=={AMQTT_VERSION}")]


def mosquitto_conf(port: int) -> str:
    # The same mosquitto.conf drives luxnode broker: one load, one configuration.
    return (f"listener {port} 127.0.0.1\nallow_anonymous true\n"
            # Queue limits high enough that a burst is never dropped by policy.
            "max_queued_messages 1000000\n")


class Broker:
    """One broker process on an ephemeral port."""

    def __init__(self, name: str, workdir: Path):
        self.name = name
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.log = self.workdir / "broker.log"

    def command(self) -> list[str]:
        if self.name == "mosquitto":
            conf = self.workdir / "mosquitto.conf"
            conf.write_text(mosquitto_conf(self.port))
            return [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)]
        if self.name == "luxnode":
            conf = self.workdir / "luxnode.conf"
            conf.write_text(mosquitto_conf(self.port))
            return [sys.executable, "-m", "luxnode", "broker", "-c", str(conf)]
        if self.name == "amqtt":
            conf = self.workdir / "amqtt.yaml"
            conf.write_text(
                "listeners:\n  default:\n    type: tcp\n"
                f"    bind: 127.0.0.1:{self.port}\n    max_connections: -1\n"
                "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
                "    allow_anonymous: true\n"
            )
            return amqtt_command() + ["-c", str(conf)]
        raise ValueError(f"unknown broker {self.name}")

    def start(self, wrap: list[str] | None = None) -> "Broker":
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen((wrap or []) + self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         cwd=self.workdir)
        deadline = time.monotonic() + 30
        while not port_open(self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.name} did not listen on {self.port} within 30 s")
            time.sleep(0.05)
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def cpu(self) -> float:
        return cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_kib(self.pid)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
