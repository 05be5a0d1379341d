"""``luxnode deploy --romfs`` against the board-faithful build on a pty: an ESP8266 with the
FLASH_2M_ROMFS firmware's partition (vfs.rom_ioctl over the board folder's .romfs), written
with the same protocol mpremote's romfs deploy uses; then the node boots from /rom."""

import json
import os
import subprocess
import sys

import pytest

from luxnode.files import write_private
from luxnode.sim import fsroot, port
from luxnode.sim.node import SimNode, module_path
from tests.device.helpers import one_line_error, run_cli
from tests.sim.faithful import faithful_binary


def lux_loads_from_rom(root):
    """Whether the node's lux.node loads on the path luxnode sim --faithful gives it, and from /rom:
    without /rom on that path it is not found (the ESP8266 has no __file__ to say where from)."""
    def loads(path):
        proc = subprocess.run([faithful_binary(port.board_name(root)), "-c", "import lux.node\nprint('loaded')"],
                              cwd=root, env=dict(os.environ, MICROPYPATH=path), capture_output=True, text=True,
                              timeout=30)
        return proc.stdout.strip() == "loaded"

    path = module_path(root, faithful=True)
    return loads(path) and not loads(":".join(p for p in path.split(":") if not p.startswith("/rom")))


def test_deploy_romfs_puts_lux_in_the_partition_and_the_node_boots_from_rom(tmp_path, chip_board, capsys,
                                                                            mosquitto):
    board = chip_board("esp8266")
    (board.root / "lux").mkdir()  # a plain deploy's lux/ would shadow /rom/lux: it goes
    (board.root / "lux" / "node.mpy").write_bytes(b"stale")
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs", "--timeout", "30")
    assert code == 0, err
    assert "board esp8266" in out and "-byte partition: written" in out, out
    assert not (board.root / "lux").exists()
    assert (board.root / "main.py").exists() and (board.root / "boot.py").exists()
    image = (board.root / ".romfs").read_bytes()
    assert len(image) == 327680 and image.startswith(b"\xd2\xcd\x31")
    assert board.wait_exit() is not None  # the soft reset ended the unix port
    assert lux_loads_from_rom(board.root)

    # Once more: the partition already holds the image, nothing is written.
    board = chip_board("esp8266", board.root)
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs", "--no-reset", "--timeout", "30")
    assert code == 0, err
    assert "-byte partition: up to date" in out and "0 copied" in out, out
    board.stop()

    broker = mosquitto("allow_anonymous true\n")
    cfg = fsroot.node_config("node-1", "127.0.0.1", broker.port, board="esp8266")
    write_private(board.root / "config.json", json.dumps(cfg))
    lines = []
    node = SimNode(board.root, faithful=True, bridge=False, output=lines.append,
                   env={"LUXNODE_SIM_NOISE": "0"})
    with node:
        node.wait_line("luxnode: connected to 127.0.0.1", timeout=30)
    assert not any("Traceback" in line for line in lines), lines


def test_deploy_romfs_refuses_a_board_without_a_romfs_partition(tmp_path, chip_board, capsys):
    board = chip_board("esp32")  # the stock ESP32 firmware has no ROMFS partition
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs", "--no-reset", "--timeout", "30")
    one_line_error(code, err, "has no ROMFS partition", "ESP32_GENERIC firmware built with a 'romfs' partition")
    assert not (board.root / "main.py").exists() and not (board.root / "lux").exists()  # nothing written
    assert not (board.root / ".romfs").exists()


def test_deploy_romfs_refuses_an_esp8266_whose_partition_is_too_small(tmp_path, chip_board, capsys):
    board = chip_board("esp8266", romfs_bytes=8192)
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs", "--no-reset", "--timeout", "30")
    one_line_error(code, err, "the board's ROMFS partition only 8192", "ESP8266_GENERIC FLASH_2M_ROMFS")
    assert not (board.root / "main.py").exists()
    assert (board.root / ".romfs").read_bytes() == b"\xff" * 8192  # still erased: nothing written


def test_mpremote_romfs_deploy_writes_the_faithful_partition(tmp_path, chip_board):
    """mpremote's own `romfs deploy` (its prepare/write/complete calls) against the partition,
    then `romfs query` reads the image back, as on an ESP8266 flashed with FLASH_2M_ROMFS."""
    source = tmp_path / "romfs" / "lib"
    source.mkdir(parents=True)
    (source / "hello.py").write_text("print('hello')\n")
    board = chip_board("esp8266")
    mpremote = [sys.executable, "-m", "mpremote", "connect", board.port, "resume"]
    deployed = subprocess.run([*mpremote, "romfs", "deploy", str(tmp_path / "romfs")], capture_output=True,
                              text=True, timeout=60)
    assert "ROMFS image deployed" in deployed.stdout, deployed.stdout + deployed.stderr
    assert "ROMFS0 partition has size 327680 bytes" in deployed.stdout
    query = subprocess.run([*mpremote, "romfs", "query"], capture_output=True, text=True, timeout=60)
    assert "ROMFS image size:" in query.stdout and "Not a valid ROMFS" not in query.stdout, query.stdout
    image = (board.root / ".romfs").read_bytes()
    assert image.startswith(b"\xd2\xcd\x31") and b"hello.mpy" in image


def test_a_write_cut_short_leaves_no_image_to_mount(tmp_path, chip_board):
    """The image's first piece (its header) is written last: a cable pulled mid-write leaves an
    erased header, which the board does not mount, not half a filesystem it would run."""
    from luxnode.device import romfs
    from luxnode.device.link import BoardLink

    board = chip_board("esp8266")
    data = romfs.image({"lux/big.mpy": bytes(range(256)) * 40})  # six pieces
    pieces = []

    def cut(done, total):
        pieces.append(done)
        if len(pieces) == 3:
            raise KeyboardInterrupt

    with BoardLink(board.port, timeout=30) as link:
        with pytest.raises(KeyboardInterrupt):
            romfs.write(link, data, romfs.query(link, len(data)), cut)
    flash = (board.root / ".romfs").read_bytes()
    assert flash[:romfs.CHUNK] == b"\xff" * romfs.CHUNK and flash[romfs.CHUNK:3 * romfs.CHUNK] == data[romfs.CHUNK:3 * romfs.CHUNK]


def test_deploy_romfs_refuses_the_plain_unix_port(tmp_path, pty_board, capsys):
    board = pty_board()  # the 64-bit wheel: no vfs.rom_ioctl
    code, _, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs", "--no-reset")
    one_line_error(code, err, "has no ROMFS (no vfs.rom_ioctl)", "luxnode sim --faithful")
    assert list(board.root.iterdir()) == []


def test_deploy_romfs_if_present_takes_the_partition_where_there_is_one(tmp_path, chip_board, capsys):
    """What flash.sh deploys with: an ESP8266 with a ROMFS partition gets lux/ there..."""
    board = chip_board("esp8266")
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs-if-present", "--no-reset",
                             "--timeout", "30")
    assert code == 0, err
    assert "-byte partition: written" in out, out
    assert not (board.root / "lux").exists() and (board.root / "main.py").exists()
    board.stop()
    assert lux_loads_from_rom(board.root)


@pytest.mark.parametrize("chip, romfs_bytes, esp8266_hint", [("esp8266", 8192, True), ("esp32", None, False)])
def test_deploy_romfs_if_present_takes_the_filesystem_where_there_is_none(tmp_path, chip_board, capsys,
                                                                         chip, romfs_bytes, esp8266_hint):
    """...and a board without one that fits gets lux/ on its filesystem, told why in one line."""
    board = chip_board(chip, **({"romfs_bytes": romfs_bytes} if romfs_bytes else {}))
    code, out, err = run_cli(capsys, "deploy", "--port", board.port, "--romfs-if-present", "--no-reset",
                             "--timeout", "30")
    assert code == 0, err
    note = [line for line in out.splitlines() if line.startswith("ROMFS: none on this board")]
    assert len(note) == 1 and "lux/ goes to the filesystem" in note[0], out
    assert ("FLASH_2M_ROMFS firmware has one" in note[0]) == esp8266_hint, note  # the fix, where there is one
    assert (board.root / "lux" / "node.mpy").exists() and (board.root / "main.py").exists()
