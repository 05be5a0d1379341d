# Simulated network for the MicroPython unix port: shadows the built-in `network`.
# The station joins at once while the access point is in range (the unix port's
# own sockets do the real work); the API and its states follow the ESP32 port.
# The access point can go and come back (machine's control line "wifi off|on",
# LUXNODE_SIM_AP=0 at boot): a station that was told to connect loses its IP
# and gets it back by itself when the AP returns, as the ESP32 port reconnects.
# Sockets are the host's: the model takes the link, not connections a firmware
# keeps open after isconnected() turned False.
#
# Networks: any SSID and key join, unless LUXNODE_SIM_NETWORKS (JSON {"ssid": "key"})
# names the ones in range: then an unknown SSID is STAT_NO_AP_FOUND and a wrong key
# STAT_WRONG_PASSWORD. What the WiFi keeps across a reset follows the ports:
# - ESP32 family: the station and access point live in RAM (esp_wifi_set_storage(RAM),
#   ports/esp32/network_wlan.c) and a soft reset (Ctrl-D, machine.soft_reset()) never calls
#   esp_wifi_stop (main.c soft_reset_exit): after SOFT_RESET the station is as it was, still
#   connected, with the network and key it was given (kept in the runner's scratch, beside
#   the RTC memory file); any other reset starts with both interfaces off. No AP by default.
# - ESP8266: the SDK saves the mode (wifi_set_opmode, on every active(x)) and the station's
#   network (wifi_station_set_config, on every connect(ssid, key)) to flash, and at every boot
#   starts in the saved mode and rejoins the saved network by itself (the port never turns the
#   SDK's auto-connect off). A fresh board is in AP mode: inisetup.py gave the access point
#   "MicroPython-xxxxxx" with the published key "micropythoN" (WPA/WPA2). The flash is the
#   file .sdk-wifi.json in the board's folder, which also counts the writes ("mode_saves",
#   "sta_saves") for tests.
# _report() (machine's control line "wifi") says which network the station is on and whether
# the access point is up.
# Its names are frozen into the faithful build's qstr pool: none may be one the firmware uses and
# the chips' C modules lack (e.g. wlan, doc), or the node's qstr count there reads low.
import json

from machine import _getenv, _sim_text

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
AUTH_WPA_WPA2_PSK = 4

_hostname = _sim_text(b"luxnode")
_dns_ms = int(_getenv("LUXNODE_SIM_DNS_MS") or 0)  # how long a name lookup blocks (socket.py)
# The DNS server DHCP gave the station (ifconfig()[3]), which a firmware may ask itself on
# port 53: a loopback address where a test runs one, else 127.0.0.1.
_dns_server = _getenv("LUXNODE_SIM_DNS_SERVER") or "127.0.0.1"
_interfaces = {}
_ap_in_range = _getenv("LUXNODE_SIM_AP") != _sim_text(b"0")
_networks = json.loads(_getenv("LUXNODE_SIM_NETWORKS") or "null")  # None: any SSID and key join
_FLASH = ".sdk-wifi.json"  # the ESP8266 SDK's saved WiFi settings, in the board's folder


def _is_esp8266():
    import machine
    return machine._CHIP == machine._ESP8266


def _ram_file():
    """Where the ESP32's WiFi state outlives a soft reset: beside the runner's RTC memory."""
    rtc = _getenv("LUXNODE_SIM_RTC")
    return rtc + ".wifi" if rtc else None


def _json_in(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _json_out(path, contents):
    with open(path, "w") as f:
        json.dump(contents, f)


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
            wlan._passphrase = ""
            wlan._joining = False  # connect() called, no disconnect() since
            _interfaces[interface] = wlan
            _boot(wlan)
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
        _saved(self, "mode_saves")

    def connect(self, ssid=None, key=None, bssid=None):
        if not self._active:
            raise OSError("Wifi Not Started")
        given = ssid is not None or key is not None  # without either the port joins the network it was last given
        if given:
            self._ssid = ssid or ""  # both ports clear what is not given (a zeroed config struct)
            self._passphrase = key or ""
        self._joining = True
        self._status = STAT_CONNECTING
        self._link()
        _saved(self, "sta_saves" if given else "")

    def disconnect(self):
        self._joining = False
        self._status = STAT_IDLE
        _saved(self, None)

    def _link(self):
        if not (self._active and self._joining) or self._interface != STA_IF:
            return
        if not _ap_in_range or (_networks is not None and self._ssid not in _networks):
            if self._status == STAT_GOT_IP:
                self._status = STAT_BEACON_TIMEOUT  # the AP went silent; the port keeps trying
            elif self._status == STAT_CONNECTING:
                self._status = STAT_NO_AP_FOUND
        elif _networks is not None and _networks[self._ssid] != self._passphrase:
            self._status = STAT_WRONG_PASSWORD
        else:
            self._status = STAT_GOT_IP

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
            if self._interface == AP_IF and ("ssid" in kwargs or "key" in kwargs):
                self._ssid = kwargs.get("ssid", self._ssid)
                self._passphrase = kwargs.get("key", self._passphrase)
                _saved(self, "ap_saves")
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


def _boot(iface):
    """An interface as the chip has it when MicroPython starts (see the notes at the top)."""
    if _is_esp8266():
        flash = _json_in(_FLASH) or _fresh_esp8266(iface)
        iface._active = bool(flash["mode"] & (1 << iface._interface))  # STATION_MODE 1, SOFTAP_MODE 2
        iface._ssid, iface._passphrase = flash["sta" if iface._interface == STA_IF else "ap"]
        iface._joining = iface._active and iface._interface == STA_IF and bool(iface._ssid)  # auto-connect
    else:
        path = _ram_file()
        kept = _json_in(path) if path and _getenv("LUXNODE_SIM_RESET_CAUSE") == "SOFT_RESET" else None
        if not kept or str(iface._interface) not in kept:
            return
        iface._active, iface._ssid, iface._passphrase, iface._joining = kept[str(iface._interface)]
    if iface._joining:
        iface._status = STAT_CONNECTING
        iface._link()


def _fresh_esp8266(iface):
    """What inisetup.py leaves on a new board: AP mode, its access point with the published key."""
    import binascii
    mac = iface.config("mac")
    ap = ("MicroPython-%s" % binascii.hexlify(mac[-3:]).decode(), "micropythoN")
    return {"mode": 2, "sta": ["", ""], "ap": list(ap), "mode_saves": 0, "sta_saves": 0, "ap_saves": 1}


def _saved(iface, counter):
    """Keep what the chip keeps: the ESP8266 writes its flash (and counts it), the ESP32 its RAM."""
    if _is_esp8266():
        if not counter:
            return  # disconnect() and connect() alone are not saved
        flash = _json_in(_FLASH) or _fresh_esp8266(iface)
        sta, ap = WLAN(STA_IF), WLAN(AP_IF)
        flash["mode"] = (1 if sta._active else 0) | (2 if ap._active else 0)
        flash["sta"], flash["ap"] = [sta._ssid, sta._passphrase], [ap._ssid, ap._passphrase]
        flash[counter] = flash.get(counter, 0) + 1
        _json_out(_FLASH, flash)
        return
    path = _ram_file()
    if path:
        _json_out(path, {str(i): [w._active, w._ssid, w._passphrase, w._joining] for i, w in _interfaces.items()})


def _report():
    """"station on SSID|joining SSID (status N)|off, access point SSID|off" for the control line "wifi"."""
    sta, ap = WLAN(STA_IF), WLAN(AP_IF)
    if sta.isconnected():
        station = "on " + sta._ssid
    elif sta._active:
        station = "joining %s (status %d)" % (sta._ssid or "-", sta._status) if sta._joining else "idle"
    else:
        station = "off"
    return "station %s, access point %s" % (station, ap._ssid if ap._active else "off")
