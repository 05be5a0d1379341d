"""./flash.sh on a board that already runs MicroPython (the unix port on a pty): deploy + provision."""

import json
import os
import subprocess

from luxnode.paths import REPO

from tests.device.images import build


def run_flash_sh(*args, stdin="", env=None):
    return subprocess.run([str(REPO / "flash.sh"), *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=120, env=dict(os.environ, **(env or {})))


def test_flash_sh_deploys_and_provisions_asking_for_the_password(pty_board, lab_home):
    board = pty_board()
    result = run_flash_sh(board.port, "sim", stdin="lab-wifi\nwifi-pass-123\nnode-7\n127.0.0.1:8883\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== 2/3 deploy" in result.stdout and "== 3/3 provision node-7" in result.stdout
    assert "wifi-pass-123" not in result.stdout + result.stderr
    config = json.loads((board.root / "config.json").read_text())
    assert config["wifi"] == {"ssid": "lab-wifi", "password": "wifi-pass-123"}
    assert config["mqtt"]["host"] == "127.0.0.1" and config["mqtt"]["port"] == 8883
    assert (board.root / "lux").is_dir() and (board.root / "main.py").exists()
    assert "node-7" in json.loads((lab_home / "registry.json").read_text())["devices"]
    board.wait_exit()  # provisioning ended with a soft reset


def test_flash_sh_stops_at_a_bad_firmware_file_before_touching_anything(tmp_path, lab_home):
    bad = build("esp32s3", tmp_path / "s3.bin")
    result = run_flash_sh(tmp_path / "ttyUSB0", "esp32", stdin="lab\n\nnode-1\nhost\n",
                          env={"FIRMWARE": str(bad)})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("luxnode flash: error: ")
    assert "is an image for ESP32-S3" in result.stderr
    assert "== 2/3" not in result.stdout and not (lab_home / "registry.json").exists()


def test_flash_sh_without_a_firmware_file_names_the_build(tmp_path, lab_home):
    result = run_flash_sh(tmp_path / "ttyUSB0", "esp8266", stdin="")
    assert result.returncode == 2
    assert "ESP8266_GENERIC" in result.stdout and "is needed" in result.stderr
    assert "variant FLASH_2M_ROMFS if the module has 2 MiB" in result.stdout  # room for the firmware


def test_flash_sh_with_an_unknown_board_stops_before_asking_anything(tmp_path, lab_home):
    result = run_flash_sh(tmp_path / "ttyUSB0", "esp33", stdin="lab\n")
    assert result.returncode == 2
    assert result.stderr.strip() == ("luxnode flash: error: unknown board 'esp33': choose one of "
                                     "esp32, esp32c3, esp32s3, esp8266, sim")
    assert "WiFi" not in result.stdout + result.stderr
