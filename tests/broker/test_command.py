"""``luxnode broker`` as a process: default listener, -p, -v, signals, config errors."""

import signal
import subprocess
import sys

from luxnode.mqtt import encoder
from tests.support.net import free_port, port_open, wait_for

from .conftest import RawClient


def luxnode_broker(*args, **popen):
    return subprocess.Popen([sys.executable, "-m", "luxnode", "broker", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **popen)


def test_default_listener_on_localhost_with_port_override(tmp_path):
    port = free_port()
    proc = luxnode_broker("-p", str(port), "-v", cwd=tmp_path)
    try:
        wait_for(lambda: proc.poll() is not None or port_open(port), 10, what="broker to listen")
        client = RawClient(port).connect("cli-client")
        client.send(encoder.subscribe(1, [("$SYS/broker/version", 0)]))
        assert client.next_packet().return_codes == [0]
        assert client.next_packet().payload.startswith(b"luxnode version ")
        proc.send_signal(signal.SIGHUP)
        client.send(encoder.PINGREQ_BYTES)
        assert client.next_packet().type == 13
        client.close()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read()
    assert f"Opening mqtt listen socket on 127.0.0.1 port {port}." in log
    assert "New client connected from 127.0.0.1:" in log and "as cli-client (p4, c1, k0)." in log
    assert "cli-client 0 $SYS/broker/version" in log  # -v: subscribe lines too
    assert "Reloading authentication files." in log
    assert "luxnode broker terminated" in log
    assert not list(tmp_path.iterdir())  # in memory: no database written


def test_config_errors_are_one_line(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "luxnode", "broker", "-c", str(tmp_path / "nope.conf")],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2
    assert missing.stderr.startswith("luxnode broker: error: ") and len(missing.stderr.splitlines()) == 1
    bad = tmp_path / "bad.conf"
    bad.write_text("listener 1883\nmax_keepalive soon\n")
    result = subprocess.run([sys.executable, "-m", "luxnode", "broker", "-c", str(bad)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and f"{bad}:2:" in result.stderr and "Traceback" not in result.stderr


def test_port_in_use_is_one_line(tmp_path):
    port = free_port()
    first = luxnode_broker("-p", str(port))
    try:
        wait_for(lambda: first.poll() is not None or port_open(port), 10, what="first broker")
        second = subprocess.run([sys.executable, "-m", "luxnode", "broker", "-p", str(port)],
                                capture_output=True, text=True, timeout=30)
        assert second.returncode == 2
        assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "Traceback" not in second.stderr
    finally:
        first.terminate()
        assert first.wait(10) == 0
