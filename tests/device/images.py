"""Minimal but valid ESP firmware images, built with esptool's own image classes."""

from pathlib import Path

from esptool.bin_image import ELFSection
from esptool.targets import CHIP_DEFS


def build(chip: str, path: Path) -> Path:
    """A one-segment bootloader-style image for ``chip`` (esptool spelling: esp32, esp32s3...)."""
    image = CHIP_DEFS[chip].BOOTLOADER_IMAGE()
    image.entrypoint = 0x40080000
    image.segments = [ELFSection(b".dram0.data", 0x3FFB0000, bytes(range(64)), 0)]
    data = image.save(None)
    if isinstance(data, tuple):  # the ESP8266 class returns (irom, image)
        data = data[1]
    path.write_bytes(data)
    return path
