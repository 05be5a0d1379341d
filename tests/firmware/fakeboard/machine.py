# Pins and RTC memory for lux.safemode on the unix port: FAKE_PIN_LOW names a pin
# held low at boot, FAKE_RESET_CAUSE the reset cause; RTC memory is a global.
try:
    from _simchip import getenv  # the faithful build: its os has no getenv, as the ESP8266's
except ImportError:
    from os import getenv

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5
_rtc = [b""]


class Pin:
    IN = 1
    PULL_UP = 2

    def __init__(self, id, mode=-1, pull=-1):
        self.id = id

    def value(self):
        return 0 if str(self.id) == getenv("FAKE_PIN_LOW") else 1


class RTC:
    def memory(self, data=None):
        if data is None:
            return _rtc[0]
        _rtc[0] = bytes(data)


def reset_cause():
    return int(getenv("FAKE_RESET_CAUSE") or WDT_RESET)
