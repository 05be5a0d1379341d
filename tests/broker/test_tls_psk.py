"""TLS-PSK listeners under asyncio: mosquitto_pub --psk and the MicroPython client get in,
a wrong key or an unknown identity does not, and the identity becomes the username."""

import asyncio
import subprocess
import threading

import pytest

from luxnode.broker.auth import Auth
from luxnode.broker.tls import peer_identity, server_context
from luxnode.mosquitto.conf import ListenerConfig
from tests.support import micropython
from tests.support.net import free_port, wait_for

NODE_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
ACL = """\
user operator
topic read luxnode/#
pattern write luxnode/%u/#
"""


@pytest.fixture
def lab(tmp_path, start_broker, clients):
    """A PSK listener (identity = username) and a plain one where the operator listens."""
    (tmp_path / "psk").write_text(f"node-1:{NODE_KEY}\n")
    (tmp_path / "acl").write_text(ACL)
    shared = dict(acl_file=tmp_path / "acl", psk_file=tmp_path / "psk")
    broker = start_broker(listeners=[
        ListenerConfig(0, "127.0.0.1", allow_anonymous=True, **shared),
        ListenerConfig(0, "127.0.0.1", psk_hint="luxnode", use_identity_as_username=True, **shared),
    ])
    operator = clients(broker.ports[0], client_id="operator", username="operator").connect()
    operator.subscribe("luxnode/#", 1)
    broker.plain_port, broker.psk_port, broker.operator, broker.dir = *broker.ports, operator, tmp_path
    return broker


def mosquitto_pub_psk(port, identity, key, topic, message="42", *extra):
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port), "--psk", key, "--psk-identity", identity,
         "-i", f"pub-{identity}", "-t", topic, "-m", message, "-q", "1", *extra],
        capture_output=True, text=True, timeout=20,
    )


def test_mosquitto_pub_psk_identity_is_the_username(lab):
    result = mosquitto_pub_psk(lab.psk_port, "node-1", NODE_KEY, "luxnode/node-1/light")
    assert result.returncode == 0, result.stderr
    [message] = lab.operator.received(1)
    assert (message.topic, message.payload) == ("luxnode/node-1/light", b"42")
    # %u is the PSK identity: node-1 may not write as node-2 (dropped, as mosquitto does)
    assert mosquitto_pub_psk(lab.psk_port, "node-1", NODE_KEY, "luxnode/node-2/light").returncode == 0
    assert mosquitto_pub_psk(lab.psk_port, "node-1", NODE_KEY, "luxnode/node-1/light", "43").returncode == 0
    assert [m.payload for m in lab.operator.received(2)] == [b"42", b"43"]


@pytest.mark.parametrize("identity, key", [
    ("node-1", "ff" + NODE_KEY[2:]),          # wrong key
    ("node-9", NODE_KEY),                      # unknown identity
])
def test_wrong_key_or_identity_is_refused(lab, identity, key):
    result = mosquitto_pub_psk(lab.psk_port, identity, key, f"luxnode/{identity}/light")
    assert result.returncode != 0
    assert "tls" in result.stderr.lower() or "protocol error" in result.stderr.lower(), result.stderr
    # the listener still serves the right key afterwards
    assert mosquitto_pub_psk(lab.psk_port, "node-1", NODE_KEY, "luxnode/node-1/light").returncode == 0
    assert [m.topic for m in lab.operator.received(1)] == ["luxnode/node-1/light"]


def test_plain_text_is_not_accepted_on_the_psk_port(lab):
    result = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(lab.psk_port), "-t", "luxnode/x",
                             "-m", "1"], capture_output=True, text=True, timeout=20)
    assert result.returncode != 0


MICROPYTHON_CLIENT = """
import socket, tls
addr = socket.getaddrinfo("127.0.0.1", {port})[0][-1]
sock = socket.socket()
sock.connect(addr)
ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
ctx.verify_mode = tls.CERT_NONE
ctx.psk_identity = "{identity}"
ctx.psk_key = bytes.fromhex("{key}")
try:
    s = ctx.wrap_socket(sock)
except OSError as e:
    print("handshake failed", e)
    raise SystemExit
cid = b"mp-{identity}"
body = b"\\x00\\x04MQTT\\x04\\x02\\x00\\x3c" + len(cid).to_bytes(2, "big") + cid
s.write(bytes([0x10, len(body)]) + body)
ack = s.read(4)
print("connack", ack[3])
topic = b"luxnode/{identity}/light"
body = len(topic).to_bytes(2, "big") + topic + b"from micropython"
s.write(bytes([0x30, len(body)]) + body)
s.write(b"\\xe0\\x00")
s.close()
"""


def test_micropython_client_with_psk(lab):
    output = micropython.run(MICROPYTHON_CLIENT.format(port=lab.psk_port, identity="node-1", key=NODE_KEY),
                             path=())
    assert "connack 0" in output
    [message] = lab.operator.received(1)
    assert (message.topic, message.payload) == ("luxnode/node-1/light", b"from micropython")


def test_micropython_client_with_a_wrong_key_is_refused(lab):
    output = micropython.run(MICROPYTHON_CLIENT.format(port=lab.psk_port, identity="node-1", key="ab" * 32),
                             path=())
    assert "handshake failed" in output and "connack" not in output


def test_reload_picks_up_new_identities_and_keeps_old_files_when_one_is_bad(lab):
    psk = lab.dir / "psk"
    psk.write_text(f"node-1:{NODE_KEY}\nnode-2:{'22' * 32}\n")
    lab.call(lab.server.reload)
    assert mosquitto_pub_psk(lab.psk_port, "node-2", "22" * 32, "luxnode/node-2/light").returncode == 0
    psk.write_text(f"node-1:{NODE_KEY}\nnode-3:not-hex\n")
    lab.call(lab.server.reload)
    errors = {auth.last_reload_error for auth in lab.server.auths}
    assert errors == {f"{psk}:2: identity 'node-3': key contains non-hexadecimal characters"}
    assert mosquitto_pub_psk(lab.psk_port, "node-2", "22" * 32, "luxnode/node-2/light").returncode == 0
    assert [m.topic for m in lab.operator.received(2)] == ["luxnode/node-2/light"] * 2


def test_server_context_under_a_bare_asyncio_server(tmp_path):
    """server_context and peer_identity without the broker: the identity reaches the connection."""
    (tmp_path / "psk").write_text(f"sensor-7:{NODE_KEY}\n")
    listener = ListenerConfig(free_port(), "127.0.0.1", psk_hint="hint", psk_file=tmp_path / "psk")
    logged = []
    context = server_context(listener, Auth(listener), log=lambda kind, message: logged.append((kind, message)))
    seen = []
    ready = threading.Event()
    loop = asyncio.new_event_loop()

    async def handle(reader, writer):
        seen.append(peer_identity(writer.get_extra_info("ssl_object")))
        await reader.readexactly(2)             # CONNECT fixed header
        writer.write(b"\x20\x02\x00\x00")       # CONNACK accepted
        await writer.drain()
        await reader.read()                     # until the client goes
        writer.close()

    async def serve():
        server = await asyncio.start_server(handle, "127.0.0.1", listener.port, ssl=context)
        ready.set()
        async with server:
            try:
                await server.serve_forever()
            except asyncio.CancelledError:  # the test is over
                pass

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    try:
        assert ready.wait(10)
        result = mosquitto_pub_psk(listener.port, "sensor-7", NODE_KEY, "t", "1", "-q", "0")
        assert result.returncode == 0, result.stderr
        wait_for(lambda: seen, what="a TLS-PSK connection")
        assert seen == [("sensor-7", None)]
        assert mosquitto_pub_psk(listener.port, "sensor-8", NODE_KEY, "t", "1", "-q", "0").returncode != 0
        assert logged == [("notice", "TLS-PSK handshake refused on the 'hint' listener: unknown identity "
                                     "'sensor-8' (not in psk_file).")]
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(10)
        loop.close()
