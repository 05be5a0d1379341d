"""Item 4 of issue 9: queued messages never leak across identities, and no node can make
another's connection flap.

A client holding node A's password that connected with node B's client id used to get
B's 20 unacknowledged `set` commands: resent in-flight messages skipped the read ACL.
Now every message is checked against the reader's ACL when it is sent (resends on
reconnect included), a session belongs to the username that made it (another username
gets a fresh one), and `use_username_as_clientid` stops the takeovers, as in mosquitto."""

import os
import signal
import socket

import pytest

from luxnode.mosquitto import passwd
from tests.broker_stress import packets as P
from tests.support.net import wait_for

from .conftest import closed_by_broker

PASSWORDS = {"operator": "op-pw", "node-a": "a-pw", "node-b": "b-pw", "watcher": "w-pw"}
ACL = """\
user operator
topic readwrite lab/#

pattern read lab/%u/set
"""
ACL_REVOKED = """\
user operator
topic readwrite lab/#

pattern read lab/%u/other
"""
COMMANDS = 30  # 20 in flight (the window) and 10 queued behind them


@pytest.fixture
def auth_files(tmp_path):
    folder = tmp_path / "auth"
    folder.mkdir()
    passwd.write_file(folder / "passwd", {user: passwd.hash_password(pw) for user, pw in PASSWORDS.items()})
    (folder / "acl").write_text(ACL)
    return folder


def both(luxnode_broker, mosquitto, conf: str):
    return (("luxnode", luxnode_broker(conf)), ("mosquitto", mosquitto(conf)))


def as_user(port: int, user: str, client_id: str, clean: bool = True) -> tuple[socket.socket, bool]:
    """(connection, session present) for ``user`` with its password."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(P.connect(client_id, clean=clean, username=user, password=PASSWORDS[user].encode()))
    first, body = P.read_packet(sock)
    assert first == 0x20 and body[1] == 0, f"{user} as {client_id}: CONNACK {body!r}"
    return sock, bool(body[0] & 1)


def leave_commands_unacknowledged(port: int) -> None:
    """node-b subscribes with a persistent session, gets COMMANDS QoS 1 `set`s and vanishes
    without acknowledging any of them (a node losing power)."""
    node, _ = as_user(port, "node-b", "node-b", clean=False)
    node.sendall(P.subscribe([("lab/node-b/set", 1)]))
    assert P.read_packet(node)[0] == 0x90
    operator, _ = as_user(port, "operator", "operator")
    for n in range(COMMANDS):
        operator.sendall(P.publish("lab/node-b/set", b'{"state":"ON","n":%d}' % n, qos=1, packet_id=n + 1))
        assert P.read_packet(operator)[0] == 0x40
    first, _ = P.read_packet(node)
    assert first >> 4 == 3  # the commands are on their way: in flight, unacknowledged
    node.close()
    operator.close()


def publishes_until_ping(sock: socket.socket) -> list[str]:
    """Topics of the PUBLISHes the broker sends before answering two PINGREQs."""
    topics = []
    for _ in range(2):
        sock.sendall(P.PINGREQ)
        while True:
            first, body = P.read_packet(sock)
            if first == 0xD0:
                break
            if first >> 4 == 3:
                topics.append(P.publish_fields(first, body)[0])
    return topics


def test_another_user_taking_the_client_id_gets_nothing(luxnode_broker, mosquitto, auth_files, operator):
    conf = f"password_file {auth_files}/passwd\nacl_file {auth_files}/acl\n"
    for name, broker in both(luxnode_broker, mosquitto, conf):
        op = operator(broker.port, client_id="watcher", username="watcher", password=b"w-pw")
        leave_commands_unacknowledged(broker.port)
        thief, present = as_user(broker.port, "node-a", "node-b", clean=False)
        assert publishes_until_ping(thief) == [], f"{name} gave node-b's commands to node-a"
        if name == "luxnode":
            assert not present, "node-a resumed node-b's session"
        op.check()


def test_resent_messages_meet_the_reloaded_acl(luxnode_broker, mosquitto, auth_files, operator):
    conf = f"password_file {auth_files}/passwd\nacl_file {auth_files}/acl\n"
    for name, broker in both(luxnode_broker, mosquitto, conf):
        (auth_files / "acl").write_text(ACL)
        op = operator(broker.port, client_id="watcher", username="watcher", password=b"w-pw")
        leave_commands_unacknowledged(broker.port)
        (auth_files / "acl").write_text(ACL_REVOKED)
        log_size = len(broker.log_text())
        os.kill(broker.proc.pid, signal.SIGHUP)
        wait_for(lambda: "eload" in broker.log_text()[log_size:], 10, what=f"{name} to reload its ACL")
        node, present = as_user(broker.port, "node-b", "node-b", clean=False)
        assert present
        assert publishes_until_ping(node) == [], f"{name} resent commands the ACL no longer lets node-b read"
        op.check()


def test_use_username_as_clientid_stops_takeovers(luxnode_broker, mosquitto, auth_files, operator):
    conf = f"password_file {auth_files}/passwd\nacl_file {auth_files}/acl\nuse_username_as_clientid true\n"
    for name, broker in both(luxnode_broker, mosquitto, conf):
        op = operator(broker.port, client_id="watcher", username="watcher", password=b"w-pw")
        node_b, _ = as_user(broker.port, "node-b", "node-b")
        node_b.sendall(P.subscribe([("lab/node-b/set", 1)]))
        assert P.read_packet(node_b)[0] == 0x90
        for attempt in range(23):
            thief, _ = as_user(broker.port, "node-a", "node-b")
            thief.close()
        assert publishes_until_ping(node_b) == [], f"{name}: node-b lost its connection"
        # Delivery goes to node-b's session, whatever id it asked for.
        sender, _ = as_user(broker.port, "operator", "anything")
        sender.sendall(P.publish("lab/node-b/set", b"on", qos=1, packet_id=1))
        assert P.read_packet(sender)[0] == 0x40
        assert P.receive_publish(node_b) == ("lab/node-b/set", b"on", 1)
        op.check()


def test_use_username_as_clientid_refuses_anonymous_clients(luxnode_broker, mosquitto):
    for name, broker in both(luxnode_broker, mosquitto, "allow_anonymous true\nuse_username_as_clientid true\n"):
        sock = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        sock.sendall(P.connect("anonymous"))
        assert P.read_packet(sock) == (0x20, b"\x00\x05"), name
        assert closed_by_broker(sock), name
        # A client with a username is let in (no password file: mosquitto 2 takes any name).
        named = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        named.sendall(P.connect("ignored", username="someone"))
        assert P.read_packet(named) == (0x20, b"\x00\x00"), name


def test_session_owner_survives_kill_9(luxnode_broker, auth_files, operator):
    """The owner is saved with the session: after kill -9 and a restart the session is still
    node-b's, not the first username's that resumes it."""
    broker = luxnode_broker(f"password_file {auth_files}/passwd\nacl_file {auth_files}/acl\n"
                            "persistence true\nautosave_interval 0\n")
    leave_commands_unacknowledged(broker.port)
    for owner_first in (True, False):
        broker.kill()
        broker.start()
        op = operator(broker.port, client_id="watcher", username="watcher", password=b"w-pw")
        if owner_first:  # the restored session is node-b's: it resumes it, commands and all
            node, present = as_user(broker.port, "node-b", "node-b", clean=False)
            assert present
            assert len(publishes_until_ping(node)) == 20  # its in-flight window again (10 stay queued)
            node.close()  # still unacknowledged: the session keeps them
        else:
            thief, present = as_user(broker.port, "node-a", "node-b", clean=False)
            assert not present, "node-a resumed node-b's restored session"
            assert publishes_until_ping(thief) == [], "node-a got node-b's restored commands"
            thief.close()
        op.check()
