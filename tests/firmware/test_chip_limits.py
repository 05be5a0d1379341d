"""The firmware under the real ports' limits, each point from MicroPython's port sources
(master 1c3c201): socket option numbers of the ESP8266's lwIP binding, its 10-bit PWM
and its ADC formula, its 1.6-3.2 s software watchdog (nothing may block that long), and
a message that fails to be handled (MemoryError on a 38 KB heap) costing only itself.
Where the simulated board is kinder than the chip, the chip's behaviour is a small fake
here."""

import json
import shutil

from luxnode.paths import BOARDS_DIR
from tests.firmware.node import SIM_BOARD, Node, Observer, node_config
from tests.support.micropython import FIRMWARE, run


def run_lux(code, tmp_path, board="esp8266"):
    shutil.copy(BOARDS_DIR / f"{board}.json", tmp_path / "board.json")
    (tmp_path / "config.json").write_text("{}")
    return run(code, path=(SIM_BOARD, FIRMWARE), cwd=tmp_path)


def test_tcp_nodelay_by_the_ports_names_and_the_watchdog_fed_around_dns(tmp_path):
    # extmod/modlwip.c (ESP8266): TCP_NODELAY is TF_NODELAY (0x40); any other option
    # number prints "Warning: lwip.setsockopt() not implemented" and does nothing.
    out = run_lux("""
import lux.mqttconn as conn
from lux.mqtt import MQTTClient
events = []
class Sock:
    def setsockopt(self, level, opt, value):
        events.append("setsockopt %d %d %d" % (level, opt, value))
        if (level, opt) != (6, 0x40):
            print("Warning: lwip.setsockopt() not implemented")
    def setblocking(self, flag): pass
    def connect(self, addr): pass
class LwipSocket:
    IPPROTO_TCP = 6
    TCP_NODELAY = 0x40
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
""", tmp_path)
    assert "not implemented" not in out
    assert out.strip().splitlines()[-1] == str(["feed", "getaddrinfo broker.lan", "feed", "setsockopt 6 64 1"])


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


def test_esp8266_pwm_never_rounds_a_lit_level_to_dark(tmp_path):
    # ports/esp8266/machine_pwm.c: duty_u16 sets pwm_set_duty(duty * 1024 / 65535), 10 bits.
    out = run_lux("""
import json
from lux import config
from lux.dimmer import Dimmer
class Pwm10:
    duty = None
    def duty_u16(self, d):
        self.duty = d * 1024 // 65535
cfg = config.Config({"device_id": "n", "mqtt": {"host": "h"}}, config.load_json("board.json"))
pwm = Pwm10()
d = Dimmer(pwm, False, 2.2, 0.0, 1.0, cfg.pwm_least_u16)
dark = []
for tenth in range(1, 1001):
    d.set_level(tenth / 10, 0, 0)
    if pwm.duty == 0 or d.duty == 0:
        dark.append(tenth / 10)
d.set_level(0, 0, 0)
print(json.dumps([cfg.pwm_least_u16, dark, pwm.duty, d.visible(0.0001)]))
""", tmp_path)
    least, dark, off, visible = json.loads(out)
    assert least == 64 and dark == [] and off == 0, out
    assert visible == 64 / 65535  # what the LED does is what state reports


def test_esp8266_adc_raw_is_the_ports_reading(tmp_path):
    # ports/esp8266/machine_adc.c: read() is the 10-bit value, read_u16() is v * 65535 / 1024.
    out = run_lux("""
from lux import config
from lux.sensor import LightSensor
class Adc8266:
    v = 1023
    def read(self):
        return self.v
    def read_u16(self):
        return self.v * 65535 // 1024
board = config.load_json("board.json")
cfg = config.Config({"device_id": "n", "mqtt": {"host": "h"}}, board)
adc = Adc8266()
raws = []
for v in (0, 1, 512, 1000, 1023):
    adc.v = v
    s = LightSensor(*config.adc_reader(cfg, adc), 0, 1023, oversample=4)
    s.sample()
    raws.append(s.raw)
print(raws)
""", tmp_path)
    assert out.strip() == "[0, 1, 512, 1000, 1023]"


def test_esp32_adc_raw_from_read_u16(tmp_path):
    # ports/esp32/machine_adc.c: read_u16 is raw << (16 - bits) | raw >> (2 * bits - 16).
    out = run_lux("""
from lux import config
from lux.sensor import LightSensor
class Adc32:
    v = 4095
    def read_u16(self):
        return self.v << 4 | self.v >> 8
cfg = config.Config({"device_id": "n", "mqtt": {"host": "h"}}, config.load_json("board.json"))
adc = Adc32()
raws = []
for v in (0, 1, 2048, 4095):
    adc.v = v
    s = LightSensor(*config.adc_reader(cfg, adc), 0, 4095, oversample=4)
    s.sample()
    raws.append(s.raw)
print(raws)
""", tmp_path, board="esp32")
    assert out.strip() == "[0, 1, 2048, 4095]"


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
