"""An emulated ESP32: Espressif's QEMU fork with the chip's real mask ROM, on a pty.

Found in $LUXNODE_QEMU_ESP32, else in shared/qemu-esp32 beside the repository or
one of its parent folders (bin/qemu-system-xtensa, share/esp32-v3-rom*.bin).
"""

import os
import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV = "LUXNODE_QEMU_ESP32"
FLASH_SIZE = 4 * 1024 * 1024
# GPIO strapping pins that make the ROM wait in its serial bootloader (download mode).
DOWNLOAD_STRAPS = ["-global", "driver=esp32.gpio,property=strap_mode,value=0x0f"]
# Guest time from instructions run, not the host clock: the UART model paces received bytes
# by (virtual) time, and on a loaded host the ROM loader then misses bytes of esptool's blocks
# ("format of the received message is invalid"); shift=auto keeps the pace near real time.
ICOUNT = ["-icount", "shift=auto"]


def candidates() -> list[Path]:
    if os.environ.get(ENV):
        return [Path(os.environ[ENV])]
    return [parent / "shared" / "qemu-esp32" for parent in REPO.parents]


def find() -> tuple[Path | None, str]:
    """(the emulator's folder, "") or (None, why it cannot run here)."""
    for folder in candidates():
        binary = folder / "bin" / "qemu-system-xtensa"
        if not binary.is_file() or not (folder / "share" / "esp32-v3-rom.bin").is_file():
            continue
        try:
            probe = subprocess.run([binary, "-machine", "help"], capture_output=True, text=True, timeout=30)
        except OSError as exc:
            return None, f"{binary} does not start: {exc}"
        if probe.returncode != 0 or "esp32" not in probe.stdout:
            reason = (probe.stderr.strip().splitlines() or ["no esp32 machine"])[0]
            return None, f"{binary} does not run here ({reason}); see README 'An emulated ESP32'"
        return folder, ""
    where = " or ".join(str(c) for c in candidates()[:2])
    return None, (f"no emulated ESP32: Espressif's qemu-system-xtensa with the ESP32 ROMs is not in {where} "
                  f"(set {ENV})")


def blank_flash(path: Path) -> Path:
    path.write_bytes(b"\xff" * FLASH_SIZE)
    return path


class Esp32:
    """One emulator run on a flash file; its UART is a pty that luxnode, esptool and mpremote open."""

    def __init__(self, home: Path, flash: Path, log: Path, download: bool = False):
        self.home, self.flash, self.log, self.download = home, flash, log, download
        self.proc = None
        self.port = None

    def start(self, timeout: float = 30) -> "Esp32":
        args = [self.home / "bin" / "qemu-system-xtensa", "-L", self.home / "share", "-machine", "esp32",
                "-display", "none", "-monitor", "none",
                "-drive", f"file={self.flash},if=mtd,format=raw", "-serial", "pty"]
        if self.download:
            args += DOWNLOAD_STRAPS + ICOUNT
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([str(a) for a in args], stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = re.search(r"redirected to (/dev/pts/\d+)", self.log.read_text(errors="replace"))
            if found:
                self.port = found.group(1)
                return self
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"the emulator gave no pty within {timeout:g} s: {self.log.read_text()[-500:]}")

    def console(self, until: bytes, timeout: float, send: bytes = b"", start: bytes = b"") -> bytes:
        """What the chip prints after ``send``, from the last ``start`` up to ``until``. Open the
        pty before the output matters: QEMU drops what the chip prints while nothing has it open."""
        import serial

        def since_start(seen: bytes) -> bytes:
            at = seen.rfind(start) if start else 0
            return seen[at:] if at >= 0 else b""

        seen = b""
        deadline = time.monotonic() + timeout
        with serial.Serial(self.port, 115200, timeout=0.5) as uart:
            uart.write(send)
            while until not in since_start(seen) and time.monotonic() < deadline:
                seen += uart.read(4096)
        if until not in since_start(seen):
            raise AssertionError(f"no {until!r} on the emulated ESP32 within {timeout:g} s: {seen[-800:]!r}")
        return since_start(seen)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()  # QEMU flushes the flash file on SIGTERM
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
