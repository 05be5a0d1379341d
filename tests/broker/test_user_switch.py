"""`user NAME`: started as root, `luxnode broker` runs as NAME once its listeners are open (as mosquitto)."""

import os
import pwd
import signal
import subprocess
import sys

import pytest

from tests.support.net import free_port, port_open, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")


def uid_of(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("Uid:"):
            return int(line.split()[2])  # effective
    raise AssertionError("no Uid line")


def test_started_as_root_it_runs_as_the_configured_user(tmp_path):
    port = free_port()
    config = tmp_path / "broker.conf"
    config.write_text(f"user nobody\nallow_anonymous true\nlistener {port} 127.0.0.1\n")
    broker = subprocess.Popen([sys.executable, "-m", "luxnode", "broker", "-c", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: broker.poll() is not None or port_open(port), 20, what="the broker to listen")
        wait_for(lambda: broker.poll() is not None or uid_of(broker.pid) != 0, 10, what="the switch to nobody")
        assert broker.poll() is None
        assert uid_of(broker.pid) == pwd.getpwnam("nobody").pw_uid
        assert subprocess.run(["mosquitto_pub", "-p", str(port), "-t", "t", "-m", "m"], timeout=10).returncode == 0
    finally:
        broker.send_signal(signal.SIGTERM)
        _, stderr = broker.communicate(timeout=20)
    assert "Running as user nobody" in stderr


def test_an_unknown_user_stops_startup(tmp_path):
    config = tmp_path / "broker.conf"
    config.write_text(f"user no-such-account\nlistener {free_port()} 127.0.0.1\n")
    result = subprocess.run([sys.executable, "-m", "luxnode", "broker", "-c", config],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "user no-such-account: no such account" in result.stderr and "Traceback" not in result.stderr
