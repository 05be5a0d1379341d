"""lux.wifi's retry and lux.safemode's decisions, on the unix port with the small
fake board in tests/firmware/fakeboard (machine.py, network.py)."""

import json

from tests.support.micropython import FAKEBOARD, FIRMWARE, run


def test_wifi_retries_until_it_joins():
    out = run("""
import json, network
from lux import wifi
logs = []
wlan = wifi.station("node-1", logs.append)
w = wifi.WiFi(wlan, "lab", "pw", logs.append, attempt_ms=100)
seen = [w.poll(0), network._state["connects"]]        # first attempt fails
seen += [w.poll(50), network._state["connects"]]      # within the attempt: no new connect
seen += [w.poll(100), network._state["connects"]]     # next attempt joins
seen += [w.poll(110)]
network._state["up"] = False                          # the access point goes away
network._state["join_on"] = 99
w = wifi.WiFi(wlan, "lab", w.password, logs.append, attempt_ms=100, tried=120)  # as the node does on a loss
seen += [w.poll(120), w.poll(215), network._state["connects"], w.poll(225), network._state["connects"]]
seen += [w.poll(325), w.poll(425), network._state["connects"]]
print(json.dumps([seen, logs, network._state["hostname"], network._state["saved"]]))
""", path=(FAKEBOARD, FIRMWARE))
    seen, logs, hostname, saved = json.loads(out)
    assert seen == [False, 1, False, 1, False, 2, True, False, False, 2, False, 3, False, False, 5]
    assert logs == ["wifi: connected to lab as 10.0.0.7"]
    assert hostname == "node-1"
    # 5 connects, yet the mode written once and the network once a boot (the node makes a
    # WiFi per link loss, with the password only until it was given): the ESP8266's SDK saves
    # both to flash whenever they are given
    assert saved == 2


def test_wifi_leaves_a_network_the_port_kept_for_the_configured_one():
    """The station is up on another network when the node starts (an ESP32 after a soft reset, an
    ESP8266's saved one): the configured network is joined at once, with its password."""
    out = run("""
import json, network
from lux import wifi
logs = []
wlan = wifi.station("node-1", logs.append)
wlan.active(True)
wlan.connect("old", "old-pw")  # what the port kept from before this boot
network._state.update(up=True, join_on=1, connects=0)
w = wifi.WiFi(wlan, "lab", "pw", logs.append, attempt_ms=100)
seen = [w.poll(0), network._state["ssid"], network._state["key"], w.poll(10), w.password]
print(json.dumps([seen, logs]))
""", path=(FAKEBOARD, FIRMWARE))
    seen, logs = json.loads(out)
    assert seen == [False, "lab", "pw", True, None]
    assert logs == ["wifi: on old, not lab: joining it", "wifi: connected to lab as 10.0.0.7"]


SAFEMODE = """
import json, machine
open("board.json", "w").write(json.dumps({"safe_mode_pin": 0, "capabilities": {"rtc_memory": %s}}))
from lux import safemode
out = []
for boot in range(%d):
    safemode.active = False
    out.append([safemode.check(), safemode.reason, machine.RTC().memory().hex()])
safemode.stable()
out.append(machine.RTC().memory().hex())
print(json.dumps(out))
"""


def mp_safemode(tmp_path, boots, rtc=True, **env):
    return json.loads(run(SAFEMODE % (rtc, boots), path=(FAKEBOARD, FIRMWARE), cwd=tmp_path, env=env))


def test_boot_loop_counter_enters_safe_mode_then_tries_again(tmp_path):
    out = mp_safemode(tmp_path, 5)
    assert [o[0] for o in out[:5]] == [False, False, False, True, False]
    assert out[3][1] == "3 boots in a row without a stable run"
    assert [o[2] for o in out[:5]] == ["4c584201", "4c584202", "4c584203", "4c584200", "4c584201"]
    assert out[5] == "4c584200"  # a stable run forgets the count


def test_power_on_starts_counting_afresh(tmp_path):
    out = mp_safemode(tmp_path, 5, FAKE_RESET_CAUSE="1")
    assert [o[0] for o in out[:5]] == [False] * 5


def test_safe_mode_pin_held_low(tmp_path):
    out = mp_safemode(tmp_path, 1, rtc=False, FAKE_PIN_LOW="0")
    assert out[0][:2] == [True, "pin 0 held low at boot"]
    assert mp_safemode(tmp_path, 1, rtc=False)[0][0] is False
