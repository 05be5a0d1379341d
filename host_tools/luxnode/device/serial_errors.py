"""Serial-port failures turned into one line that says what to do."""

import errno
import os

from luxnode.errors import LuxnodeError

# What an ESP ROM prints when the boot pins selected the serial bootloader.
BOOTLOADER_SIGNS = (b"waiting for download", b"DOWNLOAD_BOOT", b"DOWNLOAD(USB/UART0)", b"boot mode:(1,")


def available_ports() -> list[str]:
    from serial.tools import list_ports

    return sorted(p.device for p in list_ports.comports())


def check_port_exists(port: str) -> None:
    """A missing device node means no board is plugged in there (URLs like rfc2217:// pass)."""
    if "://" in port or os.path.exists(port):
        return
    ports = available_ports()
    hint = f"serial ports now: {', '.join(ports)}" if ports else "no serial ports are present"
    raise LuxnodeError(
        f"no board on {port}: plug the board in with a data USB cable and pass its port ({hint})"
    )


def device_path(port: str) -> str:
    """The device node to open for ``port`` (a symlink such as a by-id name resolved), or a clear refusal."""
    check_port_exists(port)
    return os.path.realpath(port) if os.path.exists(port) else port


def open_error(device: str) -> BaseException | None:
    """The error opening ``device`` exclusively raises now, if any."""
    import serial

    try:
        serial.Serial(device, exclusive=True).close()
    except (serial.SerialException, OSError) as exc:
        return exc
    return None


def from_serial_exception(port: str, exc: BaseException) -> LuxnodeError:
    """Map pyserial/OS errors raised while opening or using ``port``."""
    text = str(exc)
    code = getattr(exc, "errno", None)
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO) or "No such file" in text:
        check_port_exists(port)
        return LuxnodeError(f"{port} went away: reconnect the board and retry")
    if code == errno.EBUSY or "exclusively lock" in text or "Device or resource busy" in text:
        return LuxnodeError(
            f"{port} is busy: another program has it open (a serial monitor, mpremote, "
            "esptool, screen); close it and retry"
        )
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return LuxnodeError(
            f"no permission to open {port}: add your user to the 'dialout' group "
            "(sudo usermod -aG dialout $USER, then log in again)"
        )
    if code == errno.EIO or "Input/output error" in text or "returned no data" in text:
        return LuxnodeError(f"{port} went away (the board reset or was unplugged): reconnect it and run "
                            "the command again (it resumes: unchanged files are not copied twice)")
    return LuxnodeError(f"serial error on {port}: {text}; check the cable and retry")


def no_repl(port: str, received: bytes, timeout: float) -> LuxnodeError:
    """The port opened but no MicroPython raw REPL answered."""
    if any(sign in received for sign in BOOTLOADER_SIGNS):
        return LuxnodeError(
            f"the board on {port} is in bootloader mode: press RESET (EN) without holding BOOT, "
            "or flash MicroPython first (luxnode flash)"
        )
    return LuxnodeError(
        f"no MicroPython REPL answered on {port} within {timeout:g} s: flash MicroPython first "
        "(luxnode flash), press RESET, or check that this is the board's port"
    )
