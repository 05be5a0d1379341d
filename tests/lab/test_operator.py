"""luxnode watch / luxnode set against real mosquitto (password and TLS-PSK listeners)."""

import json
import os
import subprocess
import sys

import paho.mqtt.client as mqtt
import pytest

from luxnode.operator.set_command import command_from_words
from luxnode.operator.table import NodeTable
from luxnode.broker.background import BackgroundBroker
from luxnode.errors import LuxnodeError
from luxnode.mosquitto.conf import BrokerConfig, ListenerConfig
from tests.support.net import free_port

OPERATOR_PASSWORD = "op-secret-1"
OPERATOR_KEY = "00112233445566778899aabbccddeeff"


@pytest.fixture
def broker(mosquitto, tmp_path):
    """mosquitto with a password listener and a PSK listener, as the lab has them."""
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "operator", OPERATOR_PASSWORD], check=True)
    (tmp_path / "psk").write_text(f"operator:{OPERATOR_KEY}\n")
    psk_port = free_port()
    m = mosquitto(
        f"allow_anonymous false\npassword_file {passwd}\npsk_file {tmp_path / 'psk'}\n"
        f"listener {psk_port} 127.0.0.1\npsk_hint lab\nuse_identity_as_username true\n"
    )
    m.psk_port = psk_port
    return m


def publish_retained(port, messages):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set("operator", OPERATOR_PASSWORD)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def luxnode(*argv, home, timeout=30):
    env = dict(os.environ, LUXNODE_HOME=str(home), COLUMNS="120")
    return subprocess.run([sys.executable, "-m", "luxnode", *argv], env=env, capture_output=True,
                          text=True, timeout=timeout)


NODES = [
    ("luxnode/node-1/status", "online"),
    ("luxnode/node-1/state", json.dumps({"control": "AUTO", "value": 33, "unit": "%", "duty": 0.33, "target": 60})),
    ("luxnode/node-1/light", json.dumps({"light": 41.5, "unit": "%", "raw": 1700})),
    ("luxnode/node-10/status", "offline"),
    ("luxnode/node-2/status", "online"),
    ("luxnode/node-2/state", json.dumps({"control": "PWM", "value": 75, "unit": "%", "duty": 0.75})),
]


def test_watch_once_shows_every_retained_node_in_order(broker, tmp_path):
    publish_retained(broker.port, NODES)
    result = luxnode("watch", "--once", "--port", str(broker.port), "--username", "operator",
                     "--password", OPERATOR_PASSWORD, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "node-" in line]
    assert [line.split()[1] for line in lines] == ["node-1", "node-2", "node-10"]
    assert "41.5" in lines[0] and "33" in lines[0] and "AUTO 60%" in lines[0] and "online" in lines[0]
    assert "75" in lines[1] and "PWM" in lines[1]
    assert "offline" in lines[2]


def test_watch_one_node_over_tls_psk(broker, tmp_path):
    publish_retained(broker.port, NODES)
    result = luxnode("watch", "node-2", "--once", "--port", str(broker.psk_port), "--psk-identity", "operator",
                     "--psk-key", OPERATOR_KEY, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "node-2" in result.stdout and "node-1 " not in result.stdout


def test_watch_takes_broker_and_operator_from_the_registry(broker, tmp_path):
    publish_retained(broker.port, NODES)
    home = tmp_path / "home"
    home.mkdir()
    (home / "registry.json").write_text(json.dumps({
        "broker": {"host": "127.0.0.1", "password_port": broker.port, "psk_port": broker.psk_port,
                   "ws_port": 9001, "prefix": "luxnode"},
        "operator": {"username": "operator", "password": OPERATOR_PASSWORD},
        "devices": {},
    }))
    result = luxnode("watch", "--once", home=home)
    assert result.returncode == 0, result.stderr
    assert "node-10" in result.stdout


def test_wrong_password_is_one_line_not_a_traceback(broker, tmp_path):
    result = luxnode("watch", "--once", "--port", str(broker.port), "--username", "operator",
                     "--password", "wrong", home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "refused the connection" in result.stderr and "Traceback" not in result.stderr
    assert "wrong" not in result.stderr  # the secret is not echoed


def test_no_broker_says_what_to_do(tmp_path):
    result = luxnode("watch", "--once", "--port", str(free_port()), home=tmp_path / "home")
    assert result.returncode == 2
    assert "cannot reach the broker" in result.stderr and "luxnode lab" in result.stderr


def subscribe_set_topic(port):
    received = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set("operator", OPERATOR_PASSWORD)
    client.on_message = lambda c, u, m: received.append((m.topic, m.payload, m.qos))
    client.connect("127.0.0.1", port)
    client.subscribe("luxnode/+/set", qos=1)
    client.loop_start()
    return client, received


def test_set_sends_the_spec_command_with_qos1_to_an_offline_node(broker, tmp_path):
    publish_retained(broker.port, NODES)
    listener, received = subscribe_set_topic(broker.port)
    try:
        result = luxnode("set", "node-10", "auto", "60", "--port", str(broker.port), "--username", "operator",
                         "--password", OPERATOR_PASSWORD, home=tmp_path / "home")
        assert result.returncode == 0, result.stderr
        assert "offline" in result.stdout
        from tests.support.net import wait_for
        wait_for(lambda: received, 5, what="the command")
        topic, payload, qos = received[0]
        assert topic == "luxnode/node-10/set" and qos == 1
        assert json.loads(payload) == {"control": "AUTO", "value": 60, "unit": "%"}
    finally:
        listener.loop_stop()


def test_set_fails_clearly_when_an_online_node_does_not_answer(broker, tmp_path):
    publish_retained(broker.port, NODES)
    result = luxnode("set", "node-2", "40", "--timeout", "0.5", "--port", str(broker.port), "--username",
                     "operator", "--password", OPERATOR_PASSWORD, home=tmp_path / "home")
    assert result.returncode == 2
    assert "did not report the new state within 0.5 s" in result.stderr


@pytest.mark.parametrize("words, command", [
    (["50"], {"control": "PWM", "value": 50, "unit": "%"}),
    (["12.5%"], {"control": "PWM", "value": 12.5, "unit": "%"}),
    (["auto", "60"], {"control": "AUTO", "value": 60, "unit": "%"}),
    (["AUTO", "0"], {"control": "AUTO", "value": 0, "unit": "%"}),
    (["on"], {"control": "ON"}),
    (["Off"], {"control": "OFF"}),
])
def test_command_words(words, command):
    assert command_from_words(words) == command


@pytest.mark.parametrize("words, message", [
    (["101"], "outside 0..100"),
    (["bright"], "not a number"),
    (["auto"], "not a number"),
    (["auto", "x"], "not a number"),
    (["50", "60"], "cannot read"),
])
def test_bad_command_words_name_the_problem(words, message):
    with pytest.raises(LuxnodeError, match=message):
        command_from_words(words)


def test_fade_goes_with_a_level():
    assert command_from_words(["30"], fade_ms=800) == {"control": "PWM", "value": 30, "unit": "%", "fade_ms": 800}


def test_table_keeps_going_after_bad_payloads():
    table = NodeTable("luxnode")
    table.update("luxnode/n1/state", b"{not json")
    table.update("luxnode/n1/light", b"[1, 2]")
    assert "unexpected light payload" in table.nodes["n1"].error
    table.update("luxnode/n1/light", b'{"light": 12.5, "unit": "%"}')
    table.update("luxnode/n1/error", b'{"error": "unknown control", "payload": "{\\"control\\":\\"X\\"}"}')
    table.update("luxnode/n1/sim/ambient", b"50")        # not a node leaf
    table.update("other/n2/status", b"online")          # another prefix
    table.update("luxnode/n3/status", b"")              # a cleared retained topic
    node = table.nodes["n1"]
    assert node.light == 12.5
    assert node.error.startswith("unknown control")
    assert list(table.nodes) == ["n1"]


def test_watch_redraws_live_on_a_terminal_and_ends_on_ctrl_c(broker, tmp_path):
    import signal

    from tests.lab.labrun import OnPty
    from tests.support.net import wait_for

    publish_retained(broker.port, NODES)
    terminal = OnPty([sys.executable, "-m", "luxnode", "watch", "--port", str(broker.port), "--username",
                      "operator", "--password", OPERATOR_PASSWORD],
                     env=dict(os.environ, LUXNODE_HOME=str(tmp_path / "home"), COLUMNS="120", TERM="xterm"))
    try:
        wait_for(lambda: b"AUTO 60%" in terminal.screen(), 15, what="the first table")
        publish_retained(broker.port, [("luxnode/node-3/status", "online"),
                                       ("luxnode/node-3/light", json.dumps({"light": 87.5, "unit": "%"}))])
        wait_for(lambda: b"87.5" in terminal.screen(), 15, what="the new node in the redrawn table")
        os.kill(terminal.proc.pid, signal.SIGINT)
        assert terminal.proc.wait(10) == 130
        assert b"Traceback" not in terminal.screen()
    finally:
        terminal.close()


def self_signed(folder):
    """A self-signed certificate for 127.0.0.1 that is also its own CA."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "luxnode lab test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    (folder / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return folder / "server.pem", folder / "server.key"


def test_watch_over_tls_with_a_certificate_and_no_plain_fallback(mosquitto, tmp_path):
    cert, key = self_signed(tmp_path)
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "operator", OPERATOR_PASSWORD], check=True)
    tls_port = free_port()
    broker = mosquitto(f"allow_anonymous false\npassword_file {passwd}\n"
                       f"listener {tls_port} 127.0.0.1\ncafile {cert}\ncertfile {cert}\nkeyfile {key}\n")
    publish_retained(broker.port, NODES)
    common = ["--port", str(tls_port), "--username", "operator", "--password", OPERATOR_PASSWORD]
    result = luxnode("watch", "node-2", "--once", "--cafile", str(cert), *common, home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    assert "node-2" in result.stdout
    # A certificate the CA file does not vouch for is refused, not downgraded.
    (tmp_path / "other").mkdir()
    other, _ = self_signed(tmp_path / "other")
    result = luxnode("watch", "--once", "--cafile", str(other), *common, home=tmp_path / "home")
    assert result.returncode == 2 and "CERTIFICATE_VERIFY_FAILED" in result.stderr, result.stderr


@pytest.mark.parametrize("content, reason", [(None, "No such file"), ("not a certificate\n", "no certificate")])
def test_an_unusable_cafile_is_one_line(tmp_path, content, reason):
    cafile = tmp_path / "ca.pem"
    if content is not None:
        cafile.write_text(content)
    result = luxnode("watch", "--once", "--cafile", str(cafile), "--port", str(free_port()), home=tmp_path / "home")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert f"cannot use --cafile {cafile}" in result.stderr and reason in result.stderr


def test_set_to_a_node_the_broker_never_saw_sends_nothing_and_says_so(broker, tmp_path):
    publish_retained(broker.port, NODES)
    listener, received = subscribe_set_topic(broker.port)
    try:
        result = luxnode("set", "nosuchnode", "50", "--port", str(broker.port), "--username", "operator",
                         "--password", OPERATOR_PASSWORD, home=tmp_path / "home")
        assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
        assert "nosuchnode has never connected" in result.stderr and "nothing sent" in result.stderr
        # A marker published after the refusal arrives alone: the refused command was never sent.
        publish_retained(broker.port, [("luxnode/marker/set", "{}")])
        from tests.support.net import wait_for
        wait_for(lambda: received, 5, what="the marker")
        assert [topic for topic, _, _ in received] == ["luxnode/marker/set"]
    finally:
        listener.loop_stop()


@pytest.mark.parametrize("identity, key", [("operator", "ff" + OPERATOR_KEY[2:]), ("stranger", OPERATOR_KEY)])
def test_a_refused_psk_says_so_not_that_the_broker_is_down(broker, tmp_path, identity, key):
    result = luxnode("watch", "--once", "--port", str(broker.psk_port), "--psk-identity", identity,
                     "--psk-key", key, home=tmp_path / "home")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "refused the TLS-PSK handshake" in result.stderr and repr(identity) in result.stderr
    assert "is it running" not in result.stderr


def test_a_refused_subscription_is_an_error_not_an_empty_table(tmp_path):
    # An account no ACL line lets read the nodes' topics: the lab broker refuses its SUBSCRIBE
    # (0x80; mosquitto 2.0.11 grants it and delivers nothing), and watching would show nothing.
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "reader", "reader-secret"], check=True)
    (tmp_path / "acl").write_text("user reader\ntopic read other/#\n")
    listener = ListenerConfig(0, "127.0.0.1", password_file=passwd, acl_file=tmp_path / "acl")
    broker = BackgroundBroker(BrokerConfig(listeners=[listener], sys_interval=0)).start()
    try:
        result = luxnode("watch", "--once", "--port", str(broker.ports[0]), "--username", "reader",
                         "--password", "reader-secret", home=tmp_path / "home")
    finally:
        broker.stop()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the broker refused the subscription to luxnode/+/" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
