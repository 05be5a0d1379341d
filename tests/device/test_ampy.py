"""--via ampy: deploy and provision through adafruit-ampy's plain raw REPL.

ampy soft-resets the board each time it enters the raw REPL, so the "board" here
is the unix port behind a relay that reboots it in place (tests/device/resetting_board.py).
"""

import json
import subprocess
import sys

import pytest

from luxnode.paths import REPO

from tests.device.helpers import run_cli, tiny_firmware
from tests.support.net import wait_for


@pytest.fixture
def rebooting_board(tmp_path):
    root, link = tmp_path / "node", tmp_path / "node.tty"
    root.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "tests.device.resetting_board", str(root), str(link)],
                            cwd=REPO)
    wait_for(lambda: link.exists() or proc.poll() is not None, what="the board's pty")
    assert proc.poll() is None
    yield root, str(link), proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=5)


def test_deploy_and_provision_via_ampy(tmp_path, rebooting_board, lab_home, capsys):
    root, port, relay = rebooting_board
    source = tiny_firmware(tmp_path / "fw")
    code, out, err = run_cli(capsys, "deploy", "--port", port, "--via", "ampy", "--source", source, "--no-reset")
    assert code == 0, err
    assert "5 copied" in out
    assert (root / "lux" / "util.mpy").read_bytes()[:2] == b"M\x06"

    code, out, err = run_cli(capsys, "deploy", "--port", port, "--via", "ampy", "--source", source, "--no-reset")
    assert code == 0 and "0 copied, 5 up to date" in out, err

    code, out, err = run_cli(capsys, "provision", "--port", port, "--via", "ampy", "--device-id", "amp-1",
                             "--wifi-ssid", "lab", "--broker", "127.0.0.1")
    assert code == 0, err
    config = json.loads((root / "config.json").read_text())
    assert config["mqtt"]["tls"]["key"] == json.loads(
        (lab_home / "registry.json").read_text())["devices"]["amp-1"]["psk_key"]
    wait_for(lambda: relay.poll() is not None, what="the final soft reset to start the firmware")
