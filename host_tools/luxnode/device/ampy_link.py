"""The same board session through adafruit-ampy, for USB-serial bridges that only cope
with its plain raw REPL: no raw-paste mode, small writes with pauses, and a soft
reset each time it enters the raw REPL (ampy's way; a board reboots in place).
"""

import binascii
import contextlib
import io

from luxnode.device import serial_errors
from luxnode.device.link import RESET_GRACE_S, STOPPED_ANSWERING, RawReplLink
from luxnode.errors import LuxnodeError


class AmpyLink(RawReplLink):
    via = "ampy"

    def __init__(self, port: str, timeout: float = 10.0):
        from ampy.pyboard import Pyboard, PyboardError

        self.port = port
        self._error = PyboardError
        device = serial_errors.device_path(port)
        try:
            self.board = Pyboard(device, baudrate=115200)
        except PyboardError:
            exc = serial_errors.open_error(device) or OSError(f"cannot open {port}")
            raise serial_errors.from_serial_exception(port, exc) from None
        # ampy reads without a timeout; a silent port would hang it for ever.
        self.board.serial.timeout = timeout
        seen = io.StringIO()
        try:
            with contextlib.redirect_stdout(seen):
                self.board.enter_raw_repl()
        except (PyboardError, OSError) as exc:
            self.close()
            if isinstance(exc, OSError) and not isinstance(exc, PyboardError):
                raise serial_errors.from_serial_exception(port, exc) from None
            raise serial_errors.no_repl(port, seen.getvalue().encode(), timeout) from None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.board.close()

    def exec(self, code: str) -> bytes:
        try:
            return self.board.exec_(code)
        except self._error as exc:
            if len(exc.args) == 3:  # ('exception', stdout, stderr): the code raised on the board
                last = exc.args[2].decode(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise LuxnodeError(f"running code failed on the board: {last[0]}") from None
            raise LuxnodeError(STOPPED_ANSWERING) from None
        except OSError as exc:
            raise serial_errors.from_serial_exception(self.port, exc) from None

    def write_file(self, path: str, data: bytes, progress=None) -> None:
        from ampy.files import BUFFER_SIZE  # ampy's chunk size: what slow bridges survive

        tmp = path + ".part"
        self.exec(f"f = open({tmp!r}, 'wb')")
        for start in range(0, len(data), BUFFER_SIZE):
            self.exec(f"f.write({data[start:start + BUFFER_SIZE]!r})")
            if progress:
                progress(min(start + BUFFER_SIZE, len(data)), len(data))
        self.exec("f.close()")
        self._rename_into_place(tmp, path)

    def read_file(self, path: str) -> bytes | None:
        out = self.exec(
            "import binascii\n"
            f"try:\n f = open({path!r}, 'rb')\nexcept OSError:\n f = None\n"
            "if f:\n print(binascii.hexlify(f.read()).decode())\n f.close()\n"
        )
        text = out.strip()
        return binascii.unhexlify(text) if text else None

    def soft_reset(self) -> None:
        try:
            self.board.exit_raw_repl()
            self.board.serial.write(b"\x04")
            self.board.read_until(1, b"soft reboot", timeout=RESET_GRACE_S)
        except (OSError, self._error):
            pass  # the other end went away: that is the reset
        finally:
            self.close()
