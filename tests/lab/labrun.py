"""Run `luxnode lab` as a user does, and look at it from outside: processes, MQTT, browser."""

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as paho

from tests.support.net import free_port, wait_for

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


class LabCommand:
    """`python -m luxnode lab` on ephemeral ports with its own LUXNODE_HOME."""

    def __init__(self, home: Path, nodes: int = 3, options: tuple[str, ...] = (), runner: tuple[str, ...] = ()):
        """``runner`` comes before the command and runs it (execs it, so the lab keeps its pid)."""
        self.home = home
        self.ports = {"port": free_port(), "psk_port": free_port(), "ws_port": free_port(), "http_port": free_port(),
                      "ntp_port": free_port()}
        self.env = dict(os.environ, LUXNODE_HOME=str(home), PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [*runner, sys.executable, "-m", "luxnode", "lab", "--no-browser", "--nodes", str(nodes),
             "--port", str(self.ports["port"]), "--psk-port", str(self.ports["psk_port"]),
             "--ws-port", str(self.ports["ws_port"]), "--http-port", str(self.ports["http_port"]),
             "--ntp-port", str(self.ports["ntp_port"]), *options],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, start_new_session=True,
        )
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, text: str, timeout: float = 60.0) -> str:
        def found():
            line = next((line for line in self.lines if text in line), None)
            if line is None and self.proc.poll() is not None:
                self._reader.join(5)  # what it printed last may still be in the pipe
                line = next((line for line in self.lines if text in line), None)
                if line is None:
                    raise AssertionError(f"luxnode lab exited ({self.proc.returncode}):\n{self.output()}")
            return line
        return wait_for(found, timeout, what=f"{text!r} from luxnode lab; got:\n{self.output()}")

    @property
    def url(self) -> str:
        return re.search(r"dashboard\s+(\S+)", self.wait_line("dashboard")).group(1)

    @property
    def broker_pid(self) -> int:
        return int(re.search(r"broker pid (\d+)", self.wait_line("broker pid")).group(1))

    def registry(self) -> dict:
        return json.loads((self.home / "registry.json").read_text())

    def node_pids(self, device_id: str) -> list[int]:
        """The node's processes: the unix port runs with the node's folder as working directory."""
        return wait_for(lambda: processes_under(self.home / "sim" / device_id), 30, what=f"{device_id}'s process")

    def wait(self, timeout: float) -> int:
        """The exit status, once every line the lab printed is in ``lines``: the reader thread
        can be behind when the process ends, and its last lines are what the tests look at."""
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        return code

    def interrupt(self, timeout: float = 40.0) -> int:
        """Ctrl-C, as a user ends it; returns the exit status."""
        os.kill(self.proc.pid, signal.SIGINT)
        return self.wait(timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill_all()

    def kill_all(self):
        """Whatever a failed test left running: the lab, its broker and its nodes."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for pid in processes_under(self.home):
            os.kill(pid, signal.SIGKILL)


class OnPty:
    """A command on a pseudo-terminal, as in a user's terminal; ``screen()`` is all it wrote so far."""

    def __init__(self, argv: list[str], env: dict):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.seen = bytearray()

    def screen(self) -> bytes:
        while select.select([self.master], [], [], 0.05)[0]:
            try:
                self.seen.extend(os.read(self.master, 65536))
            except OSError:  # the command ended and its side of the pty closed
                break
        return bytes(self.seen)

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        os.close(self.master)


def processes_under(folder: Path) -> list[int]:
    """Processes working in ``folder`` or naming it on their command line: what the lab started."""
    folder = str(folder)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (cwd.startswith(folder) or folder in cmdline):
            found.append(int(entry.name))
    return found


class Operator:
    """paho as the registry's operator on the lab's password listener, keeping the latest retained values."""

    def __init__(self, lab: LabCommand):
        registry = lab.registry()
        self.prefix = registry["broker"]["prefix"]
        self.latest = {}
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        self.client.username_pw_set(registry["operator"]["username"], registry["operator"]["password"])
        self.client.on_message = lambda c, u, m: self.latest.__setitem__(m.topic, m.payload.decode())
        self.client.connect("127.0.0.1", lab.ports["port"])
        self.client.subscribe(f"{self.prefix}/#", qos=1)
        self.client.loop_start()

    def state(self, device_id: str) -> dict | None:
        text = self.latest.get(f"{self.prefix}/{device_id}/state")
        return json.loads(text) if text else None

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def chromium():
    """Headless Debian Chromium through chromedriver, with a fresh profile."""
    import tempfile

    from selenium import webdriver

    chrome, driver = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (Path(chrome).exists() and Path(driver).exists()):
        raise AssertionError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="luxnode-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chrome
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=webdriver.ChromeService(driver), options=options)
    browser.profile_dir = profile
    return browser
