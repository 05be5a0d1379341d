# The last LED state on flash: written only when it changed and then stayed
# the same for a while (fades and slider drags cost no flash wear).
import os
from time import ticks_diff


class Store:
    def __init__(self, saved, path="state.json", delay_ms=5000):
        """saved: (control, value, last_on) as read at boot (lux.start), or None."""
        self.path = path
        self.delay_ms = delay_ms
        self.saved = saved
        self._seen = None
        self._since = 0

    def poll(self, now, snap):
        """snap: (control, value, last_on) now; writes once it settled."""
        if snap != self._seen:
            self._seen = snap
            self._since = now
        elif snap != self.saved and ticks_diff(now, self._since) >= self.delay_ms:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.write('{"control": "%s", "value": %s, "last_on": %s}' % snap)
            os.rename(tmp, self.path)
            self.saved = snap
            return True
        return False
