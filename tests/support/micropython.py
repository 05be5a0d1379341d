"""Run code on the MicroPython unix port (the `micropython` executable).

LUXNODE_FAITHFUL=esp32|esp8266 runs everything on the board-faithful 32-bit build
(luxnode sim --faithful: the board frozen in, the chip's clock, heap and quirks) and
makes that chip the board of whole-node tests and of code run in no folder of its own
(it gets one with the chip's board.json); unset, the `micropython` luxnode finds
(the 64-bit wheel) runs them.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from luxnode.errors import LuxnodeError
from luxnode.paths import BOARDS_DIR, REPO
from luxnode.sim import port

FIRMWARE = REPO / "firmware"
FAKEBOARD = REPO / "tests" / "firmware" / "fakeboard"


FAITHFUL = os.environ.get("LUXNODE_FAITHFUL") or None
if FAITHFUL not in (None, "esp32", "esp32s3", "esp32c3", "esp8266"):
    raise RuntimeError(f"LUXNODE_FAITHFUL={FAITHFUL}: expected esp32, esp32s3, esp32c3 or esp8266")


class MicroPythonError(AssertionError):
    pass


def executable() -> str:
    try:
        return port.faithful_micropython(board=FAITHFUL) if FAITHFUL else port.find_micropython()
    except LuxnodeError as e:
        raise MicroPythonError(str(e)) from None


def module_path(path) -> str:
    """MICROPYPATH from ``path``; the faithful build also needs its frozen board modules."""
    parts = [str(p) for p in path]
    if FAITHFUL:
        parts.append(".frozen")
    return ":".join(parts)


def run(code: str, path=(FIRMWARE,), cwd=None, timeout=30.0, heap="2M", env=None) -> str:
    """Run ``code`` with MICROPYPATH built from ``path`` (first entry wins), extra
    environment ``env``, and return its stdout; raise MicroPythonError with stderr if it fails."""
    if FAITHFUL and cwd is None:  # code that names no board runs on the faithful chip's
        with tempfile.TemporaryDirectory(prefix="mp-run-") as folder:
            shutil.copy(BOARDS_DIR / f"{FAITHFUL}.json", Path(folder) / "board.json")
            return run(code, path, folder, timeout, heap, env)
    env = dict(os.environ, **(env or {}), MICROPYPATH=module_path(path))
    try:
        proc = subprocess.run(
            [executable(), "-X", f"heapsize={heap}", "-c", code], cwd=cwd, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise MicroPythonError(f"micropython timed out after {timeout} s\nstdout:\n{out}") from None
    if proc.returncode:
        raise MicroPythonError(
            f"micropython exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
        )
    return proc.stdout


def spawn(code: str, path=(FIRMWARE,), cwd=None, heap="2M") -> subprocess.Popen:
    """Start ``code`` in the background (stdin/stdout/stderr piped, text mode, line buffered)."""
    env = dict(os.environ, MICROPYPATH=module_path(path))
    return subprocess.Popen(
        [executable(), "-X", f"heapsize={heap}", "-c", code], cwd=cwd, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )


def run_file(script: Path, **kw) -> str:
    return run(Path(script).read_text(), **kw)
