# Safe mode skips the application so that a broken config cannot brick a board:
# a pin held low at boot, or too many boots in a row that never ran stable
# (counted in RTC memory, which survives resets but not power cycles).
# The pin is the BOOT button, a strapping pin: held through reset it starts the ROM's
# serial bootloader instead, so it is pressed after reset and boot listens for it a
# while (board.json safe_mode_window_ms).
import json
from time import sleep_ms, ticks_diff, ticks_ms

import machine
from micropython import const

_BOOT_LIMIT = const(3)
_MAGIC = b"LXB"

active = False
reason = None
checked = False


def _count():
    mem = machine.RTC().memory()
    if len(mem) == 4 and mem[:3] == _MAGIC:
        return mem[3]
    return 0


def _store(n):
    machine.RTC().memory(_MAGIC + bytes((min(n, 255),)))


def check():
    """Decide safe mode; called once from boot.py."""
    global active, reason, checked
    checked = True
    try:
        with open("board.json") as f:
            board = json.load(f)
    except (OSError, ValueError):
        board = {}
    pin = board.get("safe_mode_pin")
    if pin is not None:
        button = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        window = board.get("safe_mode_window_ms") or 0
        if window:
            print("luxnode: hold BOOT (pin %d) now for safe mode" % pin)
        start = ticks_ms()
        while button.value():
            if ticks_diff(ticks_ms(), start) >= window:
                break
            sleep_ms(20)
        else:
            active, reason = True, "pin %d held low at boot" % pin
    if (board.get("capabilities") or {}).get("rtc_memory"):
        cause = machine.reset_cause()
        n = 0 if cause == machine.PWRON_RESET else _count()
        # A soft reset (Ctrl-D: mpremote, luxnode deploy) is no failed boot. The ESP32 family
        # reports it as SOFT_RESET; the ESP8266 reports the last hardware cause, and SOFT_RESET
        # for machine.reset(), which a crash ends in: there the tools forget the count first.
        if cause != machine.SOFT_RESET or board.get("chip") == "ESP8266":
            n += 1
        if n > _BOOT_LIMIT and not active:
            active, reason = True, "%d boots in a row without a stable run" % (n - 1)
        _store(0 if active else n)  # after safe mode, the next boot tries the application again
    return active


def stable():
    """The application ran long enough: forget the boot count."""
    try:
        if _count():
            _store(0)
    except (AttributeError, OSError):
        pass
