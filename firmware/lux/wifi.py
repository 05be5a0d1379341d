# WiFi station with its own retry: a connect attempt gets a fixed time, then
# the radio is reset and the next attempt starts.
from time import ticks_diff

import network

_ATTEMPT_MS = 15000


class WiFi:
    def __init__(self, ssid, password, hostname, log, attempt_ms=_ATTEMPT_MS):
        self.attempt_ms = attempt_ms
        self.ssid = ssid
        self.password = password
        self.log = log
        if hasattr(network, "hostname"):
            try:
                network.hostname(hostname)
            except (OSError, ValueError):
                pass
        self.wlan = network.WLAN(network.STA_IF)
        self.up = False
        self._tried = None

    def poll(self, now):
        """True while the station has an IP address; (re)connects otherwise."""
        if self.wlan.isconnected():
            if not self.up:
                self.up = True
                self.log("wifi: connected to %s as %s" % (self.ssid, self.wlan.ifconfig()[0]))
            return True
        if self.up:
            self.up = False
            self._tried = now
            self.log("wifi: lost %s" % self.ssid)
        if self._tried is None or ticks_diff(now, self._tried) >= self.attempt_ms:
            self._tried = now
            try:
                self.wlan.active(True)
                try:
                    self.wlan.disconnect()
                except OSError:
                    pass
                self.wlan.connect(self.ssid, self.password)
            except OSError as e:
                self.log("wifi: connect failed: %s" % e)
        return False

    def rssi(self):
        try:
            return self.wlan.status("rssi")
        except (OSError, ValueError, TypeError):
            return None
