# Joining the WiFi access point, with its own retry: a connect attempt gets a
# fixed time, then the radio is reset and the next attempt starts. The node
# loads this only while its station is off the network.
from time import ticks_diff

import network
from micropython import const

_ATTEMPT_MS = const(15000)


def station(hostname, log):
    """The station interface, announcing the node's host name where the port can. The access
    point goes off, said through ``log``: a fresh ESP8266 offers one with a published key
    (inisetup.py)."""
    if hasattr(network, "hostname"):
        try:
            network.hostname(hostname)
        except (OSError, ValueError):
            pass
    ap = network.WLAN(network.AP_IF)
    if ap.active():  # asked first: the ESP8266's SDK writes the mode to flash on every change
        ap.active(False)
        log("wifi: access point off")
    return network.WLAN(network.STA_IF)


class WiFi:
    def __init__(self, wlan, ssid, password, log, attempt_ms=_ATTEMPT_MS, tried=None):
        """tried: when the link was lost (the port's own reconnect gets one attempt's time)."""
        self.wlan = wlan
        self.ssid = ssid
        self.password = password  # None once this boot gave it to the port (the node keeps that)
        self.log = log
        self.attempt_ms = attempt_ms
        self._tried = tried

    def poll(self, now):
        """True once the station has an IP address on the configured network."""
        if self.wlan.isconnected():
            # Until this boot gave the port the network, it may be on another: the ESP32 stays on
            # the old one across a soft reset (re-provisioning), the ESP8266's SDK rejoins the one
            # saved in flash at boot. The SSID decides; its password is given at the boot's first join.
            on = self.ssid if self.password is None else self.wlan.config("ssid")
            if on == self.ssid:
                self.log("wifi: connected to %s as %s" % (self.ssid, self.wlan.ifconfig()[0]))
                return True
            self.log("wifi: on %s, not %s: joining it" % (on, self.ssid))
            self._tried = None  # at once
        if self._tried is None or ticks_diff(now, self._tried) >= self.attempt_ms:
            self._tried = now
            # The ESP8266's SDK saves the mode and the network to flash on each active() and
            # connect(ssid, key): once per boot, not every attempt or outage while the AP is away.
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
