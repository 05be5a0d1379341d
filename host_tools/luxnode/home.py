"""The lab's state folder: device registry, broker config and auth files.

``$LUXNODE_HOME``, or ``~/.luxnode``. Provisioning writes here, the lab broker
reads here, and ``luxnode export mosquitto`` copies from here.
"""

import os
from pathlib import Path

REGISTRY = "registry.json"
BROKER_CONF = "broker.conf"
BROKER_PID = "broker.pid"
PASSWORD_FILE = "passwd"
PSK_FILE = "psk"
ACL_FILE = "acl"


def home() -> Path:
    path = Path(os.environ.get("LUXNODE_HOME") or Path.home() / ".luxnode")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path
