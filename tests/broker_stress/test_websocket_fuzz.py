"""The WebSocket listener (the dashboard's way in) gets the same random and mutated packets,
cut into binary frames at arbitrary offsets, plus text frames; TCP clients keep receiving, and
a valid stream split across frames arrives whole."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from tests.support.net import free_port

from . import packets as P
from .bystanders import Bystanders
from .fuzzing import assert_healthy, fuzz_settings
from .test_fuzz import sessions


@pytest.fixture
def ws_target(luxnode_broker):
    ws_port = free_port()
    broker = luxnode_broker(f"listener {ws_port} 127.0.0.1\nprotocol websockets\nallow_anonymous true\n")
    bystanders = Bystanders(broker.port)
    yield broker, ws_port, bystanders
    bystanders.close()


def frames(data: bytes, cuts: list[int]) -> list[bytes]:
    offsets = sorted({c for c in cuts if 0 < c < len(data)})
    return [data[a:b] for a, b in zip([0] + offsets, offsets + [len(data)])]


@fuzz_settings(60)
@given(stream=sessions(), cuts=st.lists(st.integers(1, 200), max_size=10), text=st.none() | st.text(max_size=20))
def test_websocket_listener_survives_mutated_frames(ws_target, stream, cuts, text):
    broker, ws_port, bystanders = ws_target
    try:
        with ws_connect(f"ws://127.0.0.1:{ws_port}/mqtt", subprotocols=["mqtt"], open_timeout=5,
                        close_timeout=5) as ws:
            for frame in frames(stream, cuts):
                ws.send(frame)
            if text is not None:
                ws.send(text)  # MQTT over WebSocket is binary only: the broker must hang up, not crash
    except (WebSocketException, OSError):
        pass  # the broker closed the connection on bad input: allowed
    assert_healthy(broker, bystanders)


@fuzz_settings(30)
@given(payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=8),
       cuts=st.lists(st.integers(1, 300), max_size=20))
def test_valid_stream_split_across_frames_arrives(ws_target, payloads, cuts):
    broker, ws_port, bystanders = ws_target
    marked = [b"ws-%d-" % i + payload for i, payload in enumerate(payloads)]
    stream = P.connect("ws-splitter") + b"".join(
        P.publish("probe/bystander", payload, qos=1, packet_id=i + 1) for i, payload in enumerate(marked))
    with ws_connect(f"ws://127.0.0.1:{ws_port}/mqtt", subprotocols=["mqtt"], open_timeout=5) as ws:
        for frame in frames(stream, cuts):
            ws.send(frame)
        acks = b""
        while len(acks) < 4 + 4 * len(marked):  # CONNACK, then one PUBACK per message
            acks += ws.recv(timeout=5)
    assert acks[:4] == b"\x20\x02\x00\x00"
    assert acks[4:] == b"".join(P.ack(4, i + 1) for i in range(len(marked)))
    with bystanders.cond:
        assert bystanders.cond.wait_for(lambda: all(m in bystanders.received for m in marked), 5)
    assert_healthy(broker, bystanders)
