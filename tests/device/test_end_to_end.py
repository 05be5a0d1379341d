"""From an empty "board" to a node the broker accepts, and a rotated key the broker refuses.

The board is the MicroPython unix port on a pty (deploy and provision go through
mpremote's transport); it then boots as a simulated node (luxnode sim --fs) and
connects over TLS-PSK to real mosquitto, which loaded the auth files provisioning
wrote and reloads them on SIGHUP.
"""

import json
import subprocess
import sys

import paho.mqtt.client as mqtt
import pytest

from tests.device.helpers import run_cli
from tests.support.net import free_port, listener_ports, port_open, wait_for


def mosquitto_pub(port, identity, key_hex, topic, payload="1"):
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--psk", key_hex,
         "--psk-identity", identity, "-t", topic, "-m", payload, "-q", "1"],
        capture_output=True, text=True, timeout=15,
    )


class Operator:
    """paho-mqtt as the operator account on the password listener; records what it receives."""

    def __init__(self, port, password):
        self.messages = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-operator")
        self.client.username_pw_set("operator", password)
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload.decode()))
        self.client.connect("127.0.0.1", port)
        self.client.subscribe("luxnode/#", qos=1)
        self.client.loop_start()

    def saw(self, topic, payload=None):
        return any(t == topic and (payload is None or p == payload) for t, p in self.messages)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def boot_node(root):
    return subprocess.Popen([sys.executable, "-m", "luxnode", "sim", "--fs", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(proc):
    proc.terminate()
    try:
        return proc.communicate(timeout=10)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0]


def auth_conf(home, psk_port):
    return (
        "allow_anonymous false\n"
        f"password_file {home / 'passwd'}\n"
        f"acl_file {home / 'acl'}\n"
        f"psk_file {home / 'psk'}\n"
        f"listener {psk_port} 127.0.0.1\n"
        "psk_hint luxnode\n"
        "use_identity_as_username true\n"
    )


class LabBroker:
    """``luxnode broker -c FILE`` with the same configuration mosquitto gets."""

    def __init__(self, workdir, extra_conf):
        self.port = free_port()
        conf = workdir / "broker.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\n{extra_conf}")
        self.proc = subprocess.Popen([sys.executable, "-m", "luxnode", "broker", "-c", str(conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ports = listener_ports(conf.read_text())
        wait_for(lambda: self.proc.poll() is not None or all(port_open(p) for p in ports), what="luxnode broker")
        assert self.proc.poll() is None, self.proc.stderr.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(params=["mosquitto", "luxnode-broker"])
def start_broker(request, tmp_path, mosquitto):
    """The same auth configuration on real mosquitto and on the lab broker."""
    started = []

    def start(extra_conf):
        if request.param == "mosquitto":
            broker = mosquitto(extra_conf)
        else:
            broker = LabBroker(tmp_path, extra_conf)
        started.append(broker)
        return broker

    yield start
    for broker in started:
        if isinstance(broker, LabBroker):
            broker.stop()


def test_flash_free_path_from_empty_board_to_accepted_node_and_rotated_key(
        tmp_path, pty_board, lab_home, start_broker, capsys):
    psk_port = free_port()
    node_root = tmp_path / "node"

    # deploy the real firmware, then provision, each on a freshly started "board"
    board = pty_board(node_root)
    code, out, err = run_cli(capsys, "deploy", "--port", board.port)
    assert code == 0, err
    board.wait_exit()
    board = pty_board(node_root)
    code, out, err = run_cli(capsys, "provision", "--port", board.port, "--device-id", "node-1",
                             "--wifi-ssid", "lab", "--broker", f"127.0.0.1:{psk_port}")
    assert code == 0, err
    board.wait_exit()
    registry = json.loads((lab_home / "registry.json").read_text())
    old_key = registry["devices"]["node-1"]["psk_key"]

    broker = start_broker(auth_conf(lab_home, psk_port))
    (lab_home / "broker.pid").write_text(f"{broker.proc.pid}\n")
    operator = Operator(broker.port, registry["operator"]["password"])
    try:
        # the provisioned folder boots as a node and the broker accepts it
        node = boot_node(node_root)
        try:
            wait_for(lambda: operator.saw("luxnode/node-1/status", "online"), 30,
                     what="node-1 online through TLS-PSK")
        finally:
            node_output = stop(node)
        assert f"connected to 127.0.0.1:{psk_port}" in node_output, node_output

        # luxnode devices shows the broker's view: the node's retained status
        saved = json.loads((lab_home / "registry.json").read_text())
        saved["broker"]["password_port"] = broker.port
        (lab_home / "registry.json").write_text(json.dumps(saved))
        code, out, err = run_cli(capsys, "devices")
        assert code == 0 and not err, err
        assert out.splitlines()[1].split()[0] == "node-1" and out.splitlines()[1].split()[-2] in ("online", "offline")

        # ACL: a node writes only under its own id
        assert mosquitto_pub(psk_port, "node-1", old_key, "luxnode/node-1/light", "own").returncode == 0
        assert mosquitto_pub(psk_port, "node-1", old_key, "luxnode/node-2/light", "foreign").returncode == 0
        wait_for(lambda: operator.saw("luxnode/node-1/light", "own"), what="the node's own topic")

        # re-provision: the broker is told by SIGHUP; the old key stops working
        board = pty_board(node_root)
        code, out, err = run_cli(capsys, "provision", "--port", board.port, "--device-id", "node-1",
                                 "--wifi-ssid", "lab", "--broker", f"127.0.0.1:{psk_port}")
        assert code == 0, err
        assert f"broker (pid {broker.proc.pid}) reloaded" in out
        new_key = json.loads((lab_home / "registry.json").read_text())["devices"]["node-1"]["psk_key"]
        assert new_key != old_key
        # SIGHUP is asynchronous: wait (bounded) until the broker has reloaded
        wait_for(lambda: mosquitto_pub(psk_port, "node-1", old_key, "luxnode/node-1/light", "x").returncode,
                 what="the broker to refuse the old key")
        assert mosquitto_pub(psk_port, "node-1", old_key, "luxnode/node-1/light", "old").returncode != 0
        assert mosquitto_pub(psk_port, "node-1", new_key, "luxnode/node-1/light", "new").returncode == 0
        wait_for(lambda: operator.saw("luxnode/node-1/light", "new"), what="the new key to work")
        assert not operator.saw("luxnode/node-2/light", "foreign")
        assert not operator.saw("luxnode/node-1/light", "old")
    finally:
        operator.close()
