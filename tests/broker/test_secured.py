"""The broker with the lab's mosquitto files: passwords, ACL, TLS-PSK, SIGHUP reload."""

import shutil
import subprocess

import pytest

from luxnode.broker.background import BackgroundBroker
from luxnode.broker.log import Log
from luxnode.mosquitto import conf, passwd, pskfile
from tests.support.net import free_port, wait_for

from .conftest import LogLines, RawClient

ACL = """user operator
topic read luxnode/#
topic write luxnode/+/set
topic read $SYS/#
pattern write luxnode/%u/#
pattern read luxnode/%u/set
"""
PSK_KEY = bytes.fromhex("00112233445566778899aabbccddeeff")


@pytest.fixture
def lab(tmp_path):
    passwd.write_file(tmp_path / "passwd", {"operator": passwd.hash_password("op-secret"),
                                            "node-1": passwd.hash_password("n1-secret")})
    pskfile.write_file(tmp_path / "psk", {"node-1": PSK_KEY})
    (tmp_path / "acl").write_text(ACL)
    password_port, psk_port = free_port(), free_port()
    (tmp_path / "broker.conf").write_text(
        f"password_file {tmp_path}/passwd\nacl_file {tmp_path}/acl\npsk_file {tmp_path}/psk\n"
        f"listener {password_port} 127.0.0.1\n"
        f"listener {psk_port} 127.0.0.1\npsk_hint luxnode\nuse_identity_as_username true\n")
    lines = LogLines()
    broker = BackgroundBroker(conf.load(tmp_path / "broker.conf"), log=Log({"all"}, lines))
    broker.log = lines
    broker.folder = tmp_path
    with broker:
        yield broker


def test_passwords_and_acl(lab, clients):
    port = lab.ports[0]
    clients(port, username="operator", password="wrong").connect(expect_code=5)
    clients(port).connect(expect_code=5)  # anonymous is off once listeners are configured
    operator = clients(port, username="operator", password="op-secret").connect()
    assert operator.subscribe([("luxnode/#", 1), ("other/#", 1)]) == [1, 0x80]
    node = clients(port, client_id="node-1", username="node-1", password="n1-secret").connect()
    assert node.subscribe([("luxnode/node-1/set", 1), ("luxnode/node-2/set", 1)]) == [1, 0x80]
    node.publish("luxnode/node-2/light", b"forged", qos=1)  # acked, not delivered
    node.publish("luxnode/node-1/light", b"42", qos=1)
    assert [m.payload for m in operator.received(1)] == [b"42"]
    operator.publish("luxnode/node-1/set", b"ON", qos=1)
    assert node.received(1)[0].payload == b"ON"
    assert [m.payload for m in operator.received(2)] == [b"42", b"ON"]


def test_psk_listener_with_mosquitto_clients(lab, clients):
    password_port, psk_port = lab.ports
    operator = clients(password_port, username="operator", password="op-secret").connect()
    operator.subscribe("luxnode/#", 1)
    mosquitto_pub = shutil.which("mosquitto_pub")
    assert mosquitto_pub, "apt-get install mosquitto-clients"
    subprocess.run([mosquitto_pub, "-h", "127.0.0.1", "-p", str(psk_port), "--psk", PSK_KEY.hex(),
                    "--psk-identity", "node-1", "-i", "node-1", "-t", "luxnode/node-1/light", "-m", "via psk",
                    "-q", "1"], check=True, timeout=10)
    assert operator.received(1)[0].payload == b"via psk"
    lab.log.wait("as node-1 (p4, c1, k60, u'node-1')")
    refused = subprocess.run([mosquitto_pub, "-h", "127.0.0.1", "-p", str(psk_port), "--psk", "ffff",
                              "--psk-identity", "node-1", "-t", "luxnode/node-1/light", "-m", "x"],
                             capture_output=True, timeout=10)
    assert refused.returncode != 0
    lab.log.wait("disconnected: TLS handshake failed: ")
    plain = RawClient(psk_port).send(b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00")
    assert plain.closed_by_broker()  # plain text on a TLS port: never answered in clear
    wait_for(lambda: lab.log.text.count("TLS handshake failed") >= 2, what="the plain-text client logged")
    plain.close()


def test_reload_reads_new_passwords(lab, clients):
    port = lab.ports[0]
    clients(port, username="node-2", password="n2").connect(expect_code=5)
    entries = passwd.read_file(lab.folder / "passwd")
    entries["node-2"] = passwd.hash_password("n2")
    passwd.write_file(lab.folder / "passwd", entries)
    lab.call(lab.server.reload)
    lab.log.wait("Reloading authentication files.")
    clients(port, username="node-2", password="n2").connect()


def test_reload_with_a_broken_file_keeps_the_old_ones(lab, clients):
    (lab.folder / "passwd").write_text("operator\n")
    lab.call(lab.server.reload)
    lab.log.wait("Reload failed, keeping the previous auth files: ")
    clients(lab.ports[0], username="operator", password="op-secret").connect()
