"""Board files: one JSON document per supported board under boards/."""

import json

from luxnode.errors import LuxnodeError
from luxnode.paths import BOARDS_DIR, require


def names() -> list[str]:
    return sorted(p.stem for p in require(BOARDS_DIR).glob("*.json"))


def load(name: str) -> dict:
    path = require(BOARDS_DIR) / f"{name}.json"
    if not path.exists():
        raise LuxnodeError(f"unknown board {name!r}: choose one of {', '.join(names())}")
    return json.loads(path.read_text())
