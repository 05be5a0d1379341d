"""The lab's parts on their own: broker.conf, the dashboard server, errors, the terminal status line."""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
from types import SimpleNamespace

import paho.mqtt.client as paho
import pytest
from rich.text import Text

from luxnode.device import authfiles, registry
from luxnode.errors import LuxnodeError
from luxnode.lab import accounts, brokerconf
from luxnode.lab.brokerconf import LabPorts
from luxnode.lab import recent
from luxnode.lab.recent import RecentHistory
from luxnode.lab.status import render_line
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
                              "--psk-identity", "sim-1", "-t", "luxnode/sim-1/set", "-E", "-W", "8", "-d"],
                             capture_output=True, text=True, timeout=10)
        # Connected over TLS-PSK and subscribed (-d prints the broker's answers); -E ends it at the SUBACK.
        assert "received CONNACK (0)" in sub.stdout and "received SUBACK" in sub.stdout, sub.stdout + sub.stderr
        assert "Connection refused" not in sub.stderr and "Error" not in sub.stderr, sub.stderr
    finally:
        proc.terminate()
        proc.wait(10)


TOKEN = "t0ken-of-the-lab-owner"
SETTINGS = {"ws_port": 9001, "prefix": "luxnode", "username": "dashboard", "password": "s3cret"}


@pytest.fixture
def dashboard():
    history = RecentHistory("luxnode")
    history.add("luxnode/sim-1/light", b'{"light": 42.5, "unit": "%", "raw": 1723}', at_ms=1000)
    history.add("luxnode/sim-1/error", b'{"error": "value must be within 0..100", "payload": "150"}', at_ms=2000)
    server = DashboardServer(SETTINGS, token=TOKEN, port=0, history=history).start()
    yield server
    server.stop()


def get(server, path, host=None, cookie=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {"Host": host or f"127.0.0.1:{server.port}"}
    if cookie:
        headers["Cookie"] = cookie
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def log_in(server, token=TOKEN) -> str:
    """Open the URL the lab printed; returns the cookie the browser would keep."""
    status, headers, _ = get(server, f"/?token={token}")
    assert status == 303 and headers["Location"] == "/", (status, headers)
    return headers["Set-Cookie"].split(";")[0]


def test_dashboard_serves_the_page_its_script_and_the_vendored_client(dashboard):
    status, headers, body = get(dashboard, "/")
    assert status == 200 and b"vendor/mqtt.min.js" in body and b"app.js" in body
    assert b"http://" not in body.replace(b"http://www.w3.org", b"")  # nothing fetched from elsewhere
    status, _, body = get(dashboard, "/vendor/mqtt.min.js")
    assert status == 200 and body.startswith(b"/*! MQTT.js 5.16.0") and b"MIT License" in body[:2000]
    status, _, body = get(dashboard, "/app.js")
    assert status == 200 and b"mqtt.connect" in body
    assert dashboard.url == f"http://127.0.0.1:{dashboard.port}/?token={TOKEN}"


def test_dashboard_settings_go_only_to_the_holder_of_the_printed_token(dashboard):
    # Any local user can ask; without the token's cookie there is no password.
    for cookie in (None, f"luxnode-lab-{dashboard.port}=wrong", f"luxnode-lab-{dashboard.port + 1}={TOKEN}",
                   "garbage;;=\"", f"luxnode-lab-{dashboard.port}={TOKEN[:-1]}"):
        for path in ("/config.json", "/recent.json"):
            status, headers, body = get(dashboard, path, cookie=cookie)
            assert status == 403 and b"s3cret" not in body and b"42.5" not in body, (cookie, path, body)
            assert "printed" in json.loads(body)["error"]
    status, _, body = get(dashboard, "/?token=wrong")
    assert status == 403 and b"Set-Cookie" not in body
    cookie = log_in(dashboard)
    assert cookie == f"luxnode-lab-{dashboard.port}={TOKEN}"
    status, headers, body = get(dashboard, "/config.json", host=f"localhost:{dashboard.port}", cookie=cookie)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert json.loads(body) == SETTINGS
    _, headers, _ = get(dashboard, f"/?token={TOKEN}")
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    # A page on another origin that rebinds its own name to 127.0.0.1 sends its own Host.
    status, _, body = get(dashboard, "/config.json", host="evil.example:80", cookie=cookie)
    assert status == 403 and b"s3cret" not in body
    status, _, _ = get(dashboard, "/../../registry.json")
    assert status == 404


def test_recent_history_is_served_to_the_owner(dashboard):
    status, _, body = get(dashboard, "/recent.json", cookie=log_in(dashboard))
    assert status == 200
    sim1 = json.loads(body)["nodes"]["sim-1"]
    assert sim1["light"] == [[1000, 42.5]]  # older than the window: kept as the line's left end
    assert sim1["error"] == {"at": 2000, "error": "value must be within 0..100", "payload": "150"}


def test_recent_history_is_bounded_and_a_flood_costs_only_the_flooder():
    history = RecentHistory("luxnode")
    for i in range(recent.MAX_SAMPLES * 3):
        history.add("luxnode/noisy/light", b'{"light": %d}' % (i % 100), at_ms=recent._now_ms())
    history.add("luxnode/calm/light", b'{"light": 7}')
    for i in range(recent.MAX_NODES * 2):
        history.add(f"luxnode/n{i}/state", b'{"value": 1}')
    history.add("luxnode/calm/telemetry", b'{"uptime_s": 5, "pad": "%s"}' % (b"x" * recent.MAX_PAYLOAD))
    for junk in (b"not json", b"[1, 2]", b'{"light": "high"}', b'{"light": true}'):
        history.add("luxnode/calm/light", junk)
    history.add("luxnode/calm/x/light", b'{"light": 9}')
    history.add("other/calm/light", b'{"light": 9}')
    snapshot = history.snapshot()["nodes"]
    assert len(snapshot) == recent.MAX_NODES
    assert len(snapshot["noisy"]["light"]) == recent.MAX_SAMPLES
    assert [v for _, v in snapshot["calm"]["light"]] == [7]  # the bystander's sample is there, and only it
    assert snapshot["calm"]["telemetry"] is None  # an oversize message is not stored


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
    """On an 80-column terminal the lab redraws one status line that fits; Ctrl-C (SIGINT) stops it cleanly."""
    home = tmp_path / "home"
    terminal = OnPty(
        [sys.executable, "-m", "luxnode", "lab", "--no-browser", "--nodes", "3", "--port", str(free_port()),
         "--psk-port", str(free_port()), "--ws-port", str(free_port()), "--http-port", str(free_port()),
         "--ntp-port", str(free_port())],
        env=dict(os.environ, LUXNODE_HOME=str(home), COLUMNS="80", TERM="xterm"),
    )
    try:
        # Every node with its light and LED levels, on one line of at most 80 columns.
        wait_for(lambda: re.search(rb"3/3 online \(light/LED %\): \S+sim-1 \d+/0 \S+sim-2 \d+/0 \S+sim-3 \d+/0",
                                   terminal.screen()), 60, what="the status line")
        redraws = [re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]", b"", part).decode()
                   for part in terminal.seen.split(b"\r") if b" online" in part]
        assert redraws and all(len(line.strip("\n")) <= 80 for line in redraws), redraws
        os.kill(terminal.proc.pid, signal.SIGINT)
        assert terminal.proc.wait(40) == 0
        assert b"luxnode lab: stopped" in terminal.screen() and b"Traceback" not in terminal.seen
        assert processes_under(home) == []
    finally:
        terminal.close()


def node_row(device_id, status="online", light=42.4, led=0.0):
    return SimpleNamespace(device_id=device_id, status=status, light=light, led=led)


@pytest.mark.parametrize("count", [0, 1, 3, 4, 12, 64])
def test_status_line_fits_an_80_column_terminal(count):
    rows = [node_row(f"sim-{i}", led=100.0) for i in range(1, count + 1)]
    line = Text.from_markup(render_line(rows, 80, "20:15:00")).plain
    assert len(line) <= 80, line
    assert line.startswith(f"20:15:00 {count}/{count}" if count > 3 else "20:15:00")
    if count <= 4:  # a lab's usual few nodes: every node with its levels
        assert all(f"sim-{i} " in line for i in range(1, count + 1)) and ("42" in line or count == 0), line
    else:
        assert line.endswith(" more") and "sim-1 42/100" in line, line


def test_status_line_in_words_where_the_terminal_is_wide():
    rows = [node_row("sim-1"), node_row("sim-2", status="offline", light=None, led=None)]
    line = Text.from_markup(render_line(rows, 200, "20:15:00")).plain
    assert line == "20:15:00  1/2 nodes online  ● sim-1 light 42% LED 0%  ○ sim-2 light -% LED -%"


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
        assert lab.wait(30) == 1
        assert "the broker exited with status -9; see" in lab.output()
        assert processes_under(lab.home) == []


def test_a_lab_with_no_simulated_nodes_starts_on_a_fresh_home(tmp_path):
    """The broker reads the auth files at start: they exist even before any node is provisioned."""
    with LabCommand(tmp_path / "home", nodes=0) as lab:
        lab.wait_line("0/0 nodes online", timeout=60)
        assert (lab.home / "passwd").exists() and (lab.home / "acl").exists()
        assert lab.interrupt() == 0, lab.output()


def test_accounts_creates_the_tool_accounts_once_and_keeps_their_secrets_private(tmp_path):
    env = dict(os.environ, LUXNODE_HOME=str(tmp_path / "home"))
    run = lambda *argv: subprocess.run([sys.executable, "-m", "luxnode", *argv], env=env, capture_output=True,
                                       text=True, timeout=60)
    first = run("accounts")
    assert first.returncode == 0 and "created the homeassistant and dashboard accounts" in first.stdout
    saved = json.loads((tmp_path / "home" / "registry.json").read_text())
    assert sorted(saved["accounts"]) == ["dashboard", "homeassistant"]
    for name in ("registry.json", "passwd", "acl"):
        assert (tmp_path / "home" / name).stat().st_mode & 0o777 == 0o600
    users = [line.split(":")[0] for line in (tmp_path / "home" / "passwd").read_text().splitlines()]
    assert sorted(users) == ["dashboard", "homeassistant", "operator"]
    assert "user homeassistant\ntopic read homeassistant/#\n" in (tmp_path / "home" / "acl").read_text()
    again = run("accounts", "dashboard", "--show-secrets")
    assert "created" not in again.stdout  # kept across runs: a Home Assistant set up once keeps working
    assert f"password {saved['accounts']['dashboard']['password']}" in again.stdout


@pytest.mark.parametrize("device_id", ["operator", "homeassistant", "dashboard"])
def test_a_device_cannot_take_a_tools_account_name(device_id):
    with pytest.raises(LuxnodeError, match="name of a tool's account"):
        registry.check_device_id(device_id)


def test_the_tools_accounts_work_the_same_under_mosquitto(tmp_path, mosquitto):
    """The exported files run under mosquitto: Home Assistant reads discovery there too, the dashboard does not."""
    saved = {"broker": {"prefix": "luxnode"}, "operator": {"username": "operator", "password": "op-pw"},
             "devices": {"node-1": {**registry.issue_credentials("node-1"), "tls": "psk"}}}
    accounts.ensure(saved)
    files = authfiles.write(saved, tmp_path)
    broker = mosquitto("".join(f"{key} {path}\n" for key, path in files.items()) + "allow_anonymous false\n")

    def client(account):
        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.username_pw_set(account["username"], account["password"])
        c.received = []
        c.on_message = lambda cl, u, m: cl.received.append(m.topic)
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        return c

    node = client(saved["devices"]["node-1"])
    node.publish("homeassistant/light/node-1/led/config", '{"name": "LED"}', qos=1, retain=True).wait_for_publish(5)
    node.publish("luxnode/node-1/status", "online", qos=1, retain=True).wait_for_publish(5)
    ha, dash = client(saved["accounts"]["homeassistant"]), client(saved["accounts"]["dashboard"])
    try:
        for c in (ha, dash):
            # Retained messages come filter by filter: once status is in, discovery would have come first.
            c.subscribe([("homeassistant/#", 1), ("luxnode/+/status", 1)])
            wait_for(lambda: "luxnode/node-1/status" in c.received, 10, what="the retained status")
        assert "homeassistant/light/node-1/led/config" in ha.received
        assert "homeassistant/light/node-1/led/config" not in dash.received
    finally:
        for c in (node, ha, dash):
            c.disconnect()
            c.loop_stop()
