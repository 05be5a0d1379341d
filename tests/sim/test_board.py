"""The simulated board modules, run on the real MicroPython unix port; under
LUXNODE_FAITHFUL=<chip>, as frozen into the board-faithful 32-bit build (each test keeps the
board it names: these check the board model itself)."""

import json
import os
import subprocess

from luxnode import boards
from luxnode.sim.node import BOARD_MODULES
from tests.support.micropython import FAITHFUL, executable


def board_root(tmp_path, board="sim", **config):
    (tmp_path / "board.json").write_text(json.dumps(boards.load(board)))
    base = {"sensor": {"dark_raw": 200, "bright_raw": 3900}, "dimmer": {"invert": True}}
    base.update(config)
    (tmp_path / "config.json").write_text(json.dumps(base))
    return tmp_path


def run_board(root, code, env=None, stdin=None, timeout=20, returncode=0):
    environ = dict(os.environ, MICROPYPATH=".frozen" if FAITHFUL else str(BOARD_MODULES), LUXNODE_SIM_NOISE="0")
    environ.update(env or {})
    proc = subprocess.run([executable(), "-c", code], cwd=root, env=environ,
                          input=stdin, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == returncode, proc.stdout + proc.stderr
    return proc.stdout.split()


SETTLE = """
import machine, time
adc = machine.ADC(machine.Pin(34))
adc.atten(machine.ADC.ATTN_11DB)
def settled():
    time.sleep_ms(1500)   # > 7 time constants of the LED-to-sensor lag
    return adc.read_u16() >> 4
"""


def test_dark_led_reads_the_ambient_light_on_the_calibrated_scale(tmp_path):
    root = board_root(tmp_path)
    out = run_board(root, SETTLE + "print(adc.read_u16() >> 4, adc.read())", env={"LUXNODE_SIM_AMBIENT": "50"})
    assert out == ["2050", "2050"]  # 200 + (3900 - 200) * 50 %


def test_led_adds_its_light_through_an_inverting_stage(tmp_path):
    root = board_root(tmp_path)
    code = SETTLE + """
pwm = machine.PWM(machine.Pin(25), freq=1000, duty_u16=32768, invert=True)
print(settled())
pwm.duty_u16(0)        # inverted pin stays high: the stage turns the LED off
print(settled())
"""
    half, off = map(int, run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "10"}))
    assert abs(half - (200 + 3700 * (10 + 70 * 0.5) / 100)) <= 3
    assert abs(off - (200 + 370)) <= 3


def test_forgetting_the_inversion_lights_the_led_fully(tmp_path):
    root = board_root(tmp_path)
    code = SETTLE + "pwm = machine.PWM(machine.Pin(25), freq=1000, duty_u16=0)\nprint(settled())"
    (full,) = run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "10"})
    assert abs(int(full) - (200 + 3700 * 0.8)) <= 3


def test_deinit_drops_the_pin_low_which_an_inverting_stage_turns_fully_on(tmp_path):
    root = board_root(tmp_path)
    code = SETTLE + """
pwm = machine.PWM(machine.Pin(25), freq=1000, duty_u16=0, invert=True)
print(settled())
pwm.deinit()
print(settled())
"""
    off, on = map(int, run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "10"}))
    assert abs(off - 570) <= 3 and abs(on - (200 + 3700 * 0.8)) <= 3


def test_light_follows_the_led_with_a_first_order_lag(tmp_path):
    root = board_root(tmp_path, dimmer={"invert": False})
    code = SETTLE + """
pwm = machine.PWM(machine.Pin(25), freq=1000, duty_u16=0)
settled()
pwm.duty_u16(65535)
t0 = time.ticks_ms()
time.sleep_ms(200)
print(adc.read_u16() >> 4, time.ticks_diff(time.ticks_ms(), t0))
"""
    raw, elapsed = map(int, run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "0"}))
    import math
    expected = 200 + 3700 * 0.7 * (1 - math.exp(-elapsed / 200))
    assert abs(raw - expected) < 40  # one time constant: about 63 % of the step


def test_noise_is_small_and_centred(tmp_path):
    root = board_root(tmp_path)
    code = SETTLE + "s = [adc.read() for i in range(400)]\nprint(min(s), max(s), sum(s) // len(s))"
    low, high, mean = map(int, run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "50", "LUXNODE_SIM_NOISE": "0.3"}))
    assert low < high
    assert 2050 - 12 <= low and high <= 2050 + 12
    assert abs(mean - 2050) <= 3


def test_attenuation_other_than_the_calibrated_one_skews_the_reading(tmp_path):
    root = board_root(tmp_path)
    code = """
import machine
adc = machine.ADC(machine.Pin(34))
print(adc.read())                      # powers up at the maximum (11 dB), as the ESP32 port does
adc.atten(machine.ADC.ATTN_0DB)
print(adc.read())                      # 0 dB: saturates
print(machine.ADC(machine.Pin(35)).read())   # nothing wired there
"""
    assert run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "50"}) == ["2050", "4095", "0"]


def test_pins_follow_the_config_override(tmp_path):
    root = board_root(tmp_path, pins={"adc": 36, "pwm": 26})
    code = SETTLE.replace("Pin(34)", "Pin(36)") + """
machine.PWM(machine.Pin(25), freq=1000, duty_u16=65535, invert=True)   # not the LED
print(settled())
"""
    assert run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "50"}) == ["2050"]


def test_esp8266_has_no_pwm_invert_nor_attenuation(tmp_path):
    root = board_root(tmp_path, board="esp8266", sensor={"dark_raw": 20, "bright_raw": 1000})
    code = """
import machine
try:
    machine.PWM(machine.Pin(14), freq=1000, duty_u16=0, invert=True)
except TypeError as e:
    print("TypeError")
try:
    machine.PWM(machine.Pin(14), freq=5000)
except ValueError as e:
    print("ValueError")
adc = machine.ADC(0)
try:
    adc.atten(3)
except AttributeError:
    print("AttributeError")
print(adc.read())
"""
    assert run_board(root, code, env={"LUXNODE_SIM_AMBIENT": "50"}) == ["TypeError", "ValueError", "AttributeError", "510"]


def test_control_lines_on_stdin_then_power_lost_when_the_runner_goes(tmp_path):
    root = board_root(tmp_path)
    code = SETTLE + "print(settled())\nprint(settled())"
    out = run_board(root, code, env={"LUXNODE_SIM_CONTROL": "stdin", "LUXNODE_SIM_AMBIENT": "0"},
                    stdin="ambient 25\nheap\nambient nope\n", returncode=-9)
    # The first read applies every pending line, then finds stdin closed: the board loses power.
    lines = " ".join(out).split("machine: ")
    assert lines[1].split()[0] == "heap" and int(lines[1].split()[1]) > 0
    assert lines[2:] == ["bad ambient value nope ", "power lost"]


def test_wlan_connects_at_once_after_activation(tmp_path):
    root = board_root(tmp_path)
    code = """
import network
w = network.WLAN(network.STA_IF)
try:
    w.connect("lab", "pw")
except OSError:
    print("inactive")
w.active(True)
print(w.isconnected(), w.status() == network.STAT_IDLE)
w.connect("lab", "pw")
print(w.isconnected(), w.status() == network.STAT_GOT_IP, w.status("rssi"), w.ifconfig()[0])
print(network.WLAN(network.STA_IF) is w, len(w.config("mac")))
"""
    assert run_board(root, code) == ["inactive", "False", "True", "True", "True", "-55", "127.0.0.1", "True", "6"]



def test_wlan_loses_the_access_point_and_rejoins_by_itself(tmp_path):
    root = board_root(tmp_path)
    code = """
import network
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect("lab", "pw")
print(w.isconnected(), w.status() == network.STAT_NO_AP_FOUND)
network._set_access_point(True)
print(w.isconnected())
network._set_access_point(False)
print(w.isconnected(), w.status() == network.STAT_BEACON_TIMEOUT)
network._set_access_point(True)
print(w.isconnected())
w.disconnect()
network._set_access_point(False)
network._set_access_point(True)
print(w.isconnected())
"""
    # LUXNODE_SIM_AP=0: the access point is out of range at boot.
    assert run_board(root, code, env={"LUXNODE_SIM_AP": "0"}) == ["False", "True", "True", "False", "True", "True",
                                                                  "False"]

def test_reset_cause_and_rtc_memory_come_from_the_runner(tmp_path):
    root = board_root(tmp_path)
    rtc = tmp_path / "rtc"
    rtc.write_bytes(b"kept")
    code = "import machine\nprint(machine.reset_cause() == machine.WDT_RESET, machine.RTC().memory())"
    assert run_board(root, code, env={"LUXNODE_SIM_RESET_CAUSE": "WDT_RESET", "LUXNODE_SIM_RTC": str(rtc)}) == ["True", "b'kept'"]
    assert run_board(root, "import machine\nprint(machine.reset_cause() == machine.PWRON_RESET)") == ["True"]
