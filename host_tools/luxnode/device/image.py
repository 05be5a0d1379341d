"""Checking a firmware file offline, as esptool's image-info reads it, before any write.

A MicroPython download for an ESP chip starts with the second-stage bootloader
image: magic byte 0xE9, and for the ESP32 family an extended header whose chip
id names the chip the image was built for. The ESP8266 format has no chip id.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

from luxnode.errors import LuxnodeError

ESP_IMAGE_MAGIC = 0xE9
ESP8266_V2_MAGIC = 0xEA


@dataclass
class ImageSummary:
    """A checked image: its checksum, and its SHA-256 digest where it has one, are valid."""

    chip: str          # esptool's CHIP_NAME, e.g. "ESP32-S3"
    size: int
    segments: int
    has_digest: bool   # the ESP8266 format has none

    def __str__(self):
        digest = ", SHA-256 valid" if self.has_digest else ""
        return (f"{self.chip} image, {self.size} bytes, {self.segments} segment(s), "
                f"checksum valid{digest}")


def image_chip(data: bytes) -> str:
    """The chip an image header was built for (esptool's image-info detection)."""
    from esptool.targets import CHIP_DEFS

    extended = data[8:24]
    if len(extended) == 16 and extended[-1] in (0, 1):
        chip_id = extended[4]
        for rom in CHIP_DEFS.values():
            if getattr(rom, "IMAGE_CHIP_ID", None) == chip_id:
                return rom.CHIP_NAME
    return "ESP8266"


def check(path: Path, chip: str, download_hint: str) -> ImageSummary:
    """Refuse (clearly) anything that is not a valid firmware image for ``chip``."""
    from esptool.bin_image import LoadFirmwareImage

    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LuxnodeError(f"firmware file {path} not found: {download_hint}") from None
    except IsADirectoryError:
        raise LuxnodeError(f"{path} is a folder: pass the downloaded .bin file") from None
    except OSError as exc:
        raise LuxnodeError(f"cannot read {path}: {exc.strerror}") from None
    refuse = f"{path} is not a firmware image for {chip}"
    if not data:
        raise LuxnodeError(f"{refuse} (the file is empty): {download_hint}")
    if data[0] not in (ESP_IMAGE_MAGIC, ESP8266_V2_MAGIC):
        hint = " (it looks like a .uf2 file; ESP boards need the .bin)" if data[:4] == b"UF2\n" else ""
        raise LuxnodeError(f"{refuse} (first byte {data[0]:#04x}, an image starts with 0xe9){hint}: {download_hint}")
    if chip != "ESP8266":
        built_for = image_chip(data) if data[0] == ESP_IMAGE_MAGIC else "ESP8266"
        if built_for != chip:
            raise LuxnodeError(f"{path} is an image for {built_for}, but the board is {chip}: {download_hint}")
    try:
        with quiet_esptool():
            image = LoadFirmwareImage(chip.lower().replace("-", ""), data)
        problem = _integrity_problem(image)
    except Exception as exc:  # FatalError, struct.error, IndexError... on a truncated or foreign file
        from esptool.util import FatalError

        problem = str(exc).splitlines()[0] if isinstance(exc, FatalError) else "truncated or corrupt"
        image = None
    if problem and chip == "ESP8266" and data[0] == ESP_IMAGE_MAGIC and image_chip(data) != "ESP8266":
        # The ESP8266 format has no chip id: a foreign image shows as a broken one.
        raise LuxnodeError(f"{path} is an image for {image_chip(data)}, but the board is {chip}: {download_hint}")
    if problem:
        raise LuxnodeError(f"{refuse} ({problem}): {download_hint}")
    return ImageSummary(chip, len(data), len(image.segments), bool(getattr(image, "append_digest", False)))


def _integrity_problem(image) -> str | None:
    if image.checksum != image.calculate_checksum():
        return "its checksum does not match: the file is corrupt, download it again"
    if getattr(image, "append_digest", False) and image.stored_digest != image.calc_digest:
        return "its SHA-256 digest does not match: the file is corrupt, download it again"
    return None


@contextlib.contextmanager
def quiet_esptool():
    """esptool logs warnings while it parses; luxnode reports the outcome itself."""
    from esptool.logger import log

    log.set_verbosity("silent")
    try:
        yield
    finally:
        log.set_verbosity("auto")
