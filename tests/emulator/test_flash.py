"""luxnode flash against an emulated ESP32's real ROM bootloader (esptool without its stub, no
DTR/RTS), then the written flash booting MicroPython."""

from tests.emulator.qemu_esp32 import FLASH_SIZE

OFFSET = 0x1000  # boards/esp32.json


def test_a_board_file_for_another_chip_is_refused_by_the_chip_itself(flashed):
    result = flashed.mismatch
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == ("luxnode flash: error: the chip on {} is an ESP32, but board esp32s3 is "
                                     "ESP32-S3: use --board esp32").format(result.args[result.args.index("--port") + 1])
    assert "Writing at" not in result.stdout


def test_the_rom_detects_the_chip_and_esptool_writes_and_verifies_at_the_boards_offset(flashed):
    out = flashed.write.stdout
    assert flashed.write.returncode == 0, out[-2000:] + flashed.write.stderr
    assert "ESP32 image, 1556784 bytes, 4 segment(s), checksum valid, SHA-256 valid" in out
    assert "Chip type:          ESP32-D0WDQ6" in out
    assert ": ESP32; writing ESP32_GENERIC at 0x1000" in out
    assert "Wrote 1556784 bytes at 0x00001000" in out and "Hash of data verified." in out
    assert "flashed and verified at 115200 baud; reset the board (EN) without BOOT held" in out
    assert "Running stub" not in out and "Changing baud" not in out  # ROM loader, ROM rate

    flash = flashed.flash.read_bytes()
    image = flashed.image.read_bytes()
    assert len(flash) == FLASH_SIZE
    assert flash[:OFFSET] == b"\xff" * OFFSET  # nothing written below the board's offset
    assert flash[OFFSET:OFFSET + len(image)] == image


def test_the_slow_write_shows_progress(flashed):
    progress = [line for line in flashed.write.stdout.splitlines() if line.startswith("Writing at 0x")]
    percents = [float(line.split("%")[0].split()[-1]) for line in progress if "%" in line]
    assert len(percents) > 100 and percents == sorted(percents) and percents[-1] == 100.0
    print(f"luxnode flash: 1.5 MB through the emulated ROM loader in {flashed.seconds:.0f} s")


def test_the_written_flash_boots_micropython_to_its_repl(board):
    log = board.boot_log  # from the moment the pty was opened: QEMU drops the ROM's first lines
    assert b"MicroPython v1.16-237" in log and log.endswith(b">>> ")
    assert b"Traceback" not in log
