# Simulated network for the MicroPython unix port: shadows the built-in `network`.
# The station joins at once (the unix port's own sockets do the real work);
# the API and its states follow the ESP32 port.
STA_IF = 0
AP_IF = 1
STAT_IDLE = 1000
STAT_CONNECTING = 1001
STAT_GOT_IP = 1010
STAT_NO_AP_FOUND = 201
STAT_WRONG_PASSWORD = 202
STAT_BEACON_TIMEOUT = 200
STAT_ASSOC_FAIL = 203
STAT_HANDSHAKE_TIMEOUT = 204
AUTH_OPEN = 0
AUTH_WPA2_PSK = 3

_hostname = "luxnode"
_interfaces = {}


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    _hostname = name


def country(code=None):
    return "XX" if code is None else None


class WLAN:
    def __new__(cls, interface=STA_IF):
        # One object per interface, as on the chip.
        if interface not in _interfaces:
            wlan = object.__new__(cls)
            wlan._interface = interface
            wlan._active = False
            wlan._status = STAT_IDLE
            wlan._ssid = ""
            _interfaces[interface] = wlan
        return _interfaces[interface]

    def __init__(self, interface=STA_IF):
        pass

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._status = STAT_IDLE

    def connect(self, ssid=None, key=None, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        self._ssid = ssid or ""
        self._status = STAT_GOT_IP

    def disconnect(self):
        self._status = STAT_IDLE

    def isconnected(self):
        return self._active and self._status == STAT_GOT_IP

    def status(self, param=None):
        if param is None:
            return self._status
        if param == "rssi":
            if not self.isconnected():
                raise OSError("Wifi Not Connected")
            return -55
        raise ValueError("unknown status param")

    def ifconfig(self, config=None):
        if config is not None:
            return
        if self.isconnected():
            return ("127.0.0.1", "255.0.0.0", "127.0.0.1", "127.0.0.1")
        return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")

    def config(self, *args, **kwargs):
        if kwargs:
            if "dhcp_hostname" in kwargs or "hostname" in kwargs:
                hostname(kwargs.get("dhcp_hostname") or kwargs.get("hostname"))
            return
        param = args[0]
        if param == "mac":
            import machine
            return (machine.unique_id() + bytes(6))[:6]  # the ESP32 unique id is its MAC
        if param in ("essid", "ssid"):
            return self._ssid
        if param in ("dhcp_hostname", "hostname"):
            return _hostname
        if param == "txpower":
            return 20
        raise ValueError("unknown config param")

    def scan(self):
        return [(b"sim", b"\x24\x0a\xc4\x00\x00\x01", 6, -55, AUTH_WPA2_PSK, False)]
