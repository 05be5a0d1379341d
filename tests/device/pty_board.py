"""The MicroPython unix port behind a pseudo-terminal: a board's REPL without a board.

socat runs ``micropython`` on a pty with the node folder as working directory,
which becomes the "board's" filesystem, and links the other end to DIR/tty.
A soft reset ends the unix port (and socat with it), as NOTES.md describes.
"""

import json
import os
import shutil
import subprocess
from pathlib import Path

from luxnode.sim import port
from tests.sim.faithful import faithful_binary
from tests.support.net import wait_for


class PtyBoard:
    def __init__(self, root: Path):
        self.root = root
        self.tty = root.parent / f"{root.name}.tty"  # outside the filesystem the board sees
        self.proc = None

    def start(self) -> "PtyBoard":
        if not shutil.which("socat"):
            raise AssertionError("socat is not installed (apt-get install socat)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.tty.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["socat", f"PTY,link={self.tty},rawer",
             "EXEC:micropython,pty,stderr,setsid,rawer"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        wait_for(lambda: self.tty.exists() or self.proc.poll() is not None, what="socat's pty")
        if self.proc.poll() is not None:
            raise AssertionError(f"socat exited: {self.proc.stderr.read().decode()}")
        return self

    @property
    def port(self) -> str:
        return str(self.tty)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout=10.0) -> int:
        wait_for(lambda: not self.running(), timeout, what="the unix port to end on soft reset")
        return self.proc.returncode

    def stop(self) -> None:
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class FaithfulPtyBoard(PtyBoard):
    """The faithful build behind a pty, with the chip's heap and its board.json in its folder;
    env: more of the simulated board's environment (LUXNODE_SIM_*)."""

    def __init__(self, root, board: dict, env: dict | None = None):
        super().__init__(root)
        self.board = board
        self.env = env or {}

    def start(self):
        binary = faithful_binary(self.board["name"])
        self.root.mkdir(parents=True, exist_ok=True)
        if not (self.root / "board.json").exists():  # a deploy rewrites it in its own layout
            (self.root / "board.json").write_text(json.dumps(self.board))
        port.romfs_partition(self.root)  # erased on the first start, kept after
        heap = self.board["heap_bytes"] + port.board_heap_overhead(binary, self.root)
        self.tty.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            ["socat", f"PTY,link={self.tty},rawer", f"EXEC:{binary} -X heapsize={heap},pty,stderr,setsid,rawer"],
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=dict(os.environ, MICROPYPATH=".frozen", LUXNODE_SIM_NOISE="0", **self.env))
        wait_for(lambda: self.tty.exists() or self.proc.poll() is not None, what="socat's pty")
        assert self.proc.poll() is None, self.proc.stderr.read().decode()
        return self
