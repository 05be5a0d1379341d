"""$SYS statistics, MQTT over WebSocket (paho) and the mosquitto C clients."""

import shutil
import subprocess

import paho.mqtt.client as mqtt
import pytest

from luxnode.mosquitto.conf import ListenerConfig
from tests.support.net import wait_for

SYS_LEAVES = ("version", "uptime", "clients/connected", "messages/received", "messages/sent",
              "bytes/received", "bytes/sent", "retained messages/count", "subscriptions/count")


def test_sys_statistics_published_on_the_interval(start_broker, clients):
    broker = start_broker(sys_interval=1)
    port = broker.ports[0]
    watcher = clients(port).connect()
    watcher.subscribe("$SYS/broker/#", 0)
    pub = clients(port).connect()
    pub.publish("lux/a", b"12345", qos=1, retain=True)

    def latest():
        return {m.topic.removeprefix("$SYS/broker/"): m.payload.decode() for m in list(watcher.messages)}

    def settled():
        # A round arrives topic by topic: wait until every figure reflects the publish above.
        values = latest()
        return (set(SYS_LEAVES) <= set(values) and values["messages/received"] == "1"
                and values["subscriptions/count"] == "1" and values["clients/connected"] == "2"
                and values)

    values = wait_for(settled, 5, what="a $SYS round counting the publish")
    assert values["version"].startswith("luxnode version ")
    assert values["uptime"].endswith(" seconds")
    assert int(values["retained messages/count"]) >= 1
    assert int(values["bytes/received"]) > 0 and int(values["bytes/sent"]) > 0
    # '#' alone does not see $SYS.
    everything = clients(port).connect()
    everything.subscribe("#", 0)
    assert [m.topic for m in everything.received(1)] == ["lux/a"]


def test_websocket_listener_with_paho(start_broker, clients):
    broker = start_broker(listeners=[ListenerConfig(0, "127.0.0.1", allow_anonymous=True),
                                     ListenerConfig(0, "127.0.0.1", protocol="websockets", allow_anonymous=True)])
    tcp_port, ws_port = broker.ports
    browser = clients(ws_port, transport="websockets").connect()
    assert browser.subscribe("lux/+/light", 1) == [1]
    node = clients(tcp_port).connect()
    payload = b"x" * 70000  # larger than one WebSocket frame of most clients
    node.publish("lux/n1/light", payload, qos=1)
    node.publish("lux/n1/light", b"small", qos=0)
    assert [m.payload for m in browser.received(2)] == [payload, b"small"]
    listener = clients(tcp_port).connect()
    listener.subscribe("lux/+/set", 2)
    browser.publish("lux/n1/set", b'{"control":"ON"}', qos=2)
    assert listener.received(1)[0].payload == b'{"control":"ON"}'


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed (apt-get install mosquitto-clients)")
    return path


def test_mosquitto_pub_and_sub(broker):
    port = str(broker.ports[0])
    sub = subprocess.Popen([_binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", port, "-t", "lux/#", "-q", "2",
                            "-C", "3", "-v", "-i", "c-sub"], stdout=subprocess.PIPE, text=True)
    try:
        broker.log.wait("c-sub 2 lux/#")
        for qos in (0, 1, 2):
            subprocess.run([_binary("mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-t", f"lux/q{qos}",
                            "-m", f"hello {qos}", "-q", str(qos)], check=True, timeout=10)
        out, _ = sub.communicate(timeout=10)
    finally:
        if sub.poll() is None:
            sub.kill()
    assert out.splitlines() == ["lux/q0 hello 0", "lux/q1 hello 1", "lux/q2 hello 2"]
    retained = subprocess.run([_binary("mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-t", "lux/r",
                               "-m", "kept", "-r", "-V", "mqttv31"], timeout=10)
    assert retained.returncode == 0
    got = subprocess.run([_binary("mosquitto_sub"), "-h", "127.0.0.1", "-p", port, "-t", "lux/r", "-C", "1",
                          "-W", "5"], capture_output=True, text=True, timeout=10)
    assert got.stdout == "kept\n"


def test_paho_mqtt_31(broker, clients):
    port = broker.ports[0]
    old = clients(port, client_id="old-31", protocol=mqtt.MQTTv31).connect()
    old.subscribe("t", 1)
    clients(port).connect().publish("t", b"v3.1", qos=1)
    assert old.received(1)[0].payload == b"v3.1"
    broker.log.wait("as old-31 (p3,")
