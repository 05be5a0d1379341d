"""deploy/provision on ports where no MicroPython answers: one line that says what to do."""

import os
import threading

import pytest
import serial

from tests.device.helpers import one_line_error, run_cli, tiny_firmware


class SilentPort:
    """A pty whose far end only reads; ``reply`` is sent once the host asks for the raw REPL."""

    def __init__(self, reply: bytes = b""):
        self.master, self.slave = os.openpty()
        self.name = os.ttyname(self.slave)
        self.reply = reply
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import select

        while not self._stop:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                data = os.read(self.master, 1024)
            except OSError:
                return
            if b"\x01" in data and self.reply:
                os.write(self.master, self.reply)

    def close(self):
        self._stop = True
        self.thread.join()
        os.close(self.slave)
        os.close(self.master)


@pytest.fixture
def silent_port():
    ports = []

    def make(reply=b""):
        ports.append(SilentPort(reply))
        return ports[-1].name

    yield make
    for port in ports:
        port.close()


@pytest.mark.parametrize("command", ["deploy", "provision"])
def test_no_board_connected(command, tmp_path, lab_home, capsys):
    extra = ["--device-id", "n1", "--wifi-ssid", "lab", "--broker", "127.0.0.1"] if command == "provision" else []
    code, _, err = run_cli(capsys, command, "--port", tmp_path / "ttyUSB0", *extra)
    one_line_error(code, err, "no board on", "plug the board in")
    assert not (lab_home / "registry.json").exists()


def test_nothing_answers_on_the_port(tmp_path, silent_port, capsys):
    code, _, err = run_cli(capsys, "deploy", "--port", silent_port(), "--timeout", "1",
                           "--source", tiny_firmware(tmp_path / "fw"))
    one_line_error(code, err, "no MicroPython REPL answered", "luxnode flash")


def test_a_board_in_bootloader_mode(tmp_path, silent_port, capsys):
    rom = (b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 "
           b"(DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n")
    code, _, err = run_cli(capsys, "deploy", "--port", silent_port(rom), "--timeout", "1",
                           "--source", tiny_firmware(tmp_path / "fw"))
    one_line_error(code, err, "bootloader mode", "press RESET")


def test_a_busy_port(tmp_path, pty_board, capsys):
    board = pty_board()
    holder = serial.Serial(os.path.realpath(board.port), exclusive=True)
    try:
        code, _, err = run_cli(capsys, "deploy", "--port", board.port, "--source", tiny_firmware(tmp_path / "fw"))
    finally:
        holder.close()
    one_line_error(code, err, "is busy", "close it and retry")


def test_provision_on_a_silent_port_changes_nothing_on_the_host(silent_port, lab_home, capsys):
    code, _, err = run_cli(capsys, "provision", "--port", silent_port(), "--timeout", "1",
                           "--device-id", "n1", "--wifi-ssid", "lab", "--broker", "127.0.0.1")
    one_line_error(code, err, "no MicroPython REPL answered")
    assert not (lab_home / "registry.json").exists() and not (lab_home / "psk").exists()


def test_a_board_that_goes_away_mid_session(pty_board):
    from luxnode.device.link import BoardLink
    from luxnode.errors import LuxnodeError

    board = pty_board()
    link = BoardLink(board.port)
    try:
        assert link.exec("print(1 + 1)").strip() == b"2"
        board.stop()  # the unix port and its pty end, as a board that resets or is unplugged
        with pytest.raises(LuxnodeError) as failure:
            link.write_file("x.py", b"x = 1\n" * 100)
        text = str(failure.value)
        assert "\n" not in text and ("went away" in text or "stopped answering" in text), text
    finally:
        link.close()
