"""luxnode deploy and provision over the emulated ESP32's UART to real MicroPython 1.16, a release
too old for the firmware: refused before anything is written, or with --force written (compiled
for its .mpy v5) and booting to one line that says what to flash."""

import json
import shutil

import pytest

from luxnode.device.link import BoardLink
from luxnode.paths import FIRMWARE_DIR

from tests.emulator.conftest import luxnode

STEP_S = "120"  # --timeout: the emulated UART takes code in at a few hundred bytes a second
# What a board too old for the firmware runs: boot.py, main.py, needs.py and the lux/ modules
# they import (the whole firmware takes the emulated UART about three minutes).
BOOT_PATH = ("boot.py", "main.py", "needs.py", "lux/__init__.py", "lux/safemode.py")


def firmware_boot_path(root):
    for name in BOOT_PATH:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIRMWARE_DIR / name, root / name)
    return root


def board_exec(port: str, code: str) -> str:
    """Run code in the raw REPL through mpremote's transport, as luxnode opens it: a reply the
    emulator drops while it notices the pty open again is asked for once more."""
    with BoardLink(port, timeout=float(STEP_S)) as link:
        return link.exec(code).decode().strip()


def listing(port: str) -> list:
    return json.loads(board_exec(port, "import os, json; print(json.dumps(sorted(os.listdir())))"))


@pytest.fixture(scope="module")
def session(board, tmp_path_factory):
    """Every step a user takes with this board, in order; the tests check what each said and did."""
    work = tmp_path_factory.mktemp("esp32-deploy")
    home, port = work / "home", board.chip.port
    source = firmware_boot_path(work / "firmware")
    steps = {"files_before": listing(port)}

    def run(name, *argv):
        steps[name] = luxnode(*argv, "--port", port, "--timeout", STEP_S, home=home, timeout=900)

    provision = ("provision", "--device-id", "emu-1", "--wifi-ssid", "lab", "--wifi-password", "lab-secret",
                 "--broker", "127.0.0.1")
    run("deploy_refused", "deploy", "--source", source)
    run("psk_refused", *provision, "--tls", "psk")
    steps["files_after_refusals"] = listing(port)
    run("deploy", "deploy", "--source", source, "--force", "--no-reset")
    run("deploy_again", "deploy", "--source", source, "--force", "--no-reset")
    with open(source / "boot.py", "a") as f:
        f.write("# changed\n")
    run("deploy_changed", "deploy", "--source", source, "--force", "--no-reset")
    steps["mpy"] = board_exec(port, "import lux.safemode\nprint(open('lux/safemode.mpy','rb').read(2), "
                                    "lux.safemode.active)")
    run("provision", *provision, "--tls", "none", "--force")
    # The reset provision did, once more with the console open from the start (Ctrl-D, soft reset).
    steps["reboot_log"] = board.chip.console(b"\n>>> ", 300, send=b"\r\x04", start=b"soft reboot")
    steps["config"] = json.loads(board_exec(port, "print(open('config.json').read())"))
    steps["home"] = home
    return steps


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_deploy_names_the_micropython_found_and_needed_before_writing(session):
    result = session["deploy_refused"]
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "MicroPython 1.16.0 on /dev/pts/" in result.stderr
    assert "is too old: this firmware needs 1.26 or newer" in result.stderr
    assert "luxnode flash --port /dev/pts/" in result.stderr and "--board esp32 --firmware ESP32_GENERIC-" in result.stderr
    assert session["files_after_refusals"] == session["files_before"]


def test_provision_refuses_tls_psk_below_1_29_before_writing(session):
    result = session["psk_refused"]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "MicroPython 1.16.0 on /dev/pts/" in result.stderr and "TLS-PSK needs 1.29 or newer" in result.stderr
    assert "config.json" not in session["files_after_refusals"]


def test_deploy_compiles_for_the_boards_mpy_v5_and_copies_only_changes(session):
    first = ok(session["deploy"])
    assert "MicroPython 1.16.0 on ET-Board with ESP32, .mpy v5.0 (xtensawin), board esp32" in first
    assert "(mpy-cross -b 5 -O0 -march=xtensawin)" in first
    for name in ("boot.py", "main.py", "needs.py", "lux/__init__.mpy", "lux/safemode.mpy", "board.json"):
        assert f"copied  {name} (" in first, first
    assert "deployed: 6 copied, 0 up to date, 0 removed" in first
    assert "deployed: 0 copied, 6 up to date, 0 removed" in ok(session["deploy_again"])
    changed = ok(session["deploy_changed"])
    assert "copied  boot.py (" in changed and "deployed: 1 copied, 5 up to date, 0 removed" in changed
    assert session["mpy"] == "b'M\\x05' False"  # a .mpy v5 file that MicroPython 1.16 imports


def test_provision_writes_the_config_and_credentials_and_resets_the_board(session):
    out = ok(session["provision"])
    assert "provisioned emu-1 (esp32): broker 127.0.0.1:1883, tls none" in out
    assert "lab-secret" not in out
    registry = json.loads((session["home"] / "registry.json").read_text())
    entry = registry["devices"]["emu-1"]
    config = session["config"]
    assert config["device_id"] == "emu-1" and config["board"] == "esp32"
    assert config["wifi"] == {"ssid": "lab", "password": "lab-secret"}
    assert config["mqtt"]["username"] == entry["username"] and config["mqtt"]["password"] == entry["password"]
    assert "tls" not in config["mqtt"]


def test_a_board_too_old_for_the_firmware_boots_to_one_line_and_keeps_its_repl(session, board):
    log = session["reboot_log"].decode(errors="replace")
    ours = [line for line in log.splitlines() if line.startswith("luxnode")]
    assert ours == ["luxnode: MicroPython 1.16.0 is too old: this firmware needs 1.26 or newer; flash it with "
                    "luxnode flash --port PORT --board esp32 --firmware ESP32_GENERIC-<date>-v<version>.bin "
                    "(application skipped, the REPL stays available)"], log
    assert "Traceback" not in log and log.endswith(">>> ")
    assert board_exec(board.chip.port, "print(6 * 7)") == "42"
