"""A session with a MicroPython board's raw REPL, through mpremote's serial transport.

The session joins a running board without a soft reset (mpremote's ``resume``),
so it works on boards whose firmware is busy and on the unix port, whose
process ends on a soft reset. Every failure becomes a LuxnodeError.
"""

import contextlib
import io
import json
import time

from luxnode.device import serial_errors
from luxnode.errors import LuxnodeError

RESET_GRACE_S = 3.0
ENTER_TRY_S = 3.0  # one Ctrl-C, Ctrl-A attempt to reach the raw REPL
READ_TIMEOUT_S = 2.0
# A running node's watchdog resets the board when the REPL holds it too long.
STOPPED_ANSWERING = ("the board stopped answering (a running node's watchdog may have reset it): "
                     "press and release RESET, then at once hold BOOT for 2 s to start it in safe mode "
                     "(BOOT held through the reset starts the chip's bootloader instead), then run the command "
                     "again (it resumes: unchanged files are not copied twice)")


FORGET_BOOTS = "try:\n import lux.safemode\n lux.safemode.stable()\nexcept Exception:\n pass\n"


class RawReplLink:
    """What both links share: file operations as small programs run in the raw REPL."""

    port: str

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def exec(self, code: str) -> bytes:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def soft_reset(self) -> None:
        raise NotImplementedError

    def restart_node(self) -> None:
        """The soft reset that ends a deploy or provision, which safe mode's boot-loop count
        (lux.safemode) must not take for a failed boot: an ESP8266 reports a Ctrl-D as its last
        hardware reset, SOFT_RESET after a crash. Firmware without lux.safemode is reset as is."""
        self.exec(FORGET_BOOTS)
        self.soft_reset()

    def exec_json(self, code: str):
        """Run ``code``, which prints one JSON document, and return it decoded."""
        out = self.exec(code)
        try:
            return json.loads(out)
        except ValueError:
            raise LuxnodeError(f"the board printed something unexpected: {out[:80]!r}") from None

    def _rename_into_place(self, tmp: str, path: str) -> None:
        # littlefs replaces the target; FAT refuses, so remove it first there.
        self.exec(
            "import os\n"
            f"try:\n os.rename({tmp!r},{path!r})\n"
            f"except OSError:\n os.remove({path!r})\n os.rename({tmp!r},{path!r})\n"
        )

    def mkdir(self, path: str) -> None:
        self.exec(f"import os\ntry:\n os.mkdir({path!r})\nexcept OSError:\n pass\n")

    def remove(self, path: str) -> None:
        self.exec(f"import os\nos.remove({path!r})")


def _transport_class():
    """mpremote's serial transport, with every step allowed ``step_timeout`` seconds (at least
    its own 10): a slow board (an emulated one, a busy bridge) takes longer to take code in."""
    from mpremote.transport_serial import SerialTransport

    class SlowBoardTransport(SerialTransport):
        step_timeout = 10.0

        def exec_raw(self, command, timeout=10, data_consumer=None):
            return super().exec_raw(command, max(timeout, self.step_timeout), data_consumer)

    return SlowBoardTransport


class BoardLink(RawReplLink):
    """Raw-REPL access to one board through mpremote's transport: exec, files, soft reset."""

    via = "mpremote"

    def __init__(self, port: str, timeout: float = 10.0):
        from mpremote.transport import TransportError
        import serial

        self.port = port
        self.timeout = timeout
        self._transport_error = TransportError
        device = serial_errors.device_path(port)
        try:
            # A read timeout keeps the transport's own deadlines working on ptys,
            # where it reads without polling first.
            self.transport = _transport_class()(device, baudrate=115200,
                                                 timeout=max(READ_TIMEOUT_S, timeout / 5))
            self.transport.step_timeout = timeout
        except (serial.SerialException, OSError) as exc:
            raise serial_errors.from_serial_exception(port, exc) from None
        except TransportError as exc:
            # mpremote hides why the port did not open: open it once more to find out.
            raise serial_errors.from_serial_exception(port, serial_errors.open_error(device) or exc) from None
        self._enter()

    def _enter(self) -> None:
        """Ctrl-C, Ctrl-A until the raw REPL answers: a reply can be lost while the far end
        only just noticed the port open (an emulator's pty) or the board was still printing."""
        import serial

        seen = io.StringIO()
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                # The transport prints what it received when the REPL does not answer.
                with contextlib.redirect_stdout(seen):
                    self.transport.enter_raw_repl(
                        soft_reset=False, timeout_overall=max(0.5, min(ENTER_TRY_S, deadline - time.monotonic())))
                return
            except self._transport_error:
                if time.monotonic() < deadline:
                    continue
                self.close()
                raise serial_errors.no_repl(self.port, seen.getvalue().encode(), self.timeout) from None
            except (serial.SerialException, OSError) as exc:
                self.close()
                raise serial_errors.from_serial_exception(self.port, exc) from None

    def close(self) -> None:
        """Back to the friendly REPL (a board left in the raw REPL looks dead in a terminal), then close."""
        with contextlib.suppress(Exception):
            if self.transport.in_raw_repl:
                self.transport.exit_raw_repl()
        with contextlib.suppress(Exception):
            self.transport.close()

    def _call(self, what: str, fn, *args, **kwargs):
        import serial
        from mpremote.transport import TransportExecError

        try:
            return fn(*args, **kwargs)
        except TransportExecError as exc:
            last = exc.error_output.strip().splitlines()[-1:] or ["?"]
            raise LuxnodeError(f"{what} failed on the board: {last[0]}") from None
        except self._transport_error:
            raise LuxnodeError(f"{what}: {STOPPED_ANSWERING}") from None
        except (serial.SerialException, OSError) as exc:
            raise serial_errors.from_serial_exception(self.port, exc) from None

    def exec(self, code: str) -> bytes:
        return self._call("running code", self.transport.exec, code)

    def write_file(self, path: str, data: bytes, progress=None) -> None:
        """Write via a temporary name and rename, so a cut cable never leaves half a file."""
        tmp = path + ".part"
        self._call(f"writing {path}", self.transport.fs_writefile, tmp, data, progress_callback=progress)
        self._rename_into_place(tmp, path)

    def read_file(self, path: str) -> bytes | None:
        if not self._call(f"reading {path}", self.transport.fs_exists, path):
            return None
        return bytes(self._call(f"reading {path}", self.transport.fs_readfile, path))

    def soft_reset(self) -> None:
        """Leave the raw REPL and press Ctrl-D: the board reboots into boot.py/main.py.

        A board prints "soft reboot"; the unix port ends instead, which closes
        the pty. Either one means the reset happened.
        """
        import serial

        try:
            self.transport.exit_raw_repl()
            self.transport.serial.write(b"\x04")
            with contextlib.redirect_stdout(io.StringIO()):
                self.transport.read_until(1, b"soft reboot", timeout=RESET_GRACE_S,
                                          timeout_overall=RESET_GRACE_S)
        except (serial.SerialException, OSError):
            pass  # the other end went away: that is the reset
        finally:
            self.close()


def open_link(args) -> RawReplLink:
    """The session ``--via`` asks for, on ``--port``."""
    if args.via == "ampy":
        from luxnode.device.ampy_link import AmpyLink

        return AmpyLink(args.port, timeout=args.timeout)
    return BoardLink(args.port, timeout=args.timeout)


def add_link_arguments(parser, port_required: bool = True) -> None:
    parser.add_argument("--port", required=port_required, help="serial port of the board, e.g. /dev/ttyUSB0")
    parser.add_argument("--via", choices=("mpremote", "ampy"), default="mpremote",
                        help="ampy: for USB-serial bridges that only cope with a plain raw REPL")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the board's REPL, and for each step on it (default 10)")
