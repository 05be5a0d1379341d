# Which MicroPython this firmware needs. A top-level file: deploy copies it as source, so
# a board whose MicroPython is too old for the lux/ modules still loads it, and main.py
# prints its one line instead of failing on an import. Keep it in syntax any MicroPython
# 1.x reads (no f-strings); luxnode deploy and provision read the same numbers.
import sys

# The oldest release whose port has every API the node uses: ESP32 PWM(invert=) arrived
# in 1.26 (duty_u16 in 1.18, the tls module in 1.23), ESP8266 PWM duty_u16 in 1.21.
MIN_VERSION = {"esp32": (1, 26), "esp8266": (1, 21)}
# tls.SSLContext psk_identity / psk_key (config mqtt.tls.mode "psk").
PSK_VERSION = (1, 29)
# The newest of these: boot.py and main.py load this file only on an older MicroPython.
NEWEST = (1, 29)
BUILDS = {"esp32": "ESP32_GENERIC", "esp8266": "ESP8266_GENERIC"}


def needed(platform, tls_mode):
    """(version, what needs it) for a port and an mqtt.tls.mode, or None if any will do."""
    if tls_mode == "psk":
        return PSK_VERSION, "TLS-PSK"
    base = MIN_VERSION.get(platform)
    return (base, "this firmware") if base else None


def _text(version):
    return ".".join([str(n) for n in version])


def _read(path):
    try:
        import json

        with open(path) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else {}
    except Exception:  # missing or broken: lux.config reports a broken config
        return {}


def problem():
    """One line saying which MicroPython runs here and which is needed, or None if it fits."""
    try:
        tls = (_read("config.json").get("mqtt") or {}).get("tls") or {}
        need = needed(sys.platform, tls.get("mode") if isinstance(tls, dict) else None)
        found = tuple(sys.implementation.version[:3])
    except Exception:
        return None
    if need is None or found >= need[0]:
        return None
    board = _read("board.json")
    name = board.get("name") or sys.platform
    build = (board.get("micropython") or {}).get("build") or BUILDS.get(sys.platform, "MicroPython")
    return ("luxnode: MicroPython %s is too old: %s needs %s or newer; flash it with "
            "luxnode flash --port PORT --board %s --firmware %s-<date>-v<version>.bin "
            "(application skipped, the REPL stays available)"
            % (_text(found), need[1], _text(need[0]), name, build))
