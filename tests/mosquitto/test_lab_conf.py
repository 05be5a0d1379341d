"""The limits `luxnode lab` writes into broker.conf: sized for nodes, read by both brokers."""

import pytest

from luxnode.device import registry
from luxnode.lab import brokerconf
from luxnode.lab.brokerconf import LabPorts
from luxnode.mosquitto import conf
from luxnode.mosquitto.conf import ListenerConfig
from tests.broker.conftest import RawClient, start_broker  # noqa: F401 (a fixture)


def test_lab_conf_bounds_messages_and_ties_node_client_ids_to_their_identity(tmp_path):
    loaded = conf.load(brokerconf.write(tmp_path, LabPorts(psk=18883, password=11883, ws=19001)))
    assert loaded.warnings == []
    assert (loaded.message_size_limit, loaded.max_packet_size) == (16384, 20480)
    # Commands are at most 256 bytes and nodes read into 512 bytes: room to spare, no room for floods.
    assert 512 * 8 <= loaded.message_size_limit < loaded.max_packet_size <= 65536
    psk, password, ws = loaded.listeners
    assert psk.use_username_as_clientid and psk.use_identity_as_username
    # Operator tools share one username: on their listeners client ids stay their own.
    assert not password.use_username_as_clientid and not ws.use_username_as_clientid
    assert ws.address == "127.0.0.1"


def test_use_username_as_clientid_is_enforced(start_broker):
    """A node connecting under another client id gets its username as client id."""
    broker = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True,
                                                    use_username_as_clientid=True)])
    client = RawClient(broker.ports[0]).connect("someone-else", username="node-1")
    try:  # held open: a client dropped at once closed its socket, and its clean session could go first
        assert broker.call(lambda: list(broker.broker.sessions)) == ["node-1"]
    finally:
        client.close()


def test_a_simulated_nodes_ambient_bridge_does_not_take_over_its_node(tmp_path):
    """Under real mosquitto with the lab's config (use_username_as_clientid on the node listener):
    the bridge finds the lab in the registry and logs in as its operator, not with the node's key."""
    import subprocess
    import threading

    import paho.mqtt.client as paho

    from luxnode.psk import client_context
    from luxnode.sim.bridge import AmbientBridge
    from tests.support.net import free_port, port_open, wait_for

    key = "00112233445566778899aabbccddeeff"
    ports = LabPorts(psk=free_port(), password=free_port(), ws=free_port())
    path = brokerconf.write(tmp_path, ports)
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(tmp_path / "passwd"), "operator", "pw"], check=True)
    lab = registry.load()
    lab["broker"].update(host="127.0.0.1", psk_port=ports.psk, password_port=ports.password)
    lab["operator"] = {"username": "operator", "password": "pw"}
    registry.save(lab)
    (tmp_path / "psk").write_text(f"sim-1:{key}\n")
    (tmp_path / "acl").write_text("pattern read luxnode/%u/sim/#\npattern write luxnode/%u/#\n")
    path.write_text("user root\n" + path.read_text())  # pytest's folders are 0700
    log = tmp_path / "mosquitto.log"
    with open(log, "wb") as out:
        broker = subprocess.Popen(["mosquitto", "-v", "-c", str(path)], stdout=out, stderr=subprocess.STDOUT)
    node = bridge = None
    try:
        wait_for(lambda: broker.poll() is not None or port_open(ports.psk), 10, what="mosquitto")
        dropped = threading.Event()
        node = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="luxnode-sim-1", reconnect_on_failure=False)
        node.tls_set_context(client_context("sim-1", bytes.fromhex(key)))
        node.on_disconnect = lambda *args: dropped.set()
        node.connect("127.0.0.1", ports.psk)
        node.loop_start()
        wait_for(node.is_connected, 10, what="the node")
        mqtt = {"host": "127.0.0.1", "port": ports.psk, "client_id": "luxnode-sim-1", "prefix": "luxnode",
                "tls": {"mode": "psk", "identity": "sim-1", "key": key}}
        bridge = AmbientBridge({"device_id": "sim-1", "mqtt": mqtt}, lambda value: None, lambda *a: None)
        bridge.start()
        wait_for(lambda: "Sending SUBACK" in log.read_text(), 10, what="the bridge's subscription")
        assert "u'operator'" in log.read_text()  # the bridge's login, as mosquitto -v logs it
        assert not dropped.is_set(), log.read_text()
    finally:
        if bridge:
            bridge.stop()
        if node:
            node.disconnect()
            node.loop_stop()
        broker.terminate()
        broker.wait(10)
