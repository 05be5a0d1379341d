"""Sensor maths, dimmer curves and the AUTO controller on the MicroPython unix port."""

import json
import shutil

import pytest

from luxnode.paths import BOARDS_DIR
from tests.firmware.node import SIM_BOARD
from tests.support.micropython import FIRMWARE, run


def mp(code):
    return json.loads(run("import json\n" + code).strip().splitlines()[-1])


def test_calibrated_span_maps_to_percent_and_clamps():
    got = mp("""
from lux.sensor import to_percent
print(json.dumps([to_percent(r, 200, 3900) for r in (0, 200, 2050, 3900, 4095)] +
                 [to_percent(r, 3900, 200) for r in (3900, 2050, 200)]))""")
    assert got == [0.0, 0.0, 50.0, 100.0, 100.0, 0.0, 50.0, 100.0]


def test_oversampling_smoothing_deadband_and_interval():
    got = mp("""
from lux.sensor import LightSensor
reads = iter([100 << 4] * 4 + [300 << 4] * 4 + list(range(0, 4000 << 4, 1000 << 4)) + [2000 << 4] * 400)
s = LightSensor(lambda: next(reads), 4, 0, 4000, oversample=4, smoothing=0.5, deadband=1.0, interval_ms=1000)
out = [s.due(0)]                     # nothing measured yet
s.sample(); out += [s.raw, s.light, s.due(0)]   # first reading is always published
s.sample(); out += [s.raw, s.light, s.due(10)]  # moved 2.5 % -> past the deadband
s.sample(); out += [s.raw]           # mean of 4 oversampled reads
for _ in range(30): s.sample()
out += [round(s.light, 3), s.due(20), s.due(30)]   # settled; moved enough since the last publish
out += [s.due(500), s.due(1030), s.due(1040)]      # within the deadband: only when the interval elapses
print(json.dumps(out))""")
    assert got == [False, 100, 2.5, True, 300, 5.0, True, 1500, 50.0, True, False, False, True, False]


def test_gamma_curve_min_max_and_inverse():
    got = mp("""
from lux.dimmer import curve
from lux.control import level_of
c = [round(curve(l, 2.2, 0.05, 0.9), 4) for l in (0, 1, 50, 100)]
inv = [round(level_of(curve(l, 2.2, 0.05, 0.9), 2.2, 0.05, 0.9), 3) for l in (10, 50, 90)]
print(json.dumps([c, inv, curve(50, 1.0, 0, 1)]))""")
    curve, inverse, linear = got
    assert curve[0] == 0.0 and curve[3] == 0.9
    assert 0.05 <= curve[1] < 0.0501
    assert curve[2] == round(0.05 + 0.85 * 0.5 ** 2.2, 4)
    assert inverse == [10.0, 50.0, 90.0]
    assert linear == 0.5


def test_dimmer_fades_without_blocking_and_inverts_in_software():
    got = mp("""
from lux.dimmer import Dimmer
class FakePWM:
    def __init__(self): self.writes = []
    def duty_u16(self, d=None):   # an ideal 16-bit PWM
        if d is None: return self.writes[-1]
        self.writes.append(d)
    def freq(self): return 1000
p = FakePWM()
d = Dimmer(p, True, gamma=1.0)  # asks the port its least step from dark (65535, inverted) and ends dark
probe, p.writes = p.writes, []
d.set_level(100, 1000, 0)       # starts a fade; nothing written yet
out = [probe, round(d.least * 65535), p.writes[:], d._fade != 0]
d.poll(250); out.append(p.writes[-1])
d.poll(500); out.append(p.writes[-1])
d.poll(1000); out += [p.writes[-1], d._fade != 0, d.level]
n = len(p.writes); d.poll(2000); out.append(len(p.writes) == n)   # no rewrite of the same duty
d.set_level(0, 0, 2000); out.append(p.writes[-1])
d.hold(0.25, 25.0); out += [p.writes[-1], d.level]
print(json.dumps(out))""")
    assert got == [[65535, 65534, 65535], 1, [], True, 65535 - 16384, 65535 - 32768, 0, False, 100, True, 65535,
                   65535 - 16384, 25.0]


def test_pi_controller_reaches_target_and_does_not_wind_up():
    got = mp("""
from lux.control import PI
pi = PI(0.5, 1.0, 0.0, 1.0)
pi.reset(0.0)
def settle(ambient, target, steps=300):
    global light
    for _ in range(steps):
        u = pi.step(target, light, 0.2)
        light = min(100.0, ambient + 70 * u)   # LED adds up to 70 %
    return round(light, 2), round(u, 3)
light = 20.0
a = settle(20, 60)                 # reachable: holds the target
b = settle(20, 100)                # unreachable: output saturates at 1.0
i_after_saturation = pi.i
c = settle(20, 50, steps=15)       # comes back quickly: no wind-up
d = settle(80, 50)                 # ambient above target: LED off
class FakePWM:
    d = 0
    def duty_u16(self, d=None):
        if d is None: return self.d
        self.d = d
    def freq(self): return 1000
from lux.dimmer import Dimmer
dim = Dimmer(FakePWM(), False, 2.0, 0.1, 0.9)
pi.reset(0.0)
pi.drive(dim, 100, 0, 0.2)   # far below target: the duty goes up, within min..max, no fade
e = [round(dim.duty, 3), round(dim.level, 1), dim.pwm.d]
print(json.dumps([a, b, i_after_saturation, c[1] < 1.0, d, e]))""")
    a, b, i_sat, recovered, d, e = got
    duty = 1.0 * 1.0 * 0.2 + 0.5 * 1.0  # integrator after one step (ki e dt) + proportional part (kp e)
    assert e == [round(duty, 3), round(100 * ((duty - 0.1) / 0.8) ** 0.5, 1), int(duty * 65535 + 0.5)]
    assert abs(a[0] - 60) < 0.1
    assert b == [90.0, 1.0] and i_sat <= 1.0
    assert recovered
    assert d == [80.0, 0.0]


LIT_LEVELS = """
import json, machine
from lux import config, start
from lux.mqtt import UP
cfg = config.load()
n = start.build(cfg, config.adc(cfg), config.pwm(cfg), None)
sent = []
n.mqtt.state = UP
n.mqtt.publish = lambda topic, msg, retain=False, qos=0: sent.append(json.loads(msg))
dark = []
for level in [tenth / 10 for tenth in range(1, 50)] + list(range(5, 101)):
    n.apply("PWM", level, 0)
    if sent[-1]["state"] == "ON" and machine._the_bench().led <= 0:
        dark.append(level)
n.apply("PWM", 1, 0)
one = [sent[-1]["state"], sent[-1]["duty"], machine._the_bench().led > 0]
n.apply("PWM", 0, 0)
print(json.dumps([dark, round(n.dimmer.least * 65535), one, sent[-1]["state"], machine._the_bench().led]))
"""


@pytest.mark.parametrize("board, freq, invert, least", [
    ("esp32c3", 1000, False, 8),     # 13 bits at the default 1 kHz (14-bit timer, less one)
    ("esp32c3", 40000, True, 64),    # 10 bits; inverted by the port (PWM(invert=True))
    ("esp32s3", 1000, True, 8),
    ("esp32", 40000, False, 64),     # 16 bits only up to about 1.2 kHz
    ("esp32", 1000, True, 1),
    ("esp8266", 1000, False, 64),    # 10 bits at any frequency
    ("esp8266", 1000, True, 64),     # inverted in software: the least step down from full
])
def test_a_lit_level_lights_the_led_on_every_port_and_frequency(tmp_path, board, freq, invert, least):
    # The simulated board's PWM keeps what the chip's does (host_tools/luxnode/sim/board/machine.py):
    # 1 % is duty_u16 3 after the gamma curve, below every ESP32-family step at 1 kHz but the ESP32's.
    shutil.copy(BOARDS_DIR / f"{board}.json", tmp_path / "board.json")
    (tmp_path / "config.json").write_text(json.dumps({
        "device_id": "n", "mqtt": {"host": "h"}, "dimmer": {"fade_ms": 0, "freq": freq, "invert": invert}}))
    out = run(LIT_LEVELS, path=(SIM_BOARD, FIRMWARE), cwd=tmp_path)
    dark, found, (state, duty, lit), off_state, off_led = json.loads(out.splitlines()[-1])
    assert dark == [], f"lit levels the LED shows dark on {board} at {freq} Hz: {dark}"
    assert found == least
    # 1 % after gamma 2.2, or the least step where that is dark; reported (2 digits under 0.001), never 0
    assert (state, lit) == ("ON", True) and duty == pytest.approx(max(0.01 ** 2.2, least / 65535), rel=0.06)
    assert off_state == "OFF" and off_led == 0
