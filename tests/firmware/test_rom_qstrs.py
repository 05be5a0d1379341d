"""The faithful build counts the qstrs a chip would intern: a name the firmware loads is interned
unless the image holds it. So the faithful ESP8266's image holds the firmware's names that a stock
ESP8266_GENERIC image holds (sim/board/esp8266_rom.py, frozen in), and none it lacks, or the
node's qstr count (test_heap32, against the budget of 300) reads wrong. Its simulated board's own
frozen modules write such text at run time (machine._sim_text) and name their own things apart.
The unix port's own C holds a few the chip lacks (UNIX_PORT_HELD), which the chip's count adds."""

import json
import subprocess

from tests.sim.faithful import faithful_binary
from tests.support.qstrs import UNIX_PORT_HELD, c_text, module_qstrs, read_rom
from luxnode.paths import FIRMWARE_DIR

PROBE = """
import _simchip, json
with open("names.json") as f:  # read, not written in this script: its literals would be interned
    NAMES = json.load(f)
held = []
for name in NAMES:
    before = _simchip.qstrs()[0]
    getattr(None, name, None)  # interns name unless the image holds it
    if _simchip.qstrs()[0] == before:
        held.append(name)
print(repr(held))
"""


def firmware_qstrs(*modules):
    names = set()
    for path in [FIRMWARE_DIR / m for m in modules] or sorted(FIRMWARE_DIR.rglob("*.py")):
        names |= module_qstrs(path.read_text(), str(path))
    return names


def held_by_image(binary, names, tmp_path):
    (tmp_path / "names.json").write_text(json.dumps(sorted(names)))
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run([binary, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"MICROPYPATH": ".frozen"})
    assert proc.returncode == 0, proc.stderr
    return set(eval(proc.stdout))


def test_the_faithful_esp8266_holds_the_firmware_names_a_chip_holds_and_no_more(tmp_path):
    names = firmware_qstrs()
    held = held_by_image(faithful_binary("esp8266"), names, tmp_path)
    chip = read_rom()
    extra = held - chip
    assert extra == UNIX_PORT_HELD, (f"held by the faithful image, not by an ESP8266's: {sorted(extra)}, "
                                     f"UNIX_PORT_HELD says {sorted(UNIX_PORT_HELD)}")
    # ... and every node loads them, so the chip's count is the faithful one plus len(UNIX_PORT_HELD)
    assert UNIX_PORT_HELD <= firmware_qstrs("lux/config.py", "lux/node.py")
    missing = names & chip - held
    assert not missing, f"held by an ESP8266's image, not by the faithful one: {sorted(missing)}"
    assert len(names) > 400 and len(held) > 150  # the probe saw the firmware and the image


def test_the_rom_list_holds_what_the_esp8266_build_compiles_and_no_more():
    rom = read_rom()
    # in C the port does not compile (py/emitinlinerv32.c, extmod/machine_i2s.c, modtls_mbedtls.c)
    # or behind an #if its mpconfigport.h switches off (str.partition, math.gamma)
    assert not {"rem", "shift", "psk_key", "partition", "gamma"} & rom
    # its C modules, a static qstr of makeqstrdata.py, its frozen modules' names and long strings
    assert {"WLAN", "__hash__", "MQTTClient", "Authorization"} <= rom


def test_c_string_literals_read_as_makeqstrdata_writes_them():
    assert c_text("%d: %d (%s)") == "%d: %d (%s)"
    assert c_text("\\x0a\\x4e\\x65\\x74") == "\nNet"
