"""mosquitto-style log lines: ``<unix time>: <message>``, filtered by log_type."""

import sys
import time

DEFAULT_TYPES = frozenset(("error", "warning", "notice", "information"))
ALL_TYPES = frozenset(("error", "warning", "notice", "information", "debug",
                       "subscribe", "unsubscribe", "websockets"))


class Log:
    def __init__(self, types=DEFAULT_TYPES, stream=None):
        types = set(types or ())
        if "all" in types:
            types = set(ALL_TYPES)
        types.discard("none")
        self.types = frozenset(types)
        self.stream = stream

    def enabled(self, kind: str) -> bool:
        return kind in self.types

    def __call__(self, kind: str, message: str) -> None:
        if kind in self.types:
            stream = self.stream or sys.stderr
            stream.write(f"{int(time.time())}: {message}\n")
            stream.flush()
