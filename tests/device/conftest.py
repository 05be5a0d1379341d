import pytest

from tests.device.pty_board import PtyBoard


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
def lab_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("LUXNODE_HOME", str(home))
    return home
