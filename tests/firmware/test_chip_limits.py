"""The firmware under the real ports' limits, each point from MicroPython's port sources
(master 1c3c201): socket option numbers of the ESP8266's lwIP binding, its 10-bit PWM
and its ADC formula, its 1.6-3.2 s software watchdog (nothing may block that long), and
a message that fails to be handled (MemoryError on a 38 KB heap) costing only itself.
Where the simulated board is kinder than the chip, the chip's behaviour is a small fake
here."""

import json
import shutil

import pytest

from luxnode.paths import BOARDS_DIR
from tests.firmware.node import SIM_BOARD, Node, Observer, node_config
from tests.support.micropython import FIRMWARE, run


def run_lux(code, tmp_path, board="esp8266"):
    shutil.copy(BOARDS_DIR / f"{board}.json", tmp_path / "board.json")
    (tmp_path / "config.json").write_text("{}")
    return run(code, path=(SIM_BOARD, FIRMWARE), cwd=tmp_path)


@pytest.mark.parametrize("option, nodelay", [(1, ["setsockopt 6 1 1"]), (0x40, [])])
def test_tcp_nodelay_by_the_ports_names_and_the_watchdog_fed_around_dns(tmp_path, option, nodelay):
    # ESP32 (lwIP's sockets): TCP_NODELAY is 1. The ESP8266 (extmod/modlwip.c): TCP_NODELAY is
    # TF_NODELAY (0x40), any other option number prints "Warning: lwip.setsockopt() not
    # implemented" and does nothing; and there lux.mqttconn keeps Nagle, so that on a dead path the
    # send buffer fills before the pbufs do.
    out = run_lux("""
import lux.mqttconn as conn
from lux.mqtt import MQTTClient
events = []
class Sock:
    def setsockopt(self, level, opt, value):
        events.append("setsockopt %d %d %d" % (level, opt, value))
        if (level, opt) not in ((6, 0x40), (6, 1)):
            print("Warning: lwip.setsockopt() not implemented")
    def setblocking(self, flag): pass
    def connect(self, addr): pass
class LwipSocket:
    IPPROTO_TCP = 6
    TCP_NODELAY = OPTION
    SOCK_STREAM = 1
    def socket(self):
        return Sock()
    def getaddrinfo(self, host, port, *a):
        events.append("getaddrinfo " + host)
        return [(2, 1, 0, "", (host, port))]
class Poller:
    def register(self, s, ev): pass
conn.socket = LwipSocket()
c = MQTTClient("id", "broker.lan", 1883)
c._poller = Poller()
c.feed = lambda: events.append("feed")
conn.dial(c)
print(events)
""".replace("OPTION", str(option)), tmp_path)
    assert "not implemented" not in out
    assert out.strip().splitlines()[-1] == str(["feed", "getaddrinfo broker.lan", "feed"] + nodelay)


def test_a_stalled_write_gives_up_within_the_esp8266_watchdog(tmp_path):
    out = run_lux("""
import time
from lux.mqtt import MQTTClient
class Stalled:
    def write(self, data):
        return None  # a full send buffer on a non-blocking socket
c = MQTTClient("id", "127.0.0.1", 1883)
c._sock = Stalled()
fed = []
c.feed = lambda: fed.append(1)
t = time.ticks_ms()
try:
    c._send(b"x" * 10)
except OSError as e:
    print("gave up", time.ticks_diff(time.ticks_ms(), t), len(fed))
""", tmp_path)
    words = out.split()
    assert words[0] == "gave" and int(words[2]) < 1500 and int(words[3]) >= 1, out


def test_a_crash_resets_within_the_esp8266_watchdog(tmp_path):
    out = run_lux("""
import time
from lux.node import Node
n = Node()
n.wdt_ms = 0
def broken():
    raise ValueError("broken")
n.step = broken
t = time.ticks_ms()
try:
    n.run()
except SystemExit:  # the simulated machine.reset() outside the runner
    print("reset after", time.ticks_diff(time.ticks_ms(), t))
""", tmp_path)
    assert "crashed: ValueError('broken',)" in out or "crashed: ValueError('broken')" in out
    assert int(out.split("reset after")[1]) < 1500, out


WIRED = """
import json
from lux import config, start
from lux.mqtt import UP
class Pwm10:  # ports/esp8266/machine_pwm.c: duty_u16 sets pwm_set_duty(duty * 1024 / 65535)
    duty = None
    def duty_u16(self, d=None):
        if d is None:  # and reads duty * 65535 / 1024
            return self.duty * 65535 // 1024
        self.duty = d * 1024 // 65535
    def freq(self):
        return 1000
class Adc8266:  # ports/esp8266/machine_adc.c: read() is the 10-bit value, read_u16() v * 65535 / 1024
    v = 1023
    def read(self):
        return self.v
    def read_u16(self):
        return self.v * 65535 // 1024
class Adc32:  # ports/esp32/machine_adc.c: read_u16 is raw << (16 - bits) | raw >> (2 * bits - 16)
    v = 4095
    def read_u16(self):
        return self.v << 4 | self.v >> 8
cfg = config.Config({"device_id": "n", "mqtt": {"host": "h"}, "dimmer": {"fade_ms": 0},
                     "sensor": {"oversample": 4}}, config.load_json("board.json"))
pwm, adc = Pwm10(), Adc8266() if cfg.chip == "ESP8266" else Adc32()
n = start.build(cfg, adc, pwm, None)
"""


def test_esp8266_pwm_never_rounds_a_lit_level_to_dark(tmp_path):
    out = run_lux(WIRED + """
dark = []
for tenth in range(1, 1001):
    n.apply("PWM", tenth / 10, 0)
    if pwm.duty == 0 or n.dimmer.duty == 0:
        dark.append(tenth / 10)
n.apply("PWM", 0, 0)
off = pwm.duty
sent = []
n.mqtt.state = UP
n.mqtt.publish = lambda topic, msg, retain=False, qos=0: sent.append(json.loads(msg))
n.apply("PWM", 1, 0)
print(json.dumps([dark, off, sent[-1]["duty"], sent[-1]["state"]]))
""", tmp_path)
    dark, off, duty, state = json.loads(out.splitlines()[-1])
    assert dark == [] and off == 0, out
    assert duty == 0.00098 and state == "ON"  # 64/65535 (2 digits under 0.001): what the LED does is what state reports


def test_adc_raw_is_the_ports_reading_on_each_port(tmp_path):
    code = WIRED + """
raws = []
for v in VALUES:
    adc.v = v
    n.sensor.sample()
    raws.append(n.sensor.raw)
print(raws)
"""
    assert run_lux(code.replace("VALUES", "(0, 1, 512, 1000, 1023)"), tmp_path).splitlines()[-1] \
        == "[0, 1, 512, 1000, 1023]"
    assert run_lux(code.replace("VALUES", "(0, 1, 2048, 4095)"), tmp_path, board="esp32").splitlines()[-1] \
        == "[0, 1, 2048, 4095]"


def test_a_failing_command_is_acknowledged_with_one_error_and_no_reconnect(mosquitto, tmp_path):
    """The storm: MemoryError importing lux.commands on a fragmented 38 KB heap. Before,
    the connection dropped without the PUBACK, the broker sent the command again, and
    the node reconnected in a loop. Here lux.commands always fails to load."""
    broker = mosquitto("allow_anonymous true\n")
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, firmware)
    (firmware / "lux" / "commands.py").write_text(
        'raise MemoryError("memory allocation failed, allocating 320 bytes")\n')
    observer = Observer(broker.port)
    node = Node(tmp_path / "fs", node_config(broker.port))
    node.env["MICROPYPATH"] = f"{SIM_BOARD}:{firmware}"
    node.start()
    try:
        node.expect("luxnode: connected to")
        observer.expect("luxnode/node-1/state")
        for value in (10, 20, 30):
            observer.publish("luxnode/node-1/set", json.dumps({"control": "PWM", "value": value}))
        for _ in range(3):
            assert observer.expect("luxnode/node-1/error") == {"error": "command failed: MemoryError"}
        # A command that works once the module loads again would now be applied:
        # the session is the same one, and no command came back.
        node.control("bench")
        node.expect("machine: bench")
        out = node.drain()
        assert "mqtt error" not in out and out.count("luxnode: connected to") == 1, out
        assert observer.count("luxnode/node-1/error") == 3
        assert broker.log_text().count("New client connected") == 2  # observer + node, once
    finally:
        node.stop()
        observer.close()


def test_announcements_that_fail_to_load_cost_no_connection(mosquitto, tmp_path):
    """The same on connect and at telemetry time: lux.announce cannot load. The node stays
    connected (once), keeps obeying commands, and tries its announcement again later."""
    broker = mosquitto("allow_anonymous true\n")
    firmware = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, firmware)
    (firmware / "lux" / "announce.py").write_text(
        'raise MemoryError("memory allocation failed, allocating 320 bytes")\n')
    observer = Observer(broker.port)
    node = Node(tmp_path / "fs", node_config(broker.port, telemetry_s=1))
    node.env["MICROPYPATH"] = f"{SIM_BOARD}:{firmware}"
    node.start()
    try:
        node.expect("luxnode: connected messages failed: MemoryError")
        node.expect("luxnode: connected messages failed: MemoryError")  # again at the next period
        observer.publish("luxnode/node-1/set", json.dumps({"control": "PWM", "value": 40}))
        assert observer.expect("luxnode/node-1/state")["value"] == 40
        out = node.drain()
        assert "mqtt error" not in out and "crashed" not in out, out
        assert broker.log_text().count("New client connected") == 2  # observer + node, once
    finally:
        node.stop()
        observer.close()
