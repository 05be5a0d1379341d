"""Scratch folders of simulated nodes, named after the process that owns them.

A lab or ``luxnode sim`` removes its folders when it stops; one killed outright
(SIGKILL, a crash) cannot. Each folder's name carries its owner's pid, so the next
start removes the folders whose owner is gone, and never one of a live process.
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

PREFIX = "luxnode-sim-"
_OWNED = re.compile(rf"{re.escape(PREFIX)}(\d+)-")


def make(label: str = "") -> Path:
    """A new scratch folder owned by this process."""
    return Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-{label + '-' if label else ''}"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True   # someone else's process
    return True


def remove_orphans(folder: str | None = None) -> list[Path]:
    """Remove this user's scratch folders whose owner process has ended; returns what was removed."""
    removed = []
    root = Path(folder or tempfile.gettempdir())
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.match(entry.name)
        if not match or int(match.group(1)) == os.getpid():
            continue
        try:
            if not entry.is_dir() or entry.is_symlink() or entry.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        if not _alive(int(match.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
