"""``luxnode flash``: write MicroPython to an ESP32/ESP8266 with esptool.

Offline first (the image must be a valid image for the board's chip), then the
chip on the port must be the board file's chip, then esptool writes the image
at the board's offset and verifies it (esptool 5 checks every write by MD5).
A failed write is retried once at the ROM's 115200 baud.

``--no-stub`` writes through the ROM's own loader (slower) and ``--no-reset``
leaves DTR/RTS alone: for emulators and boards without auto-reset wiring,
which must already be in download mode.
"""

import contextlib
from dataclasses import dataclass
from pathlib import Path

from luxnode.errors import LuxnodeError

FAST_BAUD = 460800
SAFE_BAUD = 115200
NOT_RESPONDING = (
    "no ESP bootloader answered on {port}: hold BOOT, press and release RESET (EN), release BOOT, "
    "then retry (and check that the USB cable carries data)"
)


def esptool_chip(chip: str) -> str:
    """esptool's --chip spelling of a board file's chip ("ESP32-S3" -> "esp32s3")."""
    return chip.lower().replace("-", "")


def flashable(board: dict) -> dict:
    if not board.get("flash_offset"):
        raise LuxnodeError(f"board {board['name']} has no flash chip (it runs on the unix port); nothing to flash")
    return board


def download_hint(board: dict) -> str:
    mp = board["micropython"]
    version = f" v{mp['min_version_psk']} or newer" if mp.get("min_version_psk") else ""
    return f"download the {mp['build']}{version} .bin from {mp['download']}"


def instructions(board: dict, port: str) -> str:
    mp = board["micropython"]
    lines = [
        f"luxnode does not download firmware. For {board['description']} ({board['chip']}):",
        f"  1. open {mp['download']}",
        f"  2. download the latest release .bin of {mp['build']}"
        + (f" (v{mp['min_version_psk']} or newer: TLS-PSK needs it)" if mp.get("min_version_psk") else "")
        + (f", variant {mp['romfs_variant']} if the module has 2 MiB of flash or more (its ROMFS partition"
           " holds the firmware's code out of the heap: luxnode deploy --romfs)" if mp.get("romfs_variant") else ""),
        f"  3. luxnode flash --port {port} --board {board['name']} --firmware {mp['build']}-<date>-v<version>.bin",
        f"It is written at offset {board['flash_offset']}.",
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Loader:
    """How esptool reaches the chip: its stub flasher or the ROM's loader; DTR/RTS resets or none."""

    stub: bool = True
    reset: bool = True

    @property
    def before(self) -> str:
        return "default-reset" if self.reset else "no-reset"

    def options(self) -> list[str]:
        return (["--before", self.before, "--after", "hard-reset" if self.reset else "no-reset"]
                + ([] if self.stub else ["--no-stub"]))


def write_args(board: dict, port: str, firmware: Path, baud: int, erase: bool,
               loader: Loader = Loader()) -> list[str]:
    """esptool's command line for writing ``firmware`` at the board's offset."""
    args = ["--chip", esptool_chip(board["chip"]), "--port", port, "--baud", str(baud),
            *loader.options(), "write-flash"]
    if erase:
        args.append("--erase-all")
    if board["chip"] == "ESP8266":
        # MicroPython's ESP8266 image sizes its filesystem from the header: set the real size.
        args += ["--flash-size", "detect"]
    return args + [board["flash_offset"], str(firmware)]


def esptool_error(port: str, exc: BaseException) -> LuxnodeError:
    import serial

    from luxnode.device import serial_errors

    if isinstance(exc, (serial.SerialException, OSError)) and not _is_fatal(exc):
        return serial_errors.from_serial_exception(port, exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Failed to connect" in text or "No serial data received" in text:
        return LuxnodeError(NOT_RESPONDING.format(port=port))
    if "Wrong boot mode" in text:
        return LuxnodeError(f"the board on {port} is not in download mode: hold BOOT while you press RESET, then retry")
    if "Could not open" in text or "could not open port" in text:
        # esptool folds every reason into one message: open the port once more to tell them apart.
        return serial_errors.from_serial_exception(port, serial_errors.open_error(port) or exc)
    return LuxnodeError(f"esptool on {port}: {text}")


def _is_fatal(exc) -> bool:
    from esptool.util import FatalError

    return isinstance(exc, FatalError)


def connect(port: str, chip: str, attempts: int, loader: Loader = Loader()):
    """An esptool connection to the ROM bootloader on ``port`` (``chip`` "auto" detects)."""
    import serial
    from esptool.cmds import connect_esp
    from esptool.util import FatalError

    from luxnode.device.image import quiet_esptool

    try:
        with quiet_esptool():
            return connect_esp(port=port, chip=chip, initial_baud=SAFE_BAUD, connect_attempts=attempts,
                               before=loader.before)
    except (FatalError, serial.SerialException, OSError) as exc:
        raise esptool_error(port, exc) from None


def disconnect(esp) -> None:
    # esptool leaves a connection it did not open to its owner: release the port lock.
    with contextlib.suppress(Exception):
        esp._port.close()


def detect_chip(port: str, attempts: int, loader: Loader = Loader()) -> str:
    """The CHIP_NAME of the chip in download mode on ``port``."""
    esp = connect(port, "auto", attempts, loader)
    try:
        return esp.CHIP_NAME
    finally:
        disconnect(esp)


def write(board: dict, port: str, firmware: Path, baud: int, erase: bool, say, attempts: int = 3,
          loader: Loader = Loader()) -> int:
    """Write with esptool; retry once at 115200 baud (a ROM left waiting after a garbled block
    takes a fresh connection). Returns the baud that worked."""
    import esptool
    import serial
    from esptool.util import FatalError

    failures = []
    for attempt, rate in enumerate((baud, SAFE_BAUD)):  # as asked first; the safe rate once more
        esp = connect(port, esptool_chip(board["chip"]), attempts, loader)
        try:
            esptool.main(write_args(board, port, firmware, rate, erase, loader), esp=esp)
            return rate
        except (FatalError, serial.SerialException, OSError) as exc:
            failures.append((rate, esptool_error(port, exc)))
            if attempt == 0:
                say(f"write at {rate} baud failed ({failures[-1][1]}); retrying at {SAFE_BAUD} baud")
        except SystemExit as exc:  # esptool's argument parser
            raise LuxnodeError(f"esptool refused the arguments (exit {exc.code})") from None
        finally:
            disconnect(esp)
    rates = " and ".join(dict.fromkeys(str(r) for r, _ in failures))
    raise LuxnodeError(f"{failures[-1][1]} (write failed at {rates} baud, {len(failures)} attempts)")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "flash", help="write MicroPython to an ESP32/ESP8266 with esptool",
        description="Check a MicroPython image offline, check the chip on the port, and write the "
                    "image at the board's offset with esptool (verified). Without --firmware, say "
                    "which MicroPython build to download.")
    parser.add_argument("--port", required=True, help="serial port, e.g. /dev/ttyUSB0")
    parser.add_argument("--board", required=True, help="board file: esp32, esp32s3, esp32c3, esp8266")
    parser.add_argument("--firmware", type=Path, metavar="FILE", help="the MicroPython .bin to write")
    parser.add_argument("--erase", action="store_true", help="erase the whole flash first (wipes the filesystem)")
    parser.add_argument("--baud", type=int,
                        help=f"write speed (default {FAST_BAUD}; {SAFE_BAUD} with --no-reset)")
    parser.add_argument("--connect-attempts", type=int, default=3, metavar="N",
                        help="times esptool tries to reach the bootloader (default 3)")
    parser.add_argument("--no-stub", action="store_true",
                        help="write through the ROM's own loader, not esptool's stub flasher (slower; "
                             "for emulators and chips the stub does not run on)")
    parser.add_argument("--no-reset", action="store_true",
                        help="no DTR/RTS reset before or after: the board is already in download mode "
                             "(emulators, boards without auto-reset wiring); reset it yourself afterwards")
    parser.set_defaults(func=run)


def run(args) -> int:
    from luxnode import boards
    from luxnode.device import image, serial_errors

    board = flashable(boards.load(args.board))
    if args.firmware is None:
        print(instructions(board, args.port))
        return 1
    summary = image.check(args.firmware, board["chip"], download_hint(board))
    print(f"{args.firmware}: {summary}")
    serial_errors.check_port_exists(args.port)
    loader = Loader(stub=not args.no_stub, reset=not args.no_reset)
    chip = detect_chip(args.port, args.connect_attempts, loader)
    if chip != board["chip"]:
        fitting = [name for name in boards.names() if boards.load(name)["chip"] == chip]
        use = f"use --board {' or '.join(fitting)}" if fitting else "luxnode has no board file for it"
        raise LuxnodeError(f"the chip on {args.port} is an {chip}, but board {args.board} is "
                           f"{board['chip']}: {use}")
    print(f"{args.port}: {chip}; writing {board['micropython']['build']} at {board['flash_offset']}"
          + (" after erasing the flash" if args.erase else ""))
    # Without a reset line a chip stuck at a failed faster rate cannot be brought back: stay at the ROM's.
    baud = args.baud or (FAST_BAUD if loader.reset else SAFE_BAUD)
    rate = write(board, args.port, args.firmware, baud, args.erase, print, args.connect_attempts, loader)
    reset = "" if loader.reset else "; reset the board (EN) without BOOT held to start MicroPython"
    print(f"flashed and verified at {rate} baud{reset}; next: luxnode deploy --port {args.port}")
    return 0
