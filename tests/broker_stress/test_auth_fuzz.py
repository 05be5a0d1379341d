"""Random credentials against a password_file listener (hashes from mosquitto_passwd): only
the right user/password pair is ever let in, every other CONNECT is refused or closed, and
the broker keeps serving its authenticated clients."""

import socket
import subprocess

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from luxnode.mqtt import topics

from . import packets as P
from .bystanders import Bystanders
from .fuzzing import assert_healthy, fuzz_settings

USERS = {"alice": b"alice-pw", "bob": b"bob-pw"}


@pytest.fixture
def auth_target(luxnode_broker, tmp_path):
    passwd = tmp_path / "passwd"
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(passwd), "alice", "alice-pw"], check=True, timeout=30)
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "bob", "bob-pw"], check=True, timeout=30)
    broker = luxnode_broker(f"allow_anonymous false\npassword_file {passwd}\n")
    bystanders = Bystanders(broker.port, "bob", "bob-pw")
    yield broker, bystanders
    bystanders.close()


def near(value: bytes):
    """The right secret, or one edited slightly: a prefix, an extension, one byte changed."""
    return st.one_of(
        st.just(value),
        st.integers(0, len(value) - 1).map(lambda n: value[:n]),
        st.binary(min_size=1, max_size=4).map(lambda extra: value + extra),
        st.integers(0, len(value) - 1).map(lambda i: value[:i] + bytes([value[i] ^ 1]) + value[i + 1:]),
    )


usernames = st.none() | st.sampled_from(["alice", "bob", "mallory", "", "alice\x00", "ALICE"]) | st.text(max_size=8)
passwords = st.none() | near(b"alice-pw") | near(b"bob-pw") | st.binary(max_size=12)


def answer(port: int, connect: bytes) -> bytes:
    """The broker's reply to one CONNECT: the CONNACK if any, and b"" once it hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(connect)
        reply = b""
        try:
            while len(reply) < 4 and (chunk := sock.recv(4 - len(reply))):
                reply += chunk
            if reply == b"\x20\x02\x00\x00":
                return reply
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
        assert closed, f"a refused client was left connected after {reply!r}"
        return reply


@fuzz_settings(80)
@given(username=usernames, password=passwords, client=st.integers(0, 10**6))
@example(username="alice", password=b"alice-pw", client=1)
@example(username="bob", password=b"alice-pw", client=2)
@example(username=None, password=None, client=3)
@example(username="alice", password=b"alice-pw\x00", client=4)
def test_only_the_right_password_gets_in(auth_target, username, password, client):
    broker, bystanders = auth_target
    reply = answer(broker.port, P.connect(f"auth-{client}", username=username, password=password))
    if username in USERS and password == USERS[username]:
        assert reply == b"\x20\x02\x00\x00"
    elif username in USERS and password is not None and password.split(b"\x00")[0] == USERS[username]:
        # mosquitto compares the password as a C string and lets "pw\0anything" in; refusing
        # is stricter and also fine. Anything else must never get in (the branch below).
        assert reply in (b"\x20\x02\x00\x00", b"\x20\x02\x00\x04", b"\x20\x02\x00\x05")
    elif (username is None and password is not None) or topics.forbidden_character(username or ""):
        # A password without a user name (MQTT-3.1.2-22) and a NUL in a string (MQTT-1.5.3-2)
        # are protocol violations: closing without a CONNACK is allowed too. mosquitto also
        # closes on control characters and non-characters in a username, and so do we.
        assert reply in (b"", b"\x20\x02\x00\x04", b"\x20\x02\x00\x05")
    else:
        assert reply in (b"\x20\x02\x00\x04", b"\x20\x02\x00\x05"), f"{username!r}/{password!r} -> {reply!r}"
    assert_healthy(broker, bystanders)
