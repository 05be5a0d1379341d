# A station that joins only on the n-th connect() (FAKE_WIFI_JOIN_ON) and can
# drop its link: enough to test lux.wifi's own retry on the unix port. The access
# point interface is off, as on an ESP32.
STA_IF = 0
AP_IF = 1
# saved: mode or network written; ssid, key: the network the station was last given
_state = {"connects": 0, "join_on": 2, "up": False, "saved": 0, "ssid": "", "key": ""}


def hostname(name=None):
    _state["hostname"] = name


class WLAN:
    def __init__(self, interface=STA_IF):
        self._active = False

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = on
        _state["saved"] += 1  # the ESP8266's wifi_set_opmode

    def connect(self, ssid=None, key=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        if ssid is not None or key is not None:
            _state["saved"] += 1  # the ESP8266's wifi_station_set_config
            _state["ssid"], _state["key"] = ssid or "", key or ""
        _state["connects"] += 1
        _state["up"] = _state["connects"] >= _state["join_on"]

    def disconnect(self):
        _state["up"] = False

    def isconnected(self):
        return self._active and _state["up"]

    def config(self, param):
        if param != "ssid":
            raise ValueError("unknown config param")
        return _state["ssid"]

    def ifconfig(self):
        return ("10.0.0.7", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def status(self, param=None):
        if param == "rssi":
            if not self.isconnected():
                raise OSError("Wifi Not Connected")
            return -61
        return 1010 if self.isconnected() else 1000
