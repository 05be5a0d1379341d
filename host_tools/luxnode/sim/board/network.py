# Simulated network for the MicroPython unix port: shadows the built-in `network`.
# The station joins at once while the access point is in range (the unix port's
# own sockets do the real work); the API and its states follow the ESP32 port.
# The access point can go and come back (machine's control line "wifi off|on",
# LUXNODE_SIM_AP=0 at boot): a station that was told to connect loses its IP
# and gets it back by itself when the AP returns, as the ESP32 port reconnects.
# Sockets are the host's: the model takes the link, not connections a firmware
# keeps open after isconnected() turned False.
import os

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
_dns_ms = int(os.getenv("LUXNODE_SIM_DNS_MS") or 0)  # how long a name lookup blocks (socket.py)
# The DNS server DHCP gave the station (ifconfig()[3]), which a firmware may ask itself on
# port 53: a loopback address where a test runs one, else 127.0.0.1.
_dns_server = os.getenv("LUXNODE_SIM_DNS_SERVER") or "127.0.0.1"
_interfaces = {}
_ap_in_range = os.getenv("LUXNODE_SIM_AP") != "0"


def _set_access_point(in_range):
    """The access point comes and goes (called by machine's control lines)."""
    global _ap_in_range
    _ap_in_range = bool(in_range)
    for wlan in _interfaces.values():
        wlan._link()


def hostname(name=None):
    global _hostname
    if name is None:
        return _hostname
    if len(name) > 32:  # MICROPY_PY_NETWORK_HOSTNAME_MAX_LEN (extmod/modnetwork.c), both ports
        raise ValueError
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
            wlan._joining = False  # connect() called, no disconnect() since
            _interfaces[interface] = wlan
        return _interfaces[interface]

    def __init__(self, interface=STA_IF):
        pass

    def active(self, on=None):
        if on is None:
            return self._active
        self._active = bool(on)
        if not on:
            self._joining = False
            self._status = STAT_IDLE

    def connect(self, ssid=None, key=None, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        if ssid is not None:  # without one the port joins the network it was last given
            self._ssid = ssid
        self._joining = True
        self._status = STAT_CONNECTING
        self._link()

    def disconnect(self):
        self._joining = False
        self._status = STAT_IDLE

    def _link(self):
        if not (self._active and self._joining):
            return
        if _ap_in_range:
            self._status = STAT_GOT_IP
        elif self._status == STAT_GOT_IP:
            self._status = STAT_BEACON_TIMEOUT  # the AP went silent; the port keeps trying
        elif self._status == STAT_CONNECTING:
            self._status = STAT_NO_AP_FOUND

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
            return ("127.0.0.1", "255.0.0.0", "127.0.0.1", _dns_server)
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
