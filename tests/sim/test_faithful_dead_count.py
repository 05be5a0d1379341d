"""lux.mqtt on a faithful ESP8266 whose path dies just after a burst of commands reached it.

A packet from the broker acknowledges only what the broker had when it sent it: the commands'
segments say nothing of what the node writes in answer (a PUBACK and a state each), and on a
dead path none of that is ever acknowledged. With TCP_NODELAY every answer was a segment and a
pbuf of its own: five commands took ten pbufs, past the ESP8266's TCP_SND_QUEUELEN of 8,
modlwip's 10 s retry loop and a watchdog reset. With Nagle, as lux.mqttconn leaves it on
modlwip's sockets, the answers after the first wait unsent in one pbuf: no reset, and every
command is acknowledged once the path is back."""

import os
import subprocess

from luxnode.paths import BOARDS_DIR
from luxnode.sim import port
from tests.firmware.node import board_file
from tests.sim.faithful import faithful_binary
from tests.support.net import Listener

COMMANDS = 5


def _publish_qos1(topic, pid, payload):
    body = len(topic).to_bytes(2, "big") + topic + pid.to_bytes(2, "big") + payload
    return bytes([0x32, len(body)]) + body


class _Broker:
    """A scripted broker on loopback: CONNACK; on the PUBLISH to "ready" the burst of QoS 1
    commands (one write); PUBACK for each QoS 1 PUBLISH and PINGRESP for each PINGREQ. Keeps
    (first byte, body) of every packet the node wrote."""

    def __init__(self):
        self.packets = []
        self.listener = Listener(self._serve)
        self.port = self.listener.port

    def _serve(self, conn):
        conn.settimeout(30)
        buf = b""
        with conn:
            try:
                while chunk := conn.recv(4096):
                    buf += chunk
                    while len(buf) >= 2 and len(buf) >= 2 + buf[1]:  # these packets are all short
                        first, body, buf = buf[0], buf[2:2 + buf[1]], buf[2 + buf[1]:]
                        self.packets.append((first, body))
                        self._answer(conn, first, body)
            except OSError:
                pass

    def _answer(self, conn, first, body):
        if first == 0x10:
            conn.sendall(b"\x20\x02\x00\x00")
        elif first == 0xC0:
            conn.sendall(b"\xd0\x00")
        elif first & 0xF0 == 0x30 and body[2:2 + body[1]] == b"ready":
            conn.sendall(b"".join(_publish_qos1(b"t/set", pid, b"c%d" % pid) for pid in range(1, COMMANDS + 1)))
        elif first & 0xF6 == 0x32:  # QoS 1
            conn.sendall(b"\x40\x02" + body[2 + body[1]:4 + body[1]])

    def close(self):
        self.listener.close()


SCRIPT = """import machine, time, _simchip
from lux.mqtt import MQTTClient

def answer(topic, payload, size):  # as a node does: its state, retained at QoS 1
    c.publish("t/state", b"state " + bytes(payload), True, 1)

c = MQTTClient("dead", "127.0.0.1", %d, keepalive=60, on_message=answer, log=lambda m: print("log", m))
while c.state != 3:
    c.poll(10)
wdt = machine.WDT()
c.feed = wdt.feed
c.publish("ready", "1")
for _ in c._poller.ipoll(5000):  # the burst has reached the board (not read yet)
    break
_simchip.blackhole(1)
print("path dead")
t = time.ticks_ms()
while time.ticks_diff(time.ticks_ms(), t) < 2000:  # past the first retransmission timeout
    wdt.feed()
    c.poll(10)
print("alive", c.state)
_simchip.blackhole(0)
t = time.ticks_ms()
while c._inflight and time.ticks_diff(time.ticks_ms(), t) < 5000:
    wdt.feed()
    c.poll(10)
print("answered", len(c._inflight))
"""


def test_esp8266_answers_a_burst_when_the_path_dies_without_a_watchdog_reset(tmp_path):
    binary = faithful_binary("esp8266")
    (tmp_path / "board.json").write_text((BOARDS_DIR / "esp8266.json").read_text())
    heap = board_file("esp8266")["heap_bytes"] + port.board_heap_overhead(binary, tmp_path)
    broker = _Broker()
    try:
        proc = subprocess.run([binary, "-X", f"heapsize={heap}", "-c", SCRIPT % broker.port], cwd=tmp_path,
                              env=dict(os.environ, MICROPYPATH=f"{port.deployed_firmware(binary)}:.frozen",
                                       LUXNODE_SIM_NOISE="0"),
                              capture_output=True, text=True, timeout=60)
    finally:
        broker.close()
    out = proc.stdout
    assert "machine: reset" not in out and "alive 3" in out, out + proc.stderr
    assert "answered 0" in out, out + proc.stderr
    # every command acknowledged, in the order it came (MQTT-4.6.0-2), and the last state sent
    acks = [int.from_bytes(body[:2], "big") for first, body in broker.packets if first == 0x40]
    assert acks == list(range(1, COMMANDS + 1)), broker.packets
    states = [body[2 + body[1] + 2:] for first, body in broker.packets if first & 0xF0 == 0x30 and b"t/state" in body]
    assert states[-1] == b"state c%d" % COMMANDS, states

