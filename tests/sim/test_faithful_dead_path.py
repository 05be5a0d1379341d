"""A faithful ESP8266 node whose path to a real mosquitto dies while it publishes (the broker's
host lost power, the uplink dropped: the TCP connection stays open, nothing is acknowledged).

Before the fix every publish queued one more unacknowledged lwIP segment until TCP_SND_QUEUELEN
(8); the next write sat in modlwip's 10 s retry loop and the watchdog reset the node. Now the
client stops writing past a few segments without an answer, asks with a PINGREQ, and declares
the connection dead when none comes: no reset, and the QoS 1 state it could not send is
delivered once the path is back."""

import json

from tests.firmware.node import broker, node_config, nodes, observer  # noqa: F401 (fixtures)
from tests.sim.faithful import faithful_binary


def _led_until(node, done, what):
    """The bench's LED output (0..1) once ``done`` says so, read every sample (100 ms) for 10 s."""
    for _ in range(100):
        node.control("bench")
        led = float(node.expect("machine: bench").split()[5])
        if done(led):
            return led
    raise AssertionError(f"no {what}: the LED stays at {led}")


def test_esp8266_detects_a_dead_path_without_a_watchdog_reset_and_keeps_its_qos1_state(
        broker, observer, nodes, tmp_path):
    faithful_binary("esp8266")  # built (or skipped, outside CI, saying why) before the node starts
    # keepalive 60: the keepalive alone would notice after 30 + 30 s, long after lwIP's queue is
    # full (light and telemetry each second).
    cfg = node_config(broker.port, board="esp8266", telemetry_s=1, mqtt__keepalive=60)
    node = nodes(tmp_path / "fs", cfg, board="esp8266", faithful="esp8266").start()
    node.expect("luxnode: connected to 127.0.0.1", timeout=30)
    observer.expect("luxnode/node-1/state", timeout=20)  # connected and subscribed
    observer.publish("luxnode/node-1/set", json.dumps({"control": "AUTO", "value": 40}))
    observer.expect("luxnode/node-1/state", lambda p: p["control"] == "AUTO")
    lit = _led_until(node, lambda led: led > 0.2, "AUTO to light the LED at ambient 20 %")

    node.control("net blackhole on")
    node.expect("machine: network path dead")
    node.control("ambient 70")  # AUTO dims the LED: new levels on state (QoS 1) while the path is dead
    _led_until(node, lambda led: led < lit - 0.1, "AUTO to dim the LED at ambient 70 %")
    assert "connection lost" not in node.drain(), "the connection was lost before the LED moved"
    lost = node.expect("mqtt error: connection lost", timeout=40)
    assert "no PINGRESP" in lost, lost
    dead_state = observer.count("luxnode/node-1/state")

    node.control("net blackhole off")
    node.expect("machine: network path back")
    node.expect("luxnode: connected to 127.0.0.1", timeout=40)
    # The state held while the path was dead comes first (from the inflight queue, on CONNACK),
    # then the one the connect announces: two, both AUTO.
    try:
        observer.expect("luxnode/node-1/state", lambda p: p["control"] == "AUTO", timeout=15)
        observer.expect("luxnode/node-1/state", lambda p: p["control"] == "AUTO", timeout=15)
    except AssertionError as e:
        raise AssertionError(f"{e}\nthe node:\n{node.drain()}") from None
    assert observer.count("luxnode/node-1/state") >= dead_state + 2
    output = node.drain()
    assert "machine: reset" not in output and "dropping message" not in output, output
