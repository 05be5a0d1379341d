"""Which resets count towards safe mode's boot-loop limit (lux.safemode), per port, as each
port's machine.reset_cause() reports them (ports/esp32/modmachine.c, ports/esp8266/modmachine.c):
a Ctrl-D soft reset is SOFT_RESET on the ESP32 family and counts nothing there; the ESP8266
reports its last hardware cause for it, and SOFT_RESET for the machine.reset() a crash ends in,
so there it counts (the tools forget the count before their own soft reset:
tests/device/test_boot_count.py)."""

import json

import pytest

from tests.support.micropython import FAKEBOARD, FIRMWARE, run

BOOTS = """
import json, machine
open("board.json", "w").write(json.dumps({"chip": %r, "capabilities": {"rtc_memory": True}}))
from lux import safemode
machine.RTC().memory(b"LXB\\x02")  # two boots in a row without a stable run
out = []
for boot in range(3):
    safemode.active = False
    out.append([safemode.check(), machine.RTC().memory().hex()])
print(json.dumps(out))
"""

SOFT_RESET, HARD_RESET = "5", "2"


def boots(tmp_path, chip, cause):
    return json.loads(run(BOOTS % chip, path=(FAKEBOARD, FIRMWARE), cwd=tmp_path, env={"FAKE_RESET_CAUSE": cause}))


@pytest.mark.parametrize("chip", ["ESP32", "ESP32-S3", "ESP32-C3"])
def test_soft_resets_on_the_esp32_family_leave_the_count_as_it_was(tmp_path, chip):
    assert boots(tmp_path, chip, SOFT_RESET) == [[False, "4c584202"]] * 3


def test_soft_resets_on_the_esp8266_count_as_its_crash_resets_do(tmp_path):
    assert boots(tmp_path, "ESP8266", SOFT_RESET) == [[False, "4c584203"], [True, "4c584200"], [False, "4c584201"]]


def test_a_hard_reset_counts_on_every_port(tmp_path):
    assert boots(tmp_path, "ESP32", HARD_RESET)[:2] == [[False, "4c584203"], [True, "4c584200"]]
