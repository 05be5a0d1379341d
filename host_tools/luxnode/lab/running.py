"""One lab per home: the running lab holds a lock in $LUXNODE_HOME and says who it is.

A second ``luxnode lab`` on the same home would re-provision the simulated nodes
with new keys and rewrite the registry's ports under the first one. The lock is
an flock, so it goes away with its process, however that ends.
"""

import fcntl
import json
import os

from luxnode import home as lab_home
from luxnode.errors import LuxnodeError

LOCK_NAME = "lab.lock"


class LabLock:
    def __init__(self):
        self.path = lab_home.home() / LOCK_NAME
        self._file = None

    def acquire(self, ports, http_port: int, bind) -> None:
        lock = open(self.path, "a+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read()
            lock.close()
            raise LuxnodeError(self._refusal(holder)) from None
        lock.seek(0)
        lock.truncate()
        lock.write(json.dumps({"pid": os.getpid(), "port": ports.password, "psk_port": ports.psk,
                               "ws_port": ports.ws, "http_port": http_port, "bind": bind.setting,
                               "web_host": bind.web_host}) + "\n")
        lock.flush()
        self._file = lock

    def release(self) -> None:
        if self._file:
            self._file.close()   # closing drops the flock
            self._file = None

    def _refusal(self, holder: str) -> str:
        home = self.path.parent
        try:
            info = json.loads(holder)
            who = (f"pid {info['pid']}: MQTT port {info['port']}, TLS-PSK port {info['psk_port']}, "
                   f"WebSocket port {info['ws_port']}, dashboard "
                   f"http://{info.get('web_host', '127.0.0.1')}:{info['http_port']}/, "
                   f"listening on {info.get('bind', 'all')}")
        except (ValueError, KeyError, TypeError):
            who = "it is still starting"
        return (f"a lab is already running on {home} ({who}); stop it first, or give a second lab its own "
                f"home and ports: LUXNODE_HOME=DIR luxnode lab --port P --psk-port P --ws-port P --http-port P --ntp-port P")
