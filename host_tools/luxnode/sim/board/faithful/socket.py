# The chips' `socket` for the board-faithful build (frozen in; shadows the unix port's
# built-in, which is extensible, and reaches it as `usocket`, the alias MicroPython
# keeps for every extensible built-in). Sockets are the host's, the unix port's own
# type (a Python subclass would break tls and select, which take the native object).
# What differs on the chips is modelled from the ports' sources:
# - option numbers: the ports' constants below, and setsockopt() takes the chip's
#   numbers, ignoring the level, warning on any other option (the _simchip C module,
#   which replaces the C library's setsockopt(): see simchip.c). So on an ESP8266
#   setsockopt(6, 1, 1) prints "Warning: lwip.setsockopt() not implemented" and leaves
#   Nagle on, while setsockopt(IPPROTO_TCP, TCP_NODELAY, 1) (0x40) sets it;
# - a dead network path (control line "net blackhole on|off"): _simchip, below the native
#   socket, holds what a TCP socket writes as lwIP holds unacknowledged segments and drops
#   what arrives; once the chip's TCP_SND_QUEUELEN pbufs are held a write does what the
#   port's does (ESP8266: modlwip's 10 s retry loop, then ENOMEM; ESP32: EAGAIN). The chip
#   is chosen below with _simchip.lwip(), which switches the model on (see simchip.c);
# - name lookups block the caller until answered, as lwIP's do: network's DNS delay
#   (control line "dns MS", or LUXNODE_SIM_DNS_MS) holds getaddrinfo that long; an IP
#   address needs no lookup;
# - the link's mDNS group (224.0.0.251:5353) is where LUXNODE_SIM_MDNS says (a loopback
#   HOST:PORT where a test answers as the link's responders would), else the host's own.
import _simchip
import machine
import network
import usocket as _builtin
from time import sleep_ms

_RESPONDERS = machine._getenv("LUXNODE_SIM_MDNS")

IPPROTO_IP = 0
IPPROTO_TCP = 6
if machine._CHIP == machine._ESP8266:  # extmod/modlwip.c
    _simchip.lwip(8266)
    SOL_SOCKET = 1
    SO_REUSEADDR = 0x04
    SO_BROADCAST = 0x20
    TCP_NODELAY = 0x40
    IP_ADD_MEMBERSHIP = 0x400
    IP_DROP_MEMBERSHIP = 0x401
else:  # ports/esp32/modsocket.c
    _simchip.lwip(32)
    SOL_SOCKET = 0xFFF
    SO_REUSEADDR = 0x04
    SO_BROADCAST = 0x20
    SO_BINDTODEVICE = 0x100B
    TCP_NODELAY = 0x01
    IP_ADD_MEMBERSHIP = 3
    IPPROTO_UDP = 17


def __getattr__(name):
    return getattr(_builtin, name)


def _literal(host):
    parts = host.split(".") if isinstance(host, str) else ()
    return len(parts) == 4 and all(p.isdigit() for p in parts)


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):
    if _RESPONDERS and (host, port) == ("224.0.0.251", 5353):
        host, port = _RESPONDERS.rsplit(":", 1)  # the ESP8266's str has no rpartition
        port = int(port)
    delay = network._dns_ms
    if delay and not _literal(host):  # an IP address needs no lookup
        sleep_ms(delay)  # the lookup holds the caller (the watchdog's timer runs on)
    return _builtin.getaddrinfo(host, port, af, type, proto, flags)
