"""Garbage on the TLS-PSK listener: random bytes, plain-text MQTT, and mutated TLS
ClientHellos must each end in a closed connection, while a silent half-open connection
sits there and the C clients with the right PSK keep talking."""

import secrets
import socket
import ssl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from . import packets as P
from .cclients import Sub, pub, require_clients
from .fuzzing import assert_survived, fuzz_settings, send_and_hang_up

KEY = secrets.token_hex(32)
PSK = ("--psk", KEY, "--psk-identity", "node-1")


def client_hello() -> bytes:
    """The first flight of a real TLS client (certificate suites: the PSK listener refuses it)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


HELLO = client_hello()


@pytest.fixture
def psk_target(luxnode_broker, tmp_path):
    require_clients()
    psk_file = tmp_path / "psk"
    psk_file.write_text(f"node-1:{KEY}\n")
    broker = luxnode_broker(f"psk_hint luxnode-lab\npsk_file {psk_file}\nallow_anonymous true\n")
    sub = Sub(broker.port, "probe/#", *PSK, "-i", "psk-bystander", "-q", "1")
    sub.wait_subscribed()
    silent = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    yield broker, sub, iter(range(10**6))
    silent.close()
    sub.stop()


@st.composite
def tls_garbage(draw):
    kind = draw(st.sampled_from(["random", "plain-mqtt", "hello-truncated", "hello-flipped", "hello-twice"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=300))
    if kind == "plain-mqtt":
        return P.connect("plain-on-tls") + P.publish("probe/plain", b"must not arrive")
    if kind == "hello-truncated":
        return HELLO[:draw(st.integers(1, len(HELLO) - 1))]
    if kind == "hello-twice":
        return HELLO + HELLO
    data = bytearray(HELLO)
    for _ in range(draw(st.integers(1, 4))):
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return bytes(data)


@fuzz_settings(30)
@given(data=tls_garbage())
def test_psk_listener_survives_garbage(psk_target, data):
    broker, sub, numbers = psk_target
    send_and_hang_up(broker.port, data)
    assert_survived(broker)
    probe = f"probe-{next(numbers)}"
    done = pub(broker.port, "probe/psk", probe, *PSK, "-q", "1")
    assert done.returncode == 0, done.stderr
    sub.wait_message(f"probe/psk {probe}")
    assert "probe/plain must not arrive" not in sub.messages()
