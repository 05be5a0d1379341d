"""mosquitto.conf limits the lab broker enforces: where it listens, how many, how much."""

import socket
import ssl

import pytest

from luxnode.broker import interfaces
from luxnode.errors import LuxnodeError
from luxnode.mosquitto.conf import ListenerConfig
from luxnode.mqtt import encoder
from luxnode.mqtt.packets import PINGRESP, Connect, Suback
from luxnode.broker.background import BackgroundBroker
from luxnode.broker.log import Log
from tests.broker.conftest import LogLines, RawClient, make_config
from tests.support.net import free_port, wait_for


def listening_addresses(broker) -> set[str]:
    servers = broker.server._servers
    return {sock.getsockname()[0] for server in servers for sock in server.sockets}


def has_ipv6_loopback() -> bool:
    return any(address == "::1" for _, _, address in interfaces.all_addresses())


def test_bind_interface_lo_listens_on_loopback_only(start_broker):
    """mosquitto binds the interface's addresses; never 0.0.0.0 or [::]."""
    port = free_port()
    broker = start_broker(listeners=[ListenerConfig(port, None, allow_anonymous=True, bind_interface="lo")])
    expected = {"127.0.0.1", "::1"} if has_ipv6_loopback() else {"127.0.0.1"}
    assert listening_addresses(broker) == expected
    RawClient(port).connect("via-lo").close()
    assert f"Opening mqtt listen socket on 127.0.0.1 port {port}." in broker.log.text


def test_bind_interface_with_socket_domain_ipv4(start_broker):
    port = free_port()
    broker = start_broker(listeners=[ListenerConfig(port, "0.0.0.0", allow_anonymous=True, bind_interface="lo",
                                                    socket_domain="ipv4")])
    assert listening_addresses(broker) == {"127.0.0.1"}  # bind_interface wins over the address


def test_bind_interface_that_does_not_exist_stops_startup(start_broker):
    with pytest.raises(LuxnodeError, match="bind_interface nosuch0: no such interface"):
        start_broker(listeners=[ListenerConfig(0, None, allow_anonymous=True, bind_interface="nosuch0")])


def test_max_connections_refuses_the_extra_socket_and_frees_its_place(start_broker):
    broker = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True, max_connections=2)])
    port = broker.ports[0]
    first, second = RawClient(port).connect("c1"), RawClient(port).connect("c2")
    third = RawClient(port)
    assert third.closed_by_broker()
    broker.log.wait("denied: max_connections (2) exceeded")
    for client in (first, second):  # the clients inside keep their service
        client.send(encoder.PINGREQ_BYTES)
        assert client.next_packet().type == PINGRESP
    first.close()
    RawClient(port).connect("c3").close()  # connecting fails until the broker sees first gone


def test_max_connections_zero_is_no_limit_as_in_mosquitto(start_broker):
    broker = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True, max_connections=0)])
    RawClient(broker.ports[0]).connect("one")
    RawClient(broker.ports[0]).connect("two")


def read_until_pingresp(client: RawClient) -> list:
    """Every packet the broker sent before answering a PINGREQ sent now."""
    client.send(encoder.PINGREQ_BYTES)
    packets = []
    while (packet := client.next_packet()).type != PINGRESP:
        packets.append(packet)
    return packets


def test_max_inflight_messages_bounds_unacknowledged_deliveries(start_broker, clients):
    broker = start_broker(max_inflight_messages=2)
    port = broker.ports[0]
    reader = RawClient(port).connect("reader")
    reader.send(encoder.subscribe(1, [("t", 1)]))
    assert isinstance(reader.next_packet(), Suback)
    publisher = clients(port, client_id="pub").connect()
    for n in range(5):
        publisher.publish("t", f"m{n}".encode(), qos=1)
    first = read_until_pingresp(reader)
    assert [p.payload for p in first] == [b"m0", b"m1"]
    reader.send(encoder.puback(first[0].packet_id))
    assert [p.payload for p in read_until_pingresp(reader)] == [b"m2"]


def test_max_inflight_bytes(start_broker, clients):
    broker = start_broker(max_inflight_bytes=150)
    port = broker.ports[0]
    reader = RawClient(port).connect("reader")
    reader.send(encoder.subscribe(1, [("t", 1)]))
    reader.next_packet()
    publisher = clients(port, client_id="pub").connect()
    for n in range(4):
        publisher.publish("t", bytes([n]) * 100, qos=1)
    assert len(read_until_pingresp(reader)) == 2  # 0 and 100 bytes in flight are below 150


def offline_queue(broker, clients, count: int, size: int, **limits):
    """Queue ``count`` QoS 1 messages of ``size`` bytes for an offline session."""
    port = broker.ports[0]
    sub = clients(port, client_id="sleeper", clean_session=False).connect()
    sub.subscribe("t", 1)
    sub.disconnect()
    publisher = clients(port, client_id="pub").connect()
    for n in range(count):
        publisher.publish("t", bytes([n]) * size, qos=1)
    return broker.call(lambda: [m[1][0] for m in broker.broker.sessions["sleeper"].queue])


def test_max_queued_messages(start_broker, clients):
    broker = start_broker(max_queued_messages=3)
    assert offline_queue(broker, clients, 10, 10) == [0, 1, 2]
    broker.log.wait("Outgoing messages are being dropped for client sleeper.")


def test_max_queued_bytes(start_broker, clients):
    broker = start_broker(max_queued_bytes=250)
    assert offline_queue(broker, clients, 10, 100) == [0, 1, 2]  # queued while below 250 bytes
    assert broker.call(lambda: broker.broker.sessions["sleeper"].queued_bytes) == 300


def test_queued_bytes_are_released_on_delivery(start_broker, clients):
    broker = start_broker(max_queued_bytes=250)
    offline_queue(broker, clients, 3, 100)
    sub = clients(broker.ports[0], client_id="sleeper", clean_session=False).connect()
    assert len(sub.received(3)) == 3
    assert broker.call(lambda: broker.broker.sessions["sleeper"].queued_bytes) == 0


def test_zero_length_client_id_refused_when_not_allowed(start_broker):
    broker = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True,
                                                    allow_zero_length_clientid=False)])
    raw = RawClient(broker.ports[0])
    raw.send(encoder.connect(Connect(client_id="")))
    assert raw.next_packet().return_code == 2
    assert raw.closed_by_broker()


def test_auto_id_prefix(start_broker):
    broker = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True, auto_id_prefix="lab-")])
    raw = RawClient(broker.ports[0]).connect("")
    read_until_pingresp(raw)
    [client_id] = broker.call(lambda: list(broker.broker.sessions))
    assert client_id.startswith("lab-") and len(client_id) > 10


@pytest.mark.parametrize("qos, retain, listener_qos, reason", [
    (2, False, 1, "PUBLISH beyond max_qos 1"),
    (1, False, 0, "PUBLISH beyond max_qos 0"),
    (0, True, 2, "PUBLISH beyond retain_available false"),
])
def test_publish_beyond_max_qos_or_retain_available_disconnects(start_broker, clients, qos, retain,
                                                                listener_qos, reason):
    broker = start_broker(retain_available=False,
                          listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True, max_qos=listener_qos)])
    port = broker.ports[0]
    watcher = clients(port, client_id="watcher").connect()
    watcher.subscribe("t", 2)
    raw = RawClient(port).connect("bad")
    raw.send(encoder.publish(b"t", b"x", qos, retain, False, 1 if qos else None))
    assert raw.closed_by_broker()
    broker.log.wait(reason)
    clients(port, client_id="good").connect().publish("t", b"fine", qos=0)
    assert watcher.received(1)[0].payload == b"fine"  # the rejected message never arrived


def test_max_packet_size_disconnects_before_buffering(start_broker, clients):
    broker = start_broker(max_packet_size=100)
    port = broker.ports[0]
    raw = RawClient(port).connect("big")
    raw.send(encoder.publish(b"t", b"x" * 200, 0, False, False, None))
    assert raw.closed_by_broker()
    broker.log.wait("exceeds the size limit")
    small = RawClient(port).connect("small")
    small.send(encoder.publish(b"t", b"x" * 96, 0, False, False, None))  # remaining length 99: 99 + 1 fits
    assert read_until_pingresp(small) == []  # still connected
    edge = RawClient(port).connect("edge")
    edge.send(encoder.publish(b"t", b"x" * 97, 0, False, False, None))  # 100 + 1 does not (as mosquitto)
    assert edge.closed_by_broker()


def test_socket_domain_ipv6_on_an_ipv4_address_stops_startup(start_broker):
    with pytest.raises(LuxnodeError, match="cannot listen on 127.0.0.1"):
        start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True, socket_domain="ipv6")])


def test_persistent_client_expiration_drops_sessions_unused_that_long(start_broker, tmp_path):
    now = [1000.0]
    lines = LogLines()
    broker = BackgroundBroker(make_config(persistent_client_expiration=3600, persistence=True,
                                          persistence_location=tmp_path, autosave_interval=0),
                              log=Log({"all"}, lines), clock=lambda: now[0])
    broker.log = lines
    with broker:
        expire_after_an_hour(broker, now)
    restarted = start_broker(persistence=True, persistence_location=tmp_path)
    assert restarted.call(lambda: sorted(restarted.broker.sessions)) == ["awake"]  # the expiry was saved


def expire_after_an_hour(broker, now):
    port = broker.ports[0]
    for client_id in ("sleeper", "awake"):
        raw = RawClient(port).connect(client_id, clean_session=False)
        raw.send(encoder.subscribe(1, [("t", 1)]))
        raw.next_packet()
        if client_id == "sleeper":
            raw.close()
            broker.log.wait("Client sleeper closed its connection.")
    broker.call(broker.server.expire_sessions)  # first seen offline now
    now[0] += 3599
    broker.call(broker.server.expire_sessions)
    assert broker.call(lambda: sorted(broker.broker.sessions)) == ["awake", "sleeper"]
    now[0] += 1
    broker.call(broker.server.expire_sessions)
    assert broker.call(lambda: sorted(broker.broker.sessions)) == ["awake"]  # a connected one never expires
    broker.log.wait("Expiring client sleeper due to timeout.")


def test_max_connections_counts_tls_handshakes_in_progress(start_broker, tmp_path):
    """A socket that never finishes its handshake holds its place (mosquitto counts from accept)."""
    from tests.broker.test_tls_cert import make_cert
    ca = make_cert(tmp_path, "ca", "test CA", ca=True)
    make_cert(tmp_path, "server", "localhost", issuer=ca, server=True)
    listener = ListenerConfig(0, "127.0.0.1", allow_anonymous=True, certfile=tmp_path / "server.pem",
                              keyfile=tmp_path / "server.key", max_connections=1)
    broker = start_broker(listeners=[listener])
    port = broker.ports[0]
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)  # says nothing
    refused = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert refused.recv(1) == b""  # closed at once: no handshake, no CONNECT
    broker.log.wait("denied: max_connections (1) exceeded")
    silent.close()
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))

    def handshake_completes() -> bool:
        try:
            with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                                     server_hostname="localhost"):
                return True
        except (OSError, ssl.SSLError):
            return False  # the broker has not seen the silent socket go yet
    wait_for(handshake_completes, 5, what="the freed place")


def test_websocket_listener_bind_interface_and_max_connections(start_broker):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
    port = free_port()
    broker = start_broker(listeners=[ListenerConfig(port, None, allow_anonymous=True, protocol="websockets",
                                                    bind_interface="lo", max_connections=1)])
    expected = {"127.0.0.1", "::1"} if has_ipv6_loopback() else {"127.0.0.1"}
    assert listening_addresses(broker) == expected
    with connect(f"ws://127.0.0.1:{port}", subprotocols=["mqtt"], open_timeout=5) as first:
        first.send(encoder.connect(Connect(client_id="ws-1")))
        assert first.recv(timeout=5)[:1] == b"\x20"  # CONNACK
        with connect(f"ws://127.0.0.1:{port}", subprotocols=["mqtt"], open_timeout=5) as second:
            with pytest.raises(ConnectionClosed) as closed:
                second.recv(timeout=5)
            assert closed.value.rcvd.code == 1013
