"""SIGHUP revokes: `luxnode broker` re-checks connected clients against the reloaded files.

Re-provisioning a node rotates its key and reloads the broker; a node still connected
with the old key (or a removed user, a changed password) must be disconnected then, with
its will published as on any abnormal disconnect. Everyone else stays connected.
"""

import os
import secrets
import signal

import pytest

from luxnode.mosquitto import passwd, pskfile
from tests.broker.conftest import Client
from tests.support.net import free_port, wait_for

from .cclients import Sub, require_clients

ACL = """\
user operator
topic read luxnode/#
topic write luxnode/+/set
pattern write luxnode/%u/#
pattern read luxnode/%u/set
"""


@pytest.fixture
def lab(luxnode_broker, tmp_path):
    """A password listener and a TLS-PSK listener (identity = username) sharing the lab's files."""
    require_clients()
    folder = tmp_path / "auth"
    folder.mkdir()
    passwords = {"operator": "op-pw", "node-1": "n1-pw", "node-2": "n2-pw"}
    keys = {identity: secrets.token_bytes(32) for identity in ("node-3", "node-4", "node-5")}
    passwd.write_file(folder / "passwd", {user: passwd.hash_password(pw) for user, pw in passwords.items()})
    pskfile.write_file(folder / "psk", keys)
    (folder / "acl").write_text(ACL)
    psk_port = free_port()
    broker = luxnode_broker(f"password_file {folder}/passwd\nacl_file {folder}/acl\npsk_file {folder}/psk\n"
                            f"listener {psk_port} 127.0.0.1\npsk_hint lab\nuse_identity_as_username true\n")
    broker.psk_port, broker.folder, broker.keys = psk_port, folder, keys
    return broker


@pytest.fixture
def paho_clients():
    made = []

    def make(port, client_id, password, will=None) -> Client:
        client = Client(port, client_id=client_id, username=client_id, password=password, will=will)
        made.append(client)
        return client.connect()

    yield make
    for client in made:
        client.paho.disconnect()
        client.paho.loop_stop()


@pytest.fixture
def psk_subs():
    started = []

    def start(port, identity, key: bytes) -> Sub:
        sub = Sub(port, f"luxnode/{identity}/set", "--psk", key.hex(), "--psk-identity", identity, "-i", identity,
                  "-q", "1", "--will-topic", f"luxnode/{identity}/status", "--will-payload", "offline")
        started.append(sub)
        assert "Subscribed (mid: 1): 1" in sub.wait_subscribed()
        return sub

    yield start
    for sub in started:
        sub.stop()


def test_reload_disconnects_revoked_clients_and_keeps_the_others(lab, paho_clients, psk_subs):
    operator = paho_clients(lab.port, "operator", "op-pw")
    assert operator.subscribe("luxnode/#", 1) == [1]
    changed_password = paho_clients(lab.port, "node-1", "n1-pw", will=("luxnode/node-1/status", b"offline", 1))
    removed_user = paho_clients(lab.port, "node-2", "n2-pw")
    rotated = psk_subs(lab.psk_port, "node-3", lab.keys["node-3"])
    kept = psk_subs(lab.psk_port, "node-4", lab.keys["node-4"])
    revoked = psk_subs(lab.psk_port, "node-5", lab.keys["node-5"])

    entries = passwd.read_file(lab.folder / "passwd")
    entries["node-1"] = passwd.hash_password("new-pw")
    del entries["node-2"]
    passwd.write_file(lab.folder / "passwd", entries)
    keys = dict(lab.keys, **{"node-3": secrets.token_bytes(32)})
    del keys["node-5"]
    pskfile.write_file(lab.folder / "psk", keys)
    os.kill(lab.proc.pid, signal.SIGHUP)

    for client_id in ("node-1", "node-2", "node-3", "node-5"):
        wait_for(lambda: f"Client {client_id} disconnected, not authorised" in lab.log_text(), 10,
                 what=f"{client_id} disconnected by the reload:\n{lab.log_text()}")
    assert changed_password.disconnected.wait(5) and removed_user.disconnected.wait(5)
    # Wills go out as on any abnormal disconnect.
    wait_for(lambda: {(m.topic, m.payload) for m in operator.messages} >= {
        ("luxnode/node-1/status", b"offline"), ("luxnode/node-3/status", b"offline")}, 10,
        what="the wills of the revoked clients")

    # The others are still connected and served; the revoked PSK clients cannot come back.
    assert not operator.disconnected.is_set()
    operator.publish("luxnode/node-3/set", b"for the old key", qos=1)
    operator.publish("luxnode/node-5/set", b"for the revoked", qos=1)
    operator.publish("luxnode/node-4/set", b"still here", qos=1)
    kept.wait_message("luxnode/node-4/set still here")
    assert kept.proc.poll() is None
    for sub in (rotated, revoked):
        assert not [line for line in sub.messages() if line.startswith("luxnode/")], sub.output
    assert "Client node-4 disconnected" not in lab.log_text()
    assert "Client operator disconnected" not in lab.log_text()


@pytest.mark.parametrize("kind", ["luxnode", "mosquitto"])
def test_a_changed_password_disconnects_in_both_brokers(kind, luxnode_broker, mosquitto, tmp_path, paho_clients):
    """Parity: mosquitto 2 disconnects a client whose password a reload changed, and so does luxnode.
    (mosquitto 2.0.11 does not publish that client's will, nor drop a client whose PSK key was
    rotated; luxnode does both.)"""
    passwd.write_file(tmp_path / "passwd", {"stays": passwd.hash_password("pw-1"),
                                            "changed": passwd.hash_password("pw-2")})
    broker = (luxnode_broker if kind == "luxnode" else mosquitto)(f"password_file {tmp_path}/passwd\n")
    stays = paho_clients(broker.port, "stays", "pw-1")
    changed = paho_clients(broker.port, "changed", "pw-2")
    entries = passwd.read_file(tmp_path / "passwd")
    entries["changed"] = passwd.hash_password("new")
    passwd.write_file(tmp_path / "passwd", entries)
    os.kill(broker.proc.pid, signal.SIGHUP)
    assert changed.disconnected.wait(10), broker.log_text()
    assert stays.subscribe("t", 1) == [1]
    stays.publish("t", b"still here", qos=1)
    assert stays.received(1)[0].payload == b"still here"
    assert not stays.disconnected.is_set()
