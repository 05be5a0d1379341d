"""The faithful ESP8266 has the language the chip has, not the unix port's: the features
ports/esp8266/mpconfigport.h switches off (MicroPython 1c3c201) are off in its build too
(sim/board/simchip/chip_config.h), so firmware that uses one fails here as on the chip. The
ESP32's build keeps them, as that port does."""

import subprocess

import pytest

from tests.sim.faithful import chip_root, faithful_binary, run_chip
from luxnode.paths import FIRMWARE_DIR

# Each probe is code that runs where the feature is there and raises where it is not.
PROBES = {
    "str.partition": "'a=b'.partition('=')",
    "str.rpartition": "'a=b'.rpartition('=')",
    "str.center": "'a'.center(3)",
    "str.splitlines": "'a\\nb'.splitlines()",
    "__setattr__": ("class C:\n def __setattr__(s, n, v):\n  raise StopIteration\n"
                    "try:\n C().x = 1\nexcept StopIteration:\n pass\nelse:\n raise AttributeError"),
    "compile": "compile",
    "execfile": "execfile",
    "NotImplemented": "NotImplemented",
    "pow with a modulus": "pow(2, 3, 5)",
    "complex": "complex",
    "slice.indices": "slice(1, 2).indices",
    "math.inf": "__import__('math').inf",
    "math.isclose": "__import__('math').isclose",
    "math.gamma": "__import__('math').gamma",
    "math.factorial": "__import__('math').factorial",
    "random.random": "__import__('random').random",
    "random.randint": "__import__('random').randint",
    "binascii.crc32": "__import__('binascii').crc32",
    "hashlib.md5": "__import__('hashlib').md5",
    "sys.exc_info": "__import__('sys').exc_info",
    "sys.atexit": "__import__('sys').atexit",
    "sys.executable": "__import__('sys').executable",
    "micropython.mem_total": "__import__('micropython').mem_total",
    "a module's __file__": "__import__('json').__file__",
    "os.getenv": "__import__('os').getenv",
    "os.system": "__import__('os').system",
    "_thread": "__import__('_thread')",
    "termios": "__import__('termios')",
}
# Kept: what both ports have (a probe that proves the build still runs what the chip runs).
KEPT = {
    "str.split": "'a=b'.split('=', 1)",
    "str.rsplit": "'a:b:c'.rsplit(':', 1)",
    "setattr": "setattr",  # builtins either way: the option is about a class's __setattr__
    "delattr": "delattr",
    "random.getrandbits": "__import__('random').getrandbits",
    "property": "property",
    "a module's __dict__": "__import__('json').__dict__",
}
CODE = """
for name, code in PROBES:
    try:
        exec(code)
        print('has', name)
    except (AttributeError, NameError, TypeError, NotImplementedError, ImportError):
        print('missing', name)
"""


def probe(tmp_path, board, probes):
    code = f"PROBES = {sorted(probes.items())!r}\n" + CODE
    out = run_chip(chip_root(tmp_path, board), code)
    return {line.split(" ", 1)[1]: line.split(" ", 1)[0] for line in out}


def test_the_faithful_esp8266_lacks_what_the_esp8266_port_leaves_out(tmp_path):
    found = probe(tmp_path, "esp8266", {**PROBES, **KEPT})
    assert [name for name in PROBES if found[name] != "missing"] == []
    assert [name for name in KEPT if found[name] != "has"] == []


def test_the_faithful_esp8266_reports_as_the_chip(tmp_path):
    code = ("import sys, gc\nprint(sys.platform, gc.collect(), sys.implementation._machine)\n"
            "def f(a):\n  pass\ntry:\n  f()\nexcept TypeError as e:\n  print(e)")
    # sys.platform as the port sets it; gc.collect() returns nothing; errors as NORMAL words them
    # (DETAILED, the unix port's, names the function: "f() takes 1 positional arguments ...")
    assert run_chip(chip_root(tmp_path, "esp8266"), code) == [
        "esp8266 None ESP module with ESP8266", "function takes 1 positional arguments but 0 were given"]


@pytest.mark.parametrize("board, has", [("esp8266", "has"), ("esp32", "missing")])
def test_the_esp8266s_esp_module_has_its_wifi_sleep_type(tmp_path, board, has):
    # ports/esp8266/modesp.c (mqtt_as sets esp.sleep_type(0) on an ESP8266); the ESP32's esp has none
    found = probe(tmp_path, board, {"esp.sleep_type": "__import__('esp').sleep_type(0)"})
    assert found == {"esp.sleep_type": has}


def test_the_faithful_esp32_keeps_them_as_its_port_does(tmp_path):
    found = probe(tmp_path, "esp32", {name: PROBES[name] for name in ("str.partition", "__setattr__", "math.isclose")})
    assert set(found.values()) == {"has"}


@pytest.mark.parametrize("board", ["esp8266", "esp32"])
def test_lux_forget_unloads_a_module_on_the_chip(tmp_path, board):
    # lux.forget() (delattr on the package) runs on the chip's language, unloading for good
    root = chip_root(tmp_path, board)
    code = ("import sys, lux, lux.dns\nlux.forget('dns')\n"
            "print('lux.dns' in sys.modules, 'dns' in lux.__dict__)\n"
            "lux.forget('dns')\nprint('again')")
    proc = subprocess.run([faithful_binary(board), "-c", code], cwd=root, capture_output=True, text=True,
                          timeout=30, env={"MICROPYPATH": f".frozen:{FIRMWARE_DIR}"})
    assert (proc.returncode, proc.stdout.split("\n")) == (0, ["False False", "again", ""]), proc.stderr
