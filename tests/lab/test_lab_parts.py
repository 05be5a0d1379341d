"""The lab's parts on their own: broker.conf, the dashboard server, errors, the terminal status line."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from luxnode.lab import brokerconf
from luxnode.lab.brokerconf import LabPorts
from luxnode.lab.web import DashboardServer
from luxnode.mosquitto import conf
from tests.lab.labrun import LabCommand, OnPty, processes_under
from tests.support.net import free_port, port_open, wait_for


def test_broker_conf_reads_back_as_three_listeners_sharing_the_auth_files(tmp_path):
    path = brokerconf.write(tmp_path, LabPorts(psk=18883, password=11883, ws=19001))
    loaded = conf.load(path)
    assert loaded.warnings == []
    assert loaded.pid_file == tmp_path / "broker.pid"
    assert loaded.persistence and loaded.persistence_location == tmp_path
    psk, password, ws = loaded.listeners
    assert (psk.port, psk.psk_hint, psk.use_identity_as_username, psk.address) == (18883, "luxnode", True, None)
    assert (password.port, password.psk_hint, password.protocol) == (11883, None, "mqtt")
    assert (ws.port, ws.protocol, ws.address) == (19001, "websockets", "127.0.0.1")
    for listener in loaded.listeners:
        assert not listener.allow_anonymous
        assert listener.password_file == tmp_path / "passwd"
        assert listener.acl_file == tmp_path / "acl"
        assert listener.psk_file == tmp_path / "psk"


def test_mosquitto_runs_the_lab_broker_conf(tmp_path):
    """The same file runs under mosquitto: the lab's setup carries over to production."""
    ports = LabPorts(psk=free_port(), password=free_port(), ws=free_port())
    path = brokerconf.write(tmp_path, ports)
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "passwd"), "operator", "pw"], check=True)
    (tmp_path / "psk").write_text("sim-1:00112233445566778899aabbccddeeff\n")
    (tmp_path / "acl").write_text("user operator\ntopic read luxnode/#\n")
    # As root mosquitto would drop to its own user, which cannot read the 0700 test folder.
    path.write_text("user root\n" + path.read_text())
    proc = subprocess.Popen(["mosquitto", "-c", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or all(port_open(p) for p in vars(ports).values()), 10,
                 what="mosquitto's three listeners")
        assert proc.poll() is None, proc.stderr.read().decode()
        sub = subprocess.run(["mosquitto_sub", "-p", str(ports.psk), "--psk", "00112233445566778899aabbccddeeff",
                              "--psk-identity", "sim-1", "-t", "luxnode/sim-1/set", "-W", "1", "-d"],
                             capture_output=True, text=True, timeout=10)
        # Connected over TLS-PSK and subscribed (-d prints the broker's answers); -W 1 then ends it.
        assert "received CONNACK (0)" in sub.stdout and "received SUBACK" in sub.stdout, sub.stdout + sub.stderr
        assert "Connection refused" not in sub.stderr and "Error" not in sub.stderr, sub.stderr
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def dashboard():
    server = DashboardServer({"ws_port": 9001, "prefix": "luxnode", "username": "operator",
                              "password": "s3cret"}, port=0).start()
    yield server
    server.stop()


def get(server, path, host=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    connection.request("GET", path, headers={"Host": host or f"127.0.0.1:{server.port}"})
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def test_dashboard_serves_the_page_its_script_and_the_vendored_client(dashboard):
    status, headers, body = get(dashboard, "/")
    assert status == 200 and b"vendor/mqtt.min.js" in body and b"app.js" in body
    assert b"http://" not in body.replace(b"http://www.w3.org", b"")  # nothing fetched from elsewhere
    status, _, body = get(dashboard, "/vendor/mqtt.min.js")
    assert status == 200 and body.startswith(b"/*! MQTT.js 5.16.0") and b"MIT License" in body[:2000]
    status, _, body = get(dashboard, "/app.js")
    assert status == 200 and b"mqtt.connect" in body


def test_dashboard_hands_its_settings_to_localhost_only(dashboard):
    status, headers, body = get(dashboard, "/config.json", host=f"localhost:{dashboard.port}")
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {"ws_port": 9001, "prefix": "luxnode", "username": "operator", "password": "s3cret"}
    # A page on another origin that rebinds its own name to 127.0.0.1 sends its own Host.
    status, _, body = get(dashboard, "/config.json", host="evil.example:80")
    assert status == 403 and b"s3cret" not in body
    status, _, _ = get(dashboard, "/../../registry.json")
    assert status == 404


def test_dashboard_server_listens_on_loopback_only(dashboard):
    assert dashboard.httpd.server_address[0] == "127.0.0.1"


def luxnode_lab(home, *extra):
    env = dict(os.environ, LUXNODE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "luxnode", "lab", "--no-browser", *extra], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_busy_port_is_one_clear_line_and_starts_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = luxnode_lab(tmp_path / "home", "--nodes", "1", "--port", str(free_port()), "--psk-port",
                             str(free_port()), "--ws-port", str(free_port()), "--http-port", str(port))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert f"port {port} (dashboard) is already in use" in result.stderr
    assert processes_under(tmp_path / "home") == []


@pytest.mark.parametrize("argv, message", [
    (["--nodes", "-1"], "--nodes -1: expected 0..64"),
    (["--port", "7000", "--psk-port", "7000"], "must differ"),
    (["--http-port", "70000"], "--http-port 70000: expected a TCP port"),
])
def test_bad_options_name_the_problem(tmp_path, argv, message):
    result = luxnode_lab(tmp_path / "home", *argv)
    assert result.returncode == 2 and message in result.stderr, result.stderr


def test_status_line_on_a_terminal_and_ctrl_c(tmp_path):
    """On a terminal the lab redraws one status line; Ctrl-C (SIGINT) stops it cleanly."""
    home = tmp_path / "home"
    terminal = OnPty(
        [sys.executable, "-m", "luxnode", "lab", "--no-browser", "--nodes", "2", "--port", str(free_port()),
         "--psk-port", str(free_port()), "--ws-port", str(free_port()), "--http-port", str(free_port())],
        env=dict(os.environ, LUXNODE_HOME=str(home), COLUMNS="200", TERM="xterm"),
    )
    try:
        wait_for(lambda: b"2/2 nodes online" in terminal.screen() and b"sim-2 light" in terminal.seen, 60,
                 what="the status line")
        os.kill(terminal.proc.pid, signal.SIGINT)
        assert terminal.proc.wait(40) == 0
        assert b"luxnode lab: stopped" in terminal.screen() and b"Traceback" not in terminal.seen
        assert processes_under(home) == []
    finally:
        terminal.close()


def test_a_lab_killed_outright_takes_its_broker_and_nodes_along(tmp_path):
    """SIGKILL leaves no chance to clean up: the children end by themselves (parent-death signal)."""
    with LabCommand(tmp_path / "home", nodes=2) as lab:
        lab.wait_line("2/2 nodes online", timeout=60)
        assert len(processes_under(lab.home)) >= 3  # the broker and two nodes
        lab.proc.kill()
        lab.proc.wait(10)
        wait_for(lambda: processes_under(lab.home) == [], 15, what="the broker and nodes to end")


def test_when_the_broker_dies_the_lab_says_so_stops_the_nodes_and_fails(tmp_path):
    with LabCommand(tmp_path / "home", nodes=1) as lab:
        lab.wait_line("1/1 nodes online", timeout=60)
        os.kill(lab.broker_pid, signal.SIGKILL)
        assert lab.proc.wait(30) == 1
        assert "the broker exited with status -9; see" in lab.output()
        assert processes_under(lab.home) == []


def test_a_lab_with_no_simulated_nodes_starts_on_a_fresh_home(tmp_path):
    """The broker reads the auth files at start: they exist even before any node is provisioned."""
    with LabCommand(tmp_path / "home", nodes=0) as lab:
        lab.wait_line("0/0 nodes online", timeout=60)
        assert (lab.home / "passwd").exists() and (lab.home / "acl").exists()
        assert lab.interrupt() == 0, lab.output()
