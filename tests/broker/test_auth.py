"""Passwords, anonymous access and ACLs through the broker, side by side with real mosquitto."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from luxnode.broker.auth import Auth
from luxnode.mosquitto import conf
from luxnode.mosquitto.conf import ListenerConfig
from luxnode.mosquitto.errors import PasswdError
from tests.support.net import free_port, port_open, wait_for

LAB_ACL = """\
user operator
topic read luxnode/#
topic write luxnode/+/set
topic read $SYS/#

pattern write luxnode/%u/#
pattern read luxnode/%u/set
"""


def _string(text: str) -> bytes:
    data = text.encode()
    return len(data).to_bytes(2, "big") + data


def connack(port, client_id="c1", username=None, password=None) -> int:
    """The MQTT 3.1.1 CONNACK return code for one CONNECT (a raw socket: no client library between)."""
    flags = 0x02 | (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    body = b"\x00\x04MQTT\x04" + bytes([flags]) + b"\x00\x3c" + _string(client_id)
    body += (_string(username) if username is not None else b"") + (_string(password) if password is not None else b"")
    assert len(body) < 128
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(bytes([0x10, len(body)]) + body)
        reply = b""
        while len(reply) < 4:
            chunk = sock.recv(4 - len(reply))
            assert chunk, f"connection closed without CONNACK after {reply!r}"
            reply += chunk
    assert reply[:2] == b"\x20\x02", reply
    return reply[3]


@pytest.fixture
def files(tmp_path):
    path = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", path, "operator", "op-pw"], check=True)
    subprocess.run(["mosquitto_passwd", "-H", "sha512", "-b", path, "node-1", "node-pw"], check=True)
    (tmp_path / "acl").write_text(LAB_ACL)
    return tmp_path


CONNECT_CASES = [
    # (client id, username, password)
    ("op", "operator", "op-pw"),
    ("n1", "node-1", "node-pw"),        # a $6$ line from mosquitto_passwd -H sha512
    ("n1", "node-1", "wrong"),
    ("x", "stranger", "node-pw"),
    ("x", "node-1", None),
    ("anon", None, None),
    ("op", "operator", "op-pw\x00junk"),   # mosquitto compares up to the first NUL
    ("op", "operator", "op-p\x00w"),
]


@pytest.mark.parametrize("anonymous", [False, True])
def test_connect_codes_match_mosquitto(files, start_broker, mosquitto, anonymous):
    lines = f"password_file {files / 'passwd'}\nallow_anonymous {str(anonymous).lower()}\n"
    reference = mosquitto(lines)
    ours = start_broker(listeners=conf.parse(f"listener {free_port()} 127.0.0.1\n{lines}").listeners)
    expected = [connack(reference.port, *case) for case in CONNECT_CASES]
    assert expected == [0, 0, 5, 5, 5, 0 if anonymous else 5, 0, 5]
    assert [connack(ours.ports[0], *case) for case in CONNECT_CASES] == expected


@pytest.mark.parametrize("anonymous", [False, True])
def test_without_password_file_only_allow_anonymous_lets_clients_in(start_broker, mosquitto, anonymous):
    """mosquitto 2: with no password_file a username proves nothing; allow_anonymous decides."""
    reference = mosquitto(f"allow_anonymous {str(anonymous).lower()}\n")
    ours = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=anonymous)])
    expected = 0 if anonymous else 5
    for port in (reference.port, ours.ports[0]):
        assert connack(port, "a", "anyone", "x") == expected
        assert connack(port, "b") == expected


def test_clientid_prefixes(start_broker):
    port = start_broker(clientid_prefixes="luxnode-").ports[0]
    assert connack(port, "luxnode-node-1") == 0
    assert connack(port, "mqtt-explorer") == 5


def test_acl_on_publish_subscribe_and_delivery(files, start_broker, clients):
    listener = ListenerConfig(0, "127.0.0.1", password_file=files / "passwd", acl_file=files / "acl")
    port = start_broker(listeners=[listener]).ports[0]
    operator = clients(port, client_id="op", username="operator", password="op-pw").connect()
    node = clients(port, client_id="n1", username="node-1", password="node-pw").connect()
    assert operator.subscribe("luxnode/#", 1) == [1]
    assert operator.subscribe("$SYS/broker/#", 0) == [0]
    assert operator.subscribe("other/#", 0) == [0x80]        # nothing there can ever be read
    assert node.subscribe("luxnode/node-1/set", 1) == [1]
    assert node.subscribe("luxnode/node-2/set", 1) == [0x80]
    assert node.subscribe("luxnode/+/set", 1) == [1]        # granted; delivery filters per message

    node.publish("luxnode/node-2/light", b"spoofed", qos=1)  # write denied: acknowledged and dropped
    node.publish("luxnode/node-1/light", b"55", qos=1)
    operator.publish("luxnode/node-2/set", b"for node-2", qos=1)
    operator.publish("luxnode/node-1/set", b"for node-1", qos=1)
    operator.publish("luxnode/node-1/light", b"operator may not write here", qos=1)
    node.publish("luxnode/node-1/done", b"", qos=1)          # everything before it has been routed

    assert [(m.topic, m.payload) for m in operator.received(4)] == [
        ("luxnode/node-1/light", b"55"), ("luxnode/node-2/set", b"for node-2"),
        ("luxnode/node-1/set", b"for node-1"), ("luxnode/node-1/done", b"")]
    assert [(m.topic, m.payload) for m in node.received(1)] == [("luxnode/node-1/set", b"for node-1")]


def test_malformed_password_file_stops_startup_naming_the_line(files, start_broker):
    with (files / "passwd").open("a") as f:
        f.write("broken-line-without-colon\n")
    listener = ListenerConfig(0, "127.0.0.1", password_file=files / "passwd")
    with pytest.raises(PasswdError, match=rf"^{files / 'passwd'}:3: expected 'username:hash'"):
        start_broker(listeners=[listener])


def test_reload_reads_new_users_and_keeps_the_old_files_when_broken(files, start_broker):
    listener = ListenerConfig(0, "127.0.0.1", password_file=files / "passwd", acl_file=files / "acl")
    broker = start_broker(listeners=[listener])
    port = broker.ports[0]
    assert connack(port, "n2", "node-2", "pw2") == 5
    subprocess.run(["mosquitto_passwd", "-b", files / "passwd", "node-2", "pw2"], check=True)
    broker.call(broker.server.reload)
    assert connack(port, "n2", "node-2", "pw2") == 0
    (files / "acl").write_text(LAB_ACL + "topic sideways x\n")
    broker.call(broker.server.reload)
    [auth] = broker.server.auths
    assert auth.last_reload_error == f"{files / 'acl'}:8: invalid access 'sideways' (expected read, write, readwrite or deny)"
    assert connack(port, "n2", "node-2", "pw2") == 0           # the previous files stay in force


def test_authenticate_return_codes(files):
    (files / "psk").write_text("node-1:" + "11" * 16 + "\n")
    plain = Auth(ListenerConfig(1883, password_file=files / "passwd", allow_anonymous=True))
    assert plain.authenticate("c", "operator", b"op-pw") == (0, "operator")
    assert plain.authenticate("c", "operator", b"nope") == (5, None)
    assert plain.authenticate("c", None, None) == (0, None)
    psk = Auth(ListenerConfig(8883, psk_hint="lab", psk_file=files / "psk", use_identity_as_username=True))
    assert psk.authenticate("c", "ignored", b"ignored", psk_identity="node-1") == (0, "node-1")
    assert psk.authenticate("c", "node-1", b"x") == (4, None)
    assert psk.psk_key("node-1") == b"\x11" * 16 and psk.psk_key("node-2") is None
    # the key the handshake used must still be the identity's (a reload may rotate or revoke it)
    assert psk.authenticate("c", None, None, psk_identity="node-1", psk_key=b"\x11" * 16) == (0, "node-1")
    assert psk.authenticate("c", None, None, psk_identity="node-1", psk_key=b"\x22" * 16) == (5, None)
    assert psk.authenticate("c", None, None, psk_identity="node-2", psk_key=b"\x11" * 16) == (5, None)
    with pytest.raises(ValueError):
        plain.allowed("operator", "c", "t", "delete")


def test_luxnode_broker_reports_config_errors_with_file_and_line(tmp_path):
    config = tmp_path / "broker.conf"
    config.write_text("listener 18830\nmax_keepalive 3\n")
    result = subprocess.run([sys.executable, "-m", "luxnode", "broker", "-c", config],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr == (f"luxnode broker: error: {config}:2: invalid max_keepalive value 3 "
                             "(allowed: 10..65535)\n")


def test_luxnode_broker_with_a_mosquitto_config_and_sighup(files):
    """`luxnode broker -c FILE`: warnings name the line, password_file works, SIGHUP reloads it."""
    port = free_port()
    config = files / "broker.conf"
    config.write_text(f"listener {port} 127.0.0.1\npassword_file passwd\nlog_dest stdout\n"
                      f"pid_file {files / 'broker.pid'}\n")
    broker = subprocess.Popen([sys.executable, "-m", "luxnode", "broker", "-c", config],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: broker.poll() is not None or port_open(port), 20, what="luxnode broker to listen")
        assert broker.poll() is None
        assert connack(port, "op", "operator", "op-pw") == 0
        assert connack(port, "n3", "node-3", "pw3") == 5
        subprocess.run(["mosquitto_passwd", "-b", files / "passwd", "node-3", "pw3"], check=True)
        os.kill(int((files / "broker.pid").read_text()), signal.SIGHUP)
        wait_for(lambda: connack(port, "n3", "node-3", "pw3") == 0, 10, what="the reloaded password file")
    finally:
        broker.send_signal(signal.SIGTERM)
        _, stderr = broker.communicate(timeout=20)
    assert f"{config}:3: mosquitto directive 'log_dest' is not supported" in stderr


PARITY_ACL = """\
topic read public/#
topic deny public/secret

user operator
topic read luxnode/#
topic write luxnode/+/set
topic readwrite $SYS/test/#
topic write public/#

pattern write luxnode/%u/#
pattern read luxnode/%u/set
"""
PUBLISHED = [  # (publisher, topic) in order; the payload is "publisher:topic:index"
    ("operator", "luxnode/node-1/set"), ("operator", "luxnode/node-1/light"), ("operator", "public/news"),
    ("operator", "public/secret"), ("node-1", "luxnode/node-1/light"),
    ("node-1", "luxnode/node-2/light"), ("node-1", "public/news"), (None, "public/news"),
    (None, "luxnode/node-1/set"),
    ("operator", "$SYS/test/x"),    # mosquitto drops client publishes to $SYS, even when the ACL grants them
    ("operator", "luxnode/node-1/set"), ("operator", "public/end"),   # every subscriber reads one of these last two
]


def deliveries(port, clients) -> dict:
    """Who received what, for the same clients and publishes on the broker at ``port``."""
    users = {"operator": "op", "node-1": "n1", None: "anon"}
    connected = {user: clients(port, client_id=cid, username=user).connect() for user, cid in users.items()}
    for client in connected.values():
        client.subscribe("#", 1)
        client.subscribe("$SYS/#", 1)
    for index, (user, topic) in enumerate(PUBLISHED):
        connected[user].publish(topic, f"{user}:{topic}:{index}".encode(), qos=1)
    last = (f":{len(PUBLISHED) - 2}".encode(), f":{len(PUBLISHED) - 1}".encode())
    received = {}
    for user, client in connected.items():
        wait_for(lambda: any(m.payload.endswith(last) for m in list(client.messages)), 5,
                 what=f"the last message to {user}")
        received[user] = [(m.topic, m.payload.decode()) for m in list(client.messages)
                          if not m.topic.startswith("$SYS/broker/")]
    return received


def test_acl_delivery_matches_mosquitto(tmp_path, start_broker, mosquitto, clients):
    (tmp_path / "acl").write_text(PARITY_ACL)
    lines = f"allow_anonymous true\nacl_file {tmp_path / 'acl'}\n"
    reference = deliveries(mosquitto(lines).port, clients)
    ours = deliveries(start_broker(listeners=conf.parse(f"listener {free_port()}\n{lines}").listeners).ports[0],
                      clients)
    assert reference == {
        "operator": [("luxnode/node-1/set", "operator:luxnode/node-1/set:0"),
                     ("luxnode/node-1/light", "node-1:luxnode/node-1/light:4"),
                     ("luxnode/node-1/set", "operator:luxnode/node-1/set:10")],
        "node-1": [("luxnode/node-1/set", "operator:luxnode/node-1/set:0"),
                   ("luxnode/node-1/set", "operator:luxnode/node-1/set:10")],
        None: [("public/news", "operator:public/news:2"), ("public/end", "operator:public/end:11")],
    }
    assert ours == reference


def test_per_listener_settings_give_each_listener_its_own_auth(files, start_broker):
    open_port, locked_port = free_port(), free_port()
    config = conf.parse(
        f"per_listener_settings true\n"
        f"listener {open_port} 127.0.0.1\nallow_anonymous true\n"
        f"listener {locked_port} 127.0.0.1\npassword_file {files / 'passwd'}\n")
    broker = start_broker(listeners=config.listeners)
    assert broker.ports == [open_port, locked_port]
    assert connack(open_port, "anon") == 0
    assert connack(locked_port, "anon") == 5
    assert connack(locked_port, "op", "operator", "op-pw") == 0
    assert connack(open_port, "op", "operator", "wrong") == 0     # no password_file on the open listener
