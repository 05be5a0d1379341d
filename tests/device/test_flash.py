"""luxnode flash: image checks, offsets, esptool arguments and error paths, with real esptool and no chip."""

import os

import pytest

from luxnode import boards
from luxnode.device import flash, image
from luxnode.errors import LuxnodeError

from tests.device.esp_rom import EspRom
from tests.device.helpers import one_line_error, run_cli
from tests.device.images import build


@pytest.fixture
def empty_port():
    """A serial port with nothing behind it: a pty whose other end never answers."""
    master, slave = os.openpty()
    yield os.ttyname(slave)
    os.close(slave)
    os.close(master)


@pytest.mark.parametrize("board, chip, offset", [
    ("esp32", "esp32", "0x1000"), ("esp32s3", "esp32s3", "0x0"),
    ("esp32c3", "esp32c3", "0x0"), ("esp8266", "esp8266", "0x0"),
])
def test_write_arguments_put_the_image_at_the_boards_offset(board, chip, offset, tmp_path):
    args = flash.write_args(boards.load(board), "/dev/ttyUSB0", tmp_path / "fw.bin", 460800, erase=False)
    size = ["--flash-size", "detect"] if chip == "esp8266" else []
    assert args == ["--chip", chip, "--port", "/dev/ttyUSB0", "--baud", "460800",
                    "--before", "default-reset", "--after", "hard-reset",
                    "write-flash", *size, offset, str(tmp_path / "fw.bin")]
    erase = flash.write_args(boards.load(board), "/dev/ttyUSB0", tmp_path / "fw.bin", 115200, erase=True)
    assert erase[erase.index("write-flash") + 1] == "--erase-all"


def test_without_stub_or_reset_esptool_uses_the_roms_loader_and_leaves_dtr_rts_alone(tmp_path):
    rom_only = flash.Loader(stub=False, reset=False)
    args = flash.write_args(boards.load("esp32"), "/dev/pts/3", tmp_path / "fw.bin", 115200, False, rom_only)
    assert args[args.index("--before"):args.index("write-flash")] == [
        "--before", "no-reset", "--after", "no-reset", "--no-stub"]


@pytest.mark.parametrize("board", ["esp32", "esp8266"])
def test_esptool_accepts_the_arguments_it_is_given(board, tmp_path, empty_port):
    """The built command line parses in esptool itself (it then fails to reach a chip, as it should)."""
    import esptool
    from esptool.util import FatalError

    fw = build(board, tmp_path / "fw.bin")
    for loader in (flash.Loader(), flash.Loader(stub=False, reset=False)):
        args = flash.write_args(boards.load(board), empty_port, fw, 115200, True, loader)
        with pytest.raises(FatalError, match="Failed to connect"):
            esptool.main(["--connect-attempts", "1", *args])


@pytest.mark.parametrize("board", ["esp32", "esp32s3", "esp32c3", "esp8266"])
def test_a_valid_image_for_the_boards_chip_passes(board, tmp_path):
    chip = boards.load(board)["chip"]
    summary = image.check(build(flash.esptool_chip(chip), tmp_path / "fw.bin"), chip, "hint")
    assert summary.chip == chip and summary.has_digest is (chip != "ESP8266")
    assert str(summary).endswith("checksum valid" if chip == "ESP8266" else "checksum valid, SHA-256 valid")


@pytest.mark.parametrize("built, board", [("esp32s3", "esp32"), ("esp32", "esp32c3"),
                                          ("esp32", "esp8266"), ("esp8266", "esp32")])
def test_an_image_for_another_chip_is_refused(built, board, tmp_path, capsys):
    fw = build(built, tmp_path / "fw.bin")
    code, _, err = run_cli(capsys, "flash", "--port", "/dev/ttyUSB9", "--board", board, "--firmware", fw)
    one_line_error(code, err, f"is an image for {built.upper().replace('ESP32S3', 'ESP32-S3')}",
                   f"the board is {boards.load(board)['chip']}", boards.load(board)["micropython"]["build"])


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"#!/bin/sh\necho not firmware\n", "first byte 0x23"),
    (b"UF2\n" + bytes(508), ".uf2"),
])
def test_a_file_that_is_not_an_image_is_refused(content, reason, tmp_path, capsys):
    fw = tmp_path / "fw.bin"
    fw.write_bytes(content)
    code, _, err = run_cli(capsys, "flash", "--port", "/dev/ttyUSB9", "--board", "esp32", "--firmware", fw)
    one_line_error(code, err, "is not a firmware image for ESP32", reason)


def test_a_corrupt_or_truncated_image_is_refused(tmp_path):
    good = build("esp32", tmp_path / "good.bin").read_bytes()
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(good[:40] + bytes([good[40] ^ 0xFF]) + good[41:])  # a data byte
    with pytest.raises(LuxnodeError, match="does not match: the file is corrupt"):
        image.check(corrupt, "ESP32", "hint")
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(good[:40])
    with pytest.raises(LuxnodeError, match=r"not a firmware image for ESP32 \(End of file reading segment"):
        image.check(truncated, "ESP32", "hint")


def test_without_firmware_it_names_the_build_to_download(capsys):
    code, out, _ = run_cli(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", "esp32s3")
    assert code == 1
    assert "ESP32_GENERIC_S3" in out and "https://micropython.org/download/ESP32_GENERIC_S3/" in out
    assert "v1.29 or newer" in out and "offset 0x0" in out
    assert "--firmware" in out


def test_a_missing_firmware_file_says_where_to_get_one(tmp_path, capsys):
    code, _, err = run_cli(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", "esp8266",
                           "--firmware", tmp_path / "nope.bin")
    one_line_error(code, err, "not found", "https://micropython.org/download/ESP8266_GENERIC/")


def test_the_sim_board_has_nothing_to_flash(capsys):
    code, _, err = run_cli(capsys, "flash", "--port", "/dev/ttyUSB0", "--board", "sim")
    one_line_error(code, err, "nothing to flash")


def test_no_board_connected(tmp_path, capsys):
    fw = build("esp32", tmp_path / "fw.bin")
    code, _, err = run_cli(capsys, "flash", "--port", tmp_path / "ttyUSB0", "--board", "esp32", "--firmware", fw)
    one_line_error(code, err, "no board on", "plug the board in")


def test_a_port_with_no_bootloader_behind_it(tmp_path, empty_port, capsys):
    fw = build("esp32", tmp_path / "fw.bin")
    code, out, err = run_cli(capsys, "flash", "--port", empty_port, "--board", "esp32", "--firmware", fw,
                             "--connect-attempts", "1")
    one_line_error(code, err, "no ESP bootloader answered", "hold BOOT")


@pytest.fixture
def rom():
    """An ESP ROM bootloader on a pty: answers sync and chip detection, refuses the rest."""
    roms = []

    def start(chip):
        roms.append(EspRom(chip))
        return roms[-1].port

    yield start
    for each in roms:
        each.close()


# An ESP32 meets a wrong board file, and the real write at 0x1000, in tests/emulator (Espressif's
# ROM in QEMU); the model here stands in for the chips no emulator here runs.
@pytest.mark.parametrize("chip, board, use", [("ESP8266", "esp32", "esp8266"), ("ESP32-S3", "esp32", "esp32s3"),
                                              ("ESP32-C3", "esp32s3", "esp32c3")])
def test_a_board_file_for_another_chip_is_refused(chip, board, use, rom, tmp_path, capsys):
    fw = build(flash.esptool_chip(boards.load(board)["chip"]), tmp_path / "fw.bin")
    code, _, err = run_cli(capsys, "flash", "--port", rom(chip), "--board", board, "--firmware", fw)
    one_line_error(code, err, f"is an {chip}, but board {board} is {boards.load(board)['chip']}",
                   f"use --board {use}")


def test_erase_wipes_the_whole_flash_first(tmp_path, capsys):
    fw = build("esp32", tmp_path / "fw.bin")
    rom = EspRom("ESP32")
    try:
        rom.flash[0x300000:0x300010] = b"old filesystem.."
        code, _, err = run_cli(capsys, "flash", "--port", rom.port, "--board", "esp32", "--firmware", fw, "--erase")
        assert code == 0, err
        assert rom.flash[0x300000:0x300010] == b"\xff" * 16
    finally:
        rom.close()


def test_a_failed_fast_write_is_retried_once_at_115200(tmp_path, capsys):
    fw = build("esp32", tmp_path / "fw.bin")
    rom = EspRom("ESP32", fail_above=115200)  # a bridge that loses data at high rates
    try:
        code, out, err = run_cli(capsys, "flash", "--port", rom.port, "--board", "esp32", "--firmware", fw,
                                 "--baud", "921600")
        assert code == 0, err
        assert rom.flash[0x1000:0x1000 + len(fw.read_bytes())] == fw.read_bytes()
    finally:
        rom.close()
    assert "write at 921600 baud failed" in out and "retrying at 115200 baud" in out
    assert "flashed and verified at 115200 baud" in out


def test_a_write_that_fails_at_both_rates_is_one_line(tmp_path, capsys):
    fw = build("esp32", tmp_path / "fw.bin")
    rom = EspRom("ESP32", fail_above=1)  # every write fails
    try:
        code, out, err = run_cli(capsys, "flash", "--port", rom.port, "--board", "esp32", "--firmware", fw)
    finally:
        rom.close()
    assert out.count("Uploading stub flasher") == 2  # two real esptool runs, each connected afresh
    one_line_error(code, err, "Failed to write compressed data", "write failed at 460800 and 115200 baud, 2 attempts")


def test_a_busy_port(tmp_path, empty_port, capsys):
    import serial

    fw = build("esp32", tmp_path / "fw.bin")
    holder = serial.Serial(empty_port, exclusive=True)  # a serial monitor left open
    try:
        code, _, err = run_cli(capsys, "flash", "--port", empty_port, "--board", "esp32", "--firmware", fw)
    finally:
        holder.close()
    one_line_error(code, err, "is busy", "close it and retry")
