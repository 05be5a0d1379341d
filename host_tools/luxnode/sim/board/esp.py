# The ESP8266 port's esp module (ports/esp8266/modesp.c), as far as a board without the SDK has
# it: the WiFi sleep type (what mqtt_as sets on an ESP8266) and the ROM's debug output. Frozen
# into the ESP8266's faithful build only: the ESP32's esp module has no sleep_type.
SLEEP_NONE = 0
SLEEP_LIGHT = 1
SLEEP_MODEM = 2
_sleep = [SLEEP_MODEM]  # the SDK's default


def sleep_type(*mode):
    if not mode:
        return _sleep[0]
    _sleep[0] = int(mode[0])


def osdebug(uart):
    pass
