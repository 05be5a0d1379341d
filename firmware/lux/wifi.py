# Joining the WiFi access point, with its own retry: a connect attempt gets a
# fixed time, then the radio is reset and the next attempt starts. The node
# loads this only while its station is off the network.
from time import ticks_diff

import network
from micropython import const

_ATTEMPT_MS = const(15000)


def station(hostname):
    """The station interface, announcing the node's host name where the port can."""
    if hasattr(network, "hostname"):
        try:
            network.hostname(hostname)
        except (OSError, ValueError):
            pass
    return network.WLAN(network.STA_IF)


class WiFi:
    def __init__(self, wlan, ssid, password, log, attempt_ms=_ATTEMPT_MS, tried=None):
        """tried: when the link was lost (the port's own reconnect gets one attempt's time)."""
        self.wlan = wlan
        self.ssid = ssid
        self.password = password  # None once the port holds the network (first connect)
        self.log = log
        self.attempt_ms = attempt_ms
        self._tried = tried

    def poll(self, now):
        """True once the station has an IP address."""
        if self.wlan.isconnected():
            self.log("wifi: connected to %s as %s" % (self.ssid, self.wlan.ifconfig()[0]))
            return True
        if self._tried is None or ticks_diff(now, self._tried) >= self.attempt_ms:
            self._tried = now
            # The ESP8266's SDK saves the mode and the network to flash on each active() and
            # connect(ssid, key): once per boot, not every attempt while the AP is away.
            try:
                if not self.wlan.active():
                    self.wlan.active(True)
                try:
                    self.wlan.disconnect()
                except OSError:
                    pass
                if self.password is None:
                    self.wlan.connect()
                else:
                    self.wlan.connect(self.ssid, self.password)
                    self.password = None
            except OSError as e:
                self.log("wifi: connect failed: %s" % e)
        return False
