# The chips' `time` for the board-faithful build (frozen in; shadows the unix port's
# built-in, which is extensible): seconds count from 2000-01-01 as on the ESP32 and
# ESP8266 ports (MICROPY_EPOCH_IS_2000), from the board's clock (_simchip: 2000-01-01
# at power-on until RTC().datetime() sets it), and gmtime/localtime give the ports'
# 8-tuple (no time zone on the chips). Everything else is the built-in's (the sleeps
# included: the board's watchdog interrupts them itself, see simchip.c): ticks_ms and
# friends wrap at 2**30 on this 32-bit build, as on the chips.
import _simchip
import utime as _builtin

_EPOCH_2000 = 946684800  # seconds from 1970-01-01 to 2000-01-01


def __getattr__(name):
    return getattr(_builtin, name)


def time():
    return _simchip.us() // 1000000 - _EPOCH_2000


def time_ns():
    return (_simchip.us() - _EPOCH_2000 * 1000000) * 1000


def gmtime(secs=None):
    return _builtin.gmtime((time() if secs is None else int(secs)) + _EPOCH_2000)[:8]


localtime = gmtime


def mktime(tt):
    """Seconds since 2000 of (year, month, mday, hour, minute, second, ...), as timeutils counts."""
    year, month, mday, hour, minute, second = tt[:6]
    year -= month <= 2
    era_day = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + mday - 1
    days = 365 * year + year // 4 - year // 100 + year // 400 + era_day - 730425  # day 0: 2000-01-01
    return (days * 24 + hour) * 3600 + minute * 60 + second
