"""The simulated board refuses what the real ports refuse (checked against the
MicroPython sources: ports/esp8266/machine_adc.c takes an ADC id, not a Pin)."""

import json

from luxnode.sim.node import BOARD_MODULES
from tests.sim.test_board import board_root, run_board
from tests.support.micropython import FIRMWARE


def test_esp8266_adc_takes_its_id_not_a_pin(tmp_path):
    root = board_root(tmp_path, "esp8266", sensor={"dark_raw": 50, "bright_raw": 970})
    out = run_board(root, """
import machine
try:
    machine.ADC(machine.Pin(0))
    print("accepted")
except TypeError:
    print("refused")
print(machine.ADC(0).read_u16() > 0)
""")
    assert out == ["refused", "True"]


def test_esp32_adc_takes_a_pin(tmp_path):
    root = board_root(tmp_path, "esp32")
    out = run_board(root, "import machine\nprint(machine.ADC(machine.Pin(34)).read_u16() > 0)")
    assert out == ["True"]


def test_firmware_opens_the_esp8266_adc_by_id(tmp_path):
    root = board_root(tmp_path, "esp8266", device_id="n1", mqtt={"host": "h"},
                      sensor={"dark_raw": 50, "bright_raw": 970})
    code = """
import sys
sys.path.append(%r)
from lux import config
cfg = config.load()
a = config.adc(cfg)
print(a.read_u16() > 0, cfg.adc_bits)
""" % str(FIRMWARE)
    assert run_board(root, code) == ["True", "10"]
    assert json.loads((root / "board.json").read_text())["adc"]["atten_db"] is None
    assert BOARD_MODULES.is_dir()


def test_esp8266_watchdog_takes_no_timeout_but_its_own(tmp_path):
    root = board_root(tmp_path, "esp8266", sensor={"dark_raw": 50, "bright_raw": 970})
    out = run_board(root, """
import machine
try:
    machine.WDT(timeout=30000)
    print("accepted")
except ValueError:
    print("refused")
machine.WDT(timeout=5000).feed()
print("ok")
""")
    assert out == ["refused", "ok"]


def test_esp8266_tls_is_axtls_and_esp32_keeps_mbedtls(tmp_path):
    code = "import machine\nmachine.PWM(machine.Pin(5), freq=100)\nimport tls\nprint(hasattr(tls, 'CERT_REQUIRED'))"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    esp8266 = board_root(tmp_path / "a", "esp8266", sensor={"dark_raw": 50, "bright_raw": 970})
    esp32 = board_root(tmp_path / "b", "esp32")
    assert run_board(esp8266, code) == ["False"]
    assert run_board(esp32, code) == ["True"]
