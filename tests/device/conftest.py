import shutil

import pytest

from luxnode import boards
from tests.device.pty_board import FaithfulPtyBoard, PtyBoard


@pytest.fixture
def pty_board(tmp_path):
    """Start a unix-port "board" whose filesystem is tmp_path/node; restartable after a soft reset."""
    boards = []

    def start(root=None) -> PtyBoard:
        board = PtyBoard(root or tmp_path / "node").start()
        boards.append(board)
        return board

    yield start
    for board in boards:
        board.stop()


@pytest.fixture
def chip_board(tmp_path):
    """Start the board-faithful build of a board (boards/NAME.json, with board_keys changed) on a pty."""
    if not shutil.which("socat"):
        pytest.skip("socat is not installed (apt-get install socat)")
    started = []

    def start(board, root=None, env=None, **board_keys):
        started.append(FaithfulPtyBoard(root or tmp_path / "node", dict(boards.load(board), **board_keys), env).start())
        return started[-1]

    yield start
    for board in started:
        board.stop()


@pytest.fixture
def lab_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LUXNODE_HOME", str(home))
    return home
