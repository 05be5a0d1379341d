"""Item 1 of issue 9: deep topics must not kill the housekeeping.

A 1,100-level filter or will topic used to overflow the recursive subscription walk
inside the timer, which then died silently: keepalive was never enforced again.
Now topics and filters deeper than mosquitto's limit (200 '/', 201 levels) close the
connection, every walk is iterative, and the housekeeping is supervised: a failure is
logged with its traceback and the timer goes on."""

import socket
import time

from luxnode.broker import core
from luxnode.mqtt.packets import PINGREQ
from tests.broker_stress import packets as P
from tests.support.net import wait_for

from .conftest import closed_by_broker, connected

DEEP = "/".join(["deep"] * 1100)
DEEPEST_ALLOWED = "/".join(["d"] * 201)


def test_deep_filters_wills_and_topics_close_as_mosquitto(luxnode_broker, mosquitto, operator):
    lux = luxnode_broker("allow_anonymous true\n")
    mosq = mosquitto("allow_anonymous true\n")
    for name, port in (("luxnode", lux.port), ("mosquitto", mosq.port)):
        op = operator(port)
        deep_sub = connected(port, "deep-sub")
        deep_sub.sendall(P.subscribe([(DEEP, 1)]))
        assert closed_by_broker(deep_sub), f"{name} kept a 1,100-level SUBSCRIBE"
        deep_will = socket.create_connection(("127.0.0.1", port), timeout=5)
        deep_will.sendall(P.connect("deep-will", will=(DEEP, b"gone", 1, False)))
        assert closed_by_broker(deep_will), f"{name} accepted a 1,100-level will topic"
        deep_pub = connected(port, "deep-pub")
        deep_pub.sendall(P.publish(DEEP, b"x"))
        assert closed_by_broker(deep_pub), f"{name} kept a 1,100-level PUBLISH"
        # 201 levels is mosquitto's deepest: subscribed, willed, published and delivered.
        sub = connected(port, "deepest-sub")
        sub.sendall(P.subscribe([(DEEPEST_ALLOWED, 0)]))
        assert P.read_packet(sub)[0] == 0x90
        willer = connected(port, "deepest-will", will=(DEEPEST_ALLOWED, b"will", 0, False))
        pub = connected(port, "deepest-pub")
        pub.sendall(P.publish(DEEPEST_ALLOWED, b"deep"))
        assert P.receive_publish(sub) == (DEEPEST_ALLOWED, b"deep", 0)
        willer.close()  # no DISCONNECT: the will goes out
        assert P.receive_publish(sub) == (DEEPEST_ALLOWED, b"will", 0)
        op.check()
    log = lux.log_text()
    assert "data_received() call failed" not in log and "Traceback" not in log, log[-2000:]


def half_open(port: int, client_id: str, **fields) -> socket.socket:
    """A client with a 1 s keepalive that then goes silent (its network is gone)."""
    return connected(port, client_id, keepalive=1, **fields)


def test_housekeeping_survives_a_failing_walk_and_keeps_enforcing_keepalive(start_broker, monkeypatch):
    broker = start_broker()
    port = broker.ports[0]
    walk = core.SubscriptionIndex.match

    def broken_walk(self, topic):
        if topic == "boom/status":
            raise RecursionError("maximum recursion depth exceeded (injected)")
        return walk(self, topic)

    monkeypatch.setattr(core.SubscriptionIndex, "match", broken_walk)
    first = half_open(port, "first", will=("boom/status", b"offline", 0, False))
    # The timer closes `first` for its keepalive; publishing its will breaks the walk.
    broker.log.wait("Housekeeping of client first failed, continuing:", timeout=10)
    assert "RecursionError: maximum recursion depth exceeded (injected)" in broker.log.text
    assert closed_by_broker(first)
    # The timer still runs: a second half-open client is dropped on time.
    second = half_open(port, "second")
    silent_since = time.monotonic()
    broker.log.wait("Client second has exceeded timeout, disconnecting.", timeout=10)
    assert time.monotonic() - silent_since < 4, "keepalive (1.5 s) enforced late"
    assert closed_by_broker(second)


def test_a_failing_packet_handler_costs_that_connection_only(start_broker, monkeypatch, operator):
    broker = start_broker()
    port = broker.ports[0]
    op = operator(port)
    ping = core._HANDLERS[PINGREQ]

    def broken_ping(client, packet):
        if client.client_id == "victim":
            raise RuntimeError("handler failure (injected)")
        return ping(client, packet)

    monkeypatch.setitem(core._HANDLERS, PINGREQ, broken_ping)
    victim = connected(port, "victim")
    victim.sendall(P.PINGREQ)
    assert closed_by_broker(victim)
    text = broker.log.wait("Handling a packet from client victim")
    assert "RuntimeError: handler failure (injected)" in text
    op.check()
    wait_for(lambda: "victim" not in broker.broker.sessions, 5, what="the victim's session to go")


def test_deepest_retained_topic_through_wildcard_walks(start_broker):
    """The retained index and the subscription trie are walked without recursion."""
    broker = start_broker()
    port = broker.ports[0]
    pub = connected(port, "retainer")
    pub.sendall(P.publish(DEEPEST_ALLOWED, b"kept", retain=True))
    sub = connected(port, "walker")
    sub.sendall(P.subscribe([("d/#", 0), ("/".join(["+"] * 201), 0)]))
    assert P.read_packet(sub)[0] == 0x90
    assert P.receive_publish(sub) == (DEEPEST_ALLOWED, b"kept", 0)
    assert P.receive_publish(sub) == (DEEPEST_ALLOWED, b"kept", 0)
    pub.sendall(P.publish(DEEPEST_ALLOWED, b"live"))
    assert P.receive_publish(sub) == (DEEPEST_ALLOWED, b"live", 0)  # once, at the highest QoS
