"""Where the firmware and board files live.

In the repository they are plain folders at its top (firmware/, boards/), deployed
to boards as they are. A built wheel carries copies inside the package
(luxnode/firmware, luxnode/boards: setup.py's build step puts them there), so an
installed luxnode runs from any folder; a source checkout or an editable install
uses the repository's own.
"""

from pathlib import Path

from luxnode.errors import LuxnodeError

PACKAGE = Path(__file__).resolve().parent
REPO = PACKAGE.parents[1]   # the source checkout, when luxnode runs from one


def _data(name: str) -> Path:
    installed = PACKAGE / name
    return installed if installed.is_dir() else REPO / name


FIRMWARE_DIR = _data("firmware")
BOARDS_DIR = _data("boards")


def require(path: Path) -> Path:
    if not path.exists():
        raise LuxnodeError(
            f"{path} not found: this luxnode was installed without its firmware and board files; "
            "reinstall it from the repository (pip install . or pipx install .)"
        )
    return path
