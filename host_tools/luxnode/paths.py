"""Where the firmware and board files live.

luxnode runs from its source checkout (``pip install -e .``): the firmware and the
board files are deployed to boards as they are, so they stay plain files beside
the package rather than copies inside it.
"""

from pathlib import Path

from luxnode.errors import LuxnodeError

REPO = Path(__file__).resolve().parents[2]
FIRMWARE_DIR = REPO / "firmware"
BOARDS_DIR = REPO / "boards"


def require(path: Path) -> Path:
    if not path.exists():
        raise LuxnodeError(
            f"{path} not found: luxnode needs its source checkout; "
            "install it with 'pip install -e .' from the repository"
        )
    return path
