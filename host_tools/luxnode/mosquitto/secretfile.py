"""Replacing an auth file: atomic and 0600, and still owned by whoever owned it.

A production password_file or psk_file is usually owned by the broker's user
(mosquitto drops to it before reading them); editing it as root must not hand
it to root, or the broker can no longer read it after a reload.
"""

import os
from pathlib import Path

from luxnode.files import write_private


def replace(path: str | Path, text: str) -> None:
    path = Path(path)
    try:
        before = path.stat()
    except FileNotFoundError:
        before = None
    write_private(path, text)
    if before is not None and os.geteuid() == 0:
        os.chown(path, before.st_uid, before.st_gid)
