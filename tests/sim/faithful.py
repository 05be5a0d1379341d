"""The board-faithful build for tests: built (or taken from the cache) once per session."""

import json
import os
import subprocess

import pytest

from luxnode import boards
from luxnode.errors import LuxnodeError
from luxnode.sim import port


def faithful_binary(board: str | None = None) -> str:
    """The 32-bit build for the board (its port's object representation); outside CI a machine
    that cannot build it skips the test, saying why."""
    try:
        return port.faithful_micropython(board=board)
    except LuxnodeError as e:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"no board-faithful build: {e}")


def chip_root(folder, board, **config):
    """A node root with the board's board.json and a config.json (sensor range fit to its ADC)."""
    board_doc = boards.load(board)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "board.json").write_text(json.dumps(board_doc))
    top = (1 << board_doc["adc"]["bits"]) - 1
    doc = {"sensor": {"dark_raw": round(top * 0.05), "bright_raw": round(top * 0.95)}, "dimmer": {"invert": False}}
    doc.update(config)
    (folder / "config.json").write_text(json.dumps(doc))
    return folder


def run_chip(root, code, env=None, heap=None, timeout=30, returncode=0):
    """Run ``code`` on the faithful build in ``root`` with only the frozen board; its stdout lines."""
    binary = faithful_binary(port.board_name(root))
    environ = dict(os.environ, MICROPYPATH=".frozen", LUXNODE_SIM_NOISE="0")
    environ.update(env or {})
    args = [binary, "-X", f"heapsize={heap}"] if heap else [binary]
    proc = subprocess.run([*args, "-c", code], cwd=root, env=environ, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == returncode, proc.stdout + proc.stderr
    return proc.stdout.splitlines()
