# Simulated board for the MicroPython unix port: shadows the built-in `machine`.
#
# The bench it models: a photoresistor divider on the ADC pin that sees the
# ambient light plus the LED strip's own light (through a first-order lag, with
# a little noise), and an LED strip on the PWM pin behind a driver stage that
# inverts when config.json says dimmer.invert. The sensor is calibrated as
# config.json says (sensor.dark_raw..bright_raw at the board's attenuation), so
# in steady state the node measures the light % this model holds.
#
# Control from the host runner (only when LUXNODE_SIM_CONTROL=stdin): lines on
# stdin, polled without blocking whenever the firmware reads the ADC:
#   "ambient 42.5"  set the ambient light %
#   "heap"          print "machine: heap <mem_alloc> <mem_free>" after gc.collect(), and on the
#                   faithful build " <qstrs> <qstr pool bytes>" (interned since start)
#   "wifi off|on"   the access point goes out of range / comes back (network.py)
#   "wifi"          print "machine: wifi station on SSID, access point off" (network._report)
#   "soft reset"    Ctrl-D: MicroPython starts again, the chip runs on (machine: reset SOFT_RESET)
#   "bench"         print "machine: bench ambient <%> led <0..1> adc_reads <n>"
#   "dns 3000"      name lookups block 3000 ms from now on (socket.py of the faithful build)
#   "net blackhole on|off"  the path to every server dies (nothing acknowledged, nothing more
#                   received: what had reached the board is still read) or
#                   comes back (_simchip's socket model: faithful build only)
# Buttons: LUXNODE_SIM_HELD="0" holds them down from before the reset; LUXNODE_SIM_PRESSED="0"
# or "0@400" presses them once the chip runs (at once, or 400 ms after the board started).
# The boot pin (board.json "boot_pin": GPIO0, GPIO9 on the C3) is a strapping pin: held
# low at reset, the chip's ROM starts its serial bootloader instead of MicroPython, and
# the board prints "machine: waiting for download ..." and runs nothing (as the ROM does).
# Board events are printed as "machine: ..." lines; under the runner, reset()
# and a watchdog timeout print "machine: reset <CAUSE>" and stop, and the runner
# boots the node again (as the chip would).
#
# What differs per chip follows the ports' sources (MicroPython 1.29 preview, 1c3c201),
# chosen by board.json's "chip":
# - ESP8266: ADC read() 0..1024 and read_u16() = raw * 65535 // 1024 (machine_adc.c);
#   PWM 10-bit: duty_u16(d) sets d * 1024 // 65535, the constructor and init() take
#   duty_u16 * 1000 // 65535 (machine_pwm.c), clamped to 0..1023 and on for duty/1023
#   of the period (esppwm.c); the software watchdog counts ticks of a
#   1.6 s timer and resets at the second tick without a feed, i.e. 1.6-3.2 s after the
#   last one (ets_alt_task.c); until WDT() exists the port's event loop feeds it (so
#   nothing resets), from then on only WDT.feed() does. The reset cause is 3
#   (REASON_SOFT_WDT_RST, which is none of the machine constants); RTC memory holds
#   492 bytes (machine_rtc.c MEM_USER_MAXLEN); reset causes are the SDK's numbers.
# - ESP32 family: ADC powers up at the maximum attenuation (11 dB); RTC memory 2048 B;
#   WDT(timeout=) is the IDF task watchdog, fed only by WDT.feed(), resetting `timeout`
#   ms after the last feed (WDT_RESET); PWM keeps as many of duty_u16's 16 bits as the
#   frequency leaves the LEDC timer (ESP32 16 up to 1.2 kHz, 10 at 40 kHz; S3/C3 13 at
#   1 kHz): the duty the LED gets and duty_u16() lose the rest (_ledc_timer below), and
#   duty_u16() reads the duty register, which takes a new duty only from the next period.
# - board.json "chip" "sim" (or none): an ideal 16-bit PWM at any frequency.
# - The watchdog resets wherever the loop is, as the chip's timer interrupt does: on the
#   faithful build _simchip's SIGALRM (a busy loop or a call blocked forever included);
#   on a plain unix port a thread, and whenever the firmware touches the board.
# - The wall clock (RTC().datetime) is the board's when the faithful build's _simchip
#   is there: 2000-01-01 at power-on, kept across resets, set only by the firmware.
import gc
import json
import math
import os
import random
import sys
import time

def _sim_text(b):
    """Text the firmware also writes, made at run time (here and in network.py): a literal would put
    it among the image's names (frozen), which the chip's C machine and network modules do not
    hold, so the faithful build would not count it when the firmware interns it
    (tests/firmware/test_rom_qstrs.py)."""
    return str(b, "utf-8")


_BOARD_JSON = _sim_text(b"board.json")
_ESP8266 = _sim_text(b"ESP8266")


def _board_file():
    try:
        with open(_BOARD_JSON) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _board_keys():
    """The chip and its boot pin: only these stay (the whole file would take heap the node is
    measured on, which the chips' C machine module does not)."""
    board = _board_file()
    return board.get(_sim_text(b"chip")), board.get("boot_pin")


_CHIP, _BOOT_PIN = _board_keys()
if _CHIP == _ESP8266:
    # Its `tls` is axTLS: no certificate verification, no PSK. In place from the moment
    # the board is (machine is imported by the board's own socket and by the firmware
    # before it imports tls), so code that never opens the ADC gets the chip's TLS too.
    import _axtls
    sys.modules["tls"] = _axtls
    # the SDK's rst_info reasons (ports/esp8266/modmachine.c)
    PWRON_RESET = 0
    WDT_RESET = 1
    SOFT_RESET = 4
    DEEPSLEEP_RESET = 5
    HARD_RESET = 6
    _RTC_MEMORY = 492
else:
    PWRON_RESET = 1
    HARD_RESET = 2
    WDT_RESET = 3
    DEEPSLEEP_RESET = 4
    SOFT_RESET = 5
    _RTC_MEMORY = 2048
_CAUSES = {"PWRON_RESET": PWRON_RESET, "HARD_RESET": HARD_RESET, "WDT_RESET": WDT_RESET,
           "DEEPSLEEP_RESET": DEEPSLEEP_RESET, "SOFT_RESET": SOFT_RESET, "SOFT_WDT_RESET": 3}
try:
    import _simchip  # the faithful build's board clock
except ImportError:
    _simchip = None
# The runner's settings: the faithful build has no os.getenv (the ESP8266's os has none), _simchip has
_getenv = _simchip.getenv if _simchip else os.getenv

_RUNNER = _getenv("LUXNODE_SIM_CONTROL") == "stdin"
_LED_GAIN = float(_getenv("LUXNODE_SIM_LED_GAIN") or 70.0)  # % light the LED adds at full
_TAU_MS = float(_getenv("LUXNODE_SIM_TAU_MS") or 200.0)    # LED-to-sensor lag
_NOISE = float(_getenv("LUXNODE_SIM_NOISE") or 0.3)         # +-% uniform sensor noise
_HELD = (_getenv("LUXNODE_SIM_HELD") or "").split(",")  # buttons held down to ground through reset
_PRESSED = {}  # pin -> ms after the board started that its button goes down
for _spec in (_getenv("LUXNODE_SIM_PRESSED") or "").split(","):
    if _spec:  # split, not partition: the ESP8266's str has none, nor has the faithful build's
        _pin_at = _spec.split("@", 1)
        _PRESSED[_pin_at[0]] = int(_pin_at[1]) if len(_pin_at) > 1 and _pin_at[1] else 0
# Full-scale input voltage of the ESP32 ADC at each attenuation (dB -> volts).
_FULL_SCALE = {0: 0.95, 2: 1.25, 6: 1.75, 11: 2.45}


def _read_json(name):
    try:
        with open(name) as f:
            return json.load(f)
    except OSError:
        return {}


class _Bench:
    """What is wired to the board: where, and how the light behaves."""

    def __init__(self):
        board = _read_json(_BOARD_JSON)
        config = _read_json("config.json")
        pins = config.get(_sim_text(b"pins"), {})
        sensor = config.get(_sim_text(b"sensor"), {})
        adc, pwm = _sim_text(b"adc"), _sim_text(b"pwm")
        adc_board = board.get(adc, {})
        self.wired_adc = pins.get(adc, adc_board.get("pin", 34))
        self.wired_pwm = pins.get(pwm, board.get(pwm, {}).get("pin", 25))
        self.bits = adc_board.get("bits", 12)
        self.adc_db = adc_board.get(_sim_text(b"atten_db"), 11)
        self.pwm_invert_kw = board.get("capabilities", {}).get(_sim_text(b"pwm_invert"), True)
        self.chip_name = board.get(_sim_text(b"chip"))
        pwm_board = board.get(pwm, {})
        self.freq_range = (pwm_board.get(_sim_text(b"freq_min"), 1), pwm_board.get(_sim_text(b"freq_max"), 40000000))
        self.stage_inverts = bool(config.get(_sim_text(b"dimmer"), {}).get("invert", False))
        self.raw_dark = sensor.get(_sim_text(b"dark_raw"), 0)
        self.raw_bright = sensor.get(_sim_text(b"bright_raw"), (1 << self.bits) - 1)
        self.ambient = float(_getenv("LUXNODE_SIM_AMBIENT") or 20.0)
        self.led = 0.0          # LED output 0..1 as the stage drives it
        self.seen = 0.0         # LED light as the sensor sees it (lagged)
        self.reads = 0          # ADC conversions so far
        self.last = time.ticks_ms()

    def advance(self):
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self.last)
        if dt > 0:
            self.seen += (self.led - self.seen) * (1.0 - math.exp(-dt / _TAU_MS))
            self.last = now

    def seen_light(self):
        self.advance()
        level = self.ambient + _LED_GAIN * self.seen
        return 0.0 if level < 0 else 100.0 if level > 100 else level

    def drive_led(self, pin_high_fraction):
        self.advance()
        self.led = 1.0 - pin_high_fraction if self.stage_inverts else pin_high_fraction


_bench = None


def _the_bench():
    global _bench
    if _bench is None:
        _bench = _Bench()
    return _bench


_control = None


def _poll_control():
    """Apply the runner's pending control lines; never blocks."""
    global _control
    _watchdog_check()
    if not _RUNNER:
        return
    if _control is None:
        import select
        _control = select.poll()
        _control.register(sys.stdin, select.POLLIN)
    while _control.poll(0):
        line = sys.stdin.readline()
        if not line:  # the runner is gone, and with it the board's power
            print("machine: power lost")
            if _simchip:
                _simchip.power_off()
            os.system("kill -KILL $PPID")  # the plain unix port: the shell's parent is this process
            raise SystemExit(1)
        words = line.split()
        if len(words) == 2 and words[0] == "ambient":
            try:
                _the_bench().ambient = float(words[1])
            except ValueError:
                print("machine: bad ambient value", words[1])
        elif words == ["heap"]:
            gc.collect()
            print("machine: heap", gc.mem_alloc(), gc.mem_free(), *(_simchip.qstrs() if _simchip else ()))
        elif words in (["wifi", "off"], ["wifi", "on"]):
            import network
            network._set_access_point(words[1] == "on")
            print("machine: wifi access point", "back" if words[1] == "on" else "gone")
        elif words == ["wifi"]:
            import network
            print("machine: wifi", network._report())
        elif words == ["soft", "reset"]:
            soft_reset()
        elif len(words) == 2 and words[0] == "dns" and words[1].isdigit():
            import network
            network._dns_ms = int(words[1])
            print("machine: dns lookups take", words[1], "ms")
        elif words[:2] == ["net", "blackhole"] and words[2:] in (["on"], ["off"]) and _simchip:
            _simchip.blackhole(words[2] == "on")
            print("machine: network path", "dead" if words[2] == "on" else "back")
        elif words == ["bench"]:
            bench = _the_bench()
            print("machine: bench ambient %s led %s adc_reads %d" % (bench.ambient, bench.led, bench.reads))
        elif words:
            print("machine: unknown control line", line.strip())


def _halt():
    # The chip stops here; the runner kills this process (and boots it again on reset).
    if not _RUNNER:
        raise SystemExit(1)
    while True:
        time.sleep_ms(1000)


def _pin_id(pin):
    return pin.id() if isinstance(pin, Pin) else pin


class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 2
    PULL_DOWN = 1
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self._id = id
        self._value = 0
        self._button = None  # ms after the start its button goes down (LUXNODE_SIM_PRESSED)
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
            # A pull-up reads high unless a button on that pin is down (held or pressed).
            self._value = 1 if pull == Pin.PULL_UP and str(self._id) not in _HELD else 0
            self._button = _PRESSED.get(str(self._id)) if pull == Pin.PULL_UP else None
        if value is not None:
            self._value = 1 if value else 0
            self._button = None

    def id(self):
        return self._id

    def value(self, v=None):
        if v is None:
            if self._button is not None and time.ticks_diff(time.ticks_ms(), _BOOT_MS) >= self._button:
                return 0
            return self._value
        self._value = 1 if v else 0
        self._button = None

    def on(self):
        self._value = 1

    def off(self):
        self._value = 0

    def irq(self, handler=None, trigger=3):
        return None

    def __call__(self, v=None):
        return self.value(v)

    def __repr__(self):
        return "Pin(%s)" % self._id


class ADC:
    ATTN_0DB = 0
    ATTN_2_5DB = 1
    ATTN_6DB = 2
    ATTN_11DB = 3
    WIDTH_9BIT = 0
    WIDTH_10BIT = 1
    WIDTH_11BIT = 2
    WIDTH_12BIT = 3
    _DB = (0, 2, 6, 11)

    def __init__(self, pin, atten=None):
        bench = _the_bench()
        if bench.adc_db is None and not isinstance(pin, int):
            raise TypeError("can't convert Pin to int")  # the ESP8266 ADC takes its id: ADC(0)
        self._wired = _pin_id(pin) == bench.wired_adc
        # The ESP32 ADC powers up at its maximum attenuation (machine_adc.c: ADC_ATTEN_DB_12/11).
        self._atten_db = None if bench.adc_db is None else 11
        if atten is not None:
            self.atten(atten)

    def atten(self, attn):
        if _the_bench().adc_db is None:  # the ESP8266 ADC has a fixed range
            raise AttributeError("'ADC' object has no attribute 'atten'")
        self._atten_db = ADC._DB[attn]

    def width(self, bits):
        pass

    def _raw(self):
        # 12-bit reading as the chip would give it at the current attenuation.
        _poll_control()
        if not self._wired:
            return 0
        bench = _the_bench()
        bench.reads += 1
        # getrandbits: the ESP8266 has no random.random() (MICROPY_PY_RANDOM_EXTRA_FUNCS 0)
        light = bench.seen_light() + (random.getrandbits(16) / 32768.0 - 1.0) * _NOISE
        raw = bench.raw_dark + (bench.raw_bright - bench.raw_dark) * light / 100.0
        if self._atten_db is not None:
            raw = raw * _FULL_SCALE[bench.adc_db] / _FULL_SCALE[self._atten_db]
        top = 1024 if _CHIP == _ESP8266 else (1 << bench.bits) - 1  # system_adc_read(): 0..1024
        return 0 if raw < 0 else top if raw > top else int(raw + 0.5)

    def read(self):
        return self._raw()

    def read_u16(self):
        raw = self._raw()
        if _CHIP == _ESP8266:
            return raw * 65535 // 1024
        bits = _the_bench().bits
        return (raw << (16 - bits)) | (raw >> (2 * bits - 16))

    def read_uv(self):
        full_scale = 1.0 if self._atten_db is None else _FULL_SCALE[self._atten_db]
        return int(self._raw() * full_scale * 1000000) // ((1 << _the_bench().bits) - 1)


# The ESP32 family's LEDC as ports/esp32/machine_pwm.c drives it through ESP-IDF's ledc.c:
# SOC_LEDC_TIMER_BIT_WIDTH per chip (components/soc/<chip>/include/soc/soc_caps.h), and the
# source clock set_freq() picks: APB (80 MHz) on all three, REF_TICK (1 MHz) on the ESP32
# below EMPIRIC_FREQ (10 Hz).
_LEDC_WIDTH = {"ESP32": 20, "ESP32-S3": 14, "ESP32-C3": 14}
_LEDC = _CHIP in _LEDC_WIDTH


def _ilog2(n):
    bits = 0
    while n > 1:
        n >>= 1
        bits += 1
    return bits


def _ledc_divisor(src, freq, bits):
    # ledc_calculate_divisor(): the timer's clock divider, 8 fractional bits, rounded
    return ((src << 8) + (freq << bits) // 2) // (freq << bits)


def _ledc_divisor_bad(div):
    return div <= 255 or div > 0x3FFFF  # LEDC_IS_DIV_INVALID: below 1.0 or past 10.8 bits


def _ledc_timer(freq):
    """(source clock, duty resolution) for a frequency, or the OSError the port raises."""
    src = 1000000 if _CHIP == "ESP32" and freq < 10 else 80000000
    width = _LEDC_WIDTH[_CHIP]
    # ledc_find_suitable_duty_resolution(): the most bits the divider allows, up to the timer's
    bits = min(_ilog2((src + freq // 2) // freq), width)
    if _ledc_divisor_bad(_ledc_divisor(src, freq, bits)):
        bits = min(_ilog2(src // freq), width)
        if _ledc_divisor_bad(_ledc_divisor(src, freq, bits)):
            bits = 0
    # machine_pwm.c find_suitable_duty_resolution(): at most 16, and one less at the timer's
    # full width (100 % duty is not reachable there: the chips' hardware bug)
    bits = min(bits, 16)
    if bits >= width:
        bits -= 1
    # ledc_timer_config() refuses 0 bits, and a divider the fewer bits put out of range
    if not bits:
        raise OSError(-0x102, "ESP_ERR_INVALID_ARG")
    if _ledc_divisor_bad(_ledc_divisor(src, freq, bits)):
        raise OSError(1, "ESP_FAIL")
    return src, bits


def _check_freq(f):  # check_freq_ranges() against the 40 MHz the init helper and freq() allow
    if not 0 < f <= 40000000:
        raise ValueError("frequency must be from 1Hz to 40MHz")


class PWM:
    def __init__(self, pin, freq=None, duty_u16=None, invert=None, **kw):
        bench = _the_bench()
        if invert is not None and not bench.pwm_invert_kw:
            raise TypeError("unexpected keyword argument 'invert'")  # as ESP8266 MicroPython says
        self._pin = _pin_id(pin)
        self._invert = bool(invert)
        self._freq = 5000
        # ESP8266: the SDK's duty 0..1023 (PWM_DEPTH); ESP32 family: the 16-bit duty asked for
        # (65535 kept as 65536, full on; 50 % until one is given, PWM_DUTY) and the timer's
        self._duty = 32768 if _LEDC else 0
        self._bits = 16
        self._src = 0
        self._shown = 0  # ESP32 family: the duty register of the present cycle, and the last write
        self._wrote_ms = self._wrote_us = 0
        self.init(freq=freq, duty_u16=duty_u16, **kw)

    def init(self, freq=None, duty_u16=None, duty=None, duty_ns=None):
        if _LEDC:  # mp_machine_pwm_init_helper(): checks, then the timer, then the duty once
            if freq is not None:
                _check_freq(freq)
            if duty_u16 is not None:
                self._set16(duty_u16)
            elif duty is not None:
                self._set_u10(duty)
            if not self._src or freq not in (None, self._freq):
                self._timer(self._freq if freq is None else freq)
            self._apply()
            return
        if freq is not None:
            self.freq(freq)
        if _CHIP == _ESP8266:  # machine_pwm.c init helper: duty is raw, duty_u16 * 1000 / 65535
            if duty is not None:
                self._set10(duty)
            if duty_u16 is not None:
                self._set10(duty_u16 * 1000 // 65535)
            self._apply()
            return
        if duty is not None:
            duty_u16 = duty * 65535 // 1023
        if duty_u16 is not None:
            self.duty_u16(duty_u16)
        else:
            self._apply()

    def freq(self, f=None):
        if _LEDC:
            if f is None:  # ledc_get_freq(): what the divider gives, not what was asked
                precision = 1 << self._bits
                div = _ledc_divisor(self._src, self._freq, self._bits)
                return ((self._src << 8) + precision * div // 2) // (precision * div)
            _check_freq(f)
            if f != self._freq:
                self._timer(f)
                self._apply()  # the duty asked for, at the new resolution (set_freq_duty)
            return
        if f is None:
            return self._freq
        low, high = _the_bench().freq_range
        if not low <= f <= high:
            raise ValueError("freq must be from %dHz to %dHz" % (low, high))
        self._freq = f

    def _timer(self, f):
        self._src, self._bits = _ledc_timer(f)
        self._freq = f

    def _set10(self, d):
        self._duty = 0 if d < 1 else 1023 if d > 1023 else d  # esppwm.c pwm_set_duty: 0..PWM_DEPTH

    def _channel_duty(self):
        # apply_duty(): the duty register keeps the top bits; the rest is lost
        return self._duty >> (16 - self._bits)

    def _register(self):
        # ledc_get_duty() reads the duty "at the present PWM cycle": a new one shows from the next
        # period (ledc.h). Here from a whole period after the last write, the most the chip takes.
        if self._shown != self._channel_duty():
            if (time.ticks_diff(time.ticks_ms(), self._wrote_ms) > 1000
                    or time.ticks_diff(time.ticks_us(), self._wrote_us) >= 1000000 // self._freq):
                self._shown = self._channel_duty()
        return self._shown

    def _set16(self, d):  # check_duty_u16(): 65535 is kept as 65536, full on
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65536")
        self._duty = 65536 if d == 65535 else d

    def _set_u10(self, d):  # check_duty_u10(): 1023 is full on, the rest d << 6
        if not 0 <= d <= 1023:
            raise ValueError("duty must be from 0 to 1023")
        self._duty = 65536 if d == 1023 else d << 6

    def duty_u16(self, d=None):
        if _CHIP == _ESP8266:
            if d is None:
                return self._duty * 65535 // 1024
            self._set10(d * 1024 // 65535)
            self._apply()
            return
        if _LEDC:
            if d is None:  # get_duty_u16(): what the duty register holds, scaled back up
                d = self._register() << (16 - self._bits)
                return 65535 if d == 65536 else d
            self._set16(d)
            self._apply()
            return
        if d is None:
            return self._duty
        if not 0 <= d <= 65535:
            raise ValueError("duty_u16 must be from 0 to 65535")
        self._duty = d
        self._apply()

    def duty(self, d=None):
        if _CHIP == _ESP8266:
            if d is None:
                return self._duty
            self._set10(d)
            self._apply()
            return
        if _LEDC:
            if d is None:
                return self.duty_u16() >> 6  # get_duty_u10()
            self._set_u10(d)
            self._apply()
            return
        if d is None:
            return self._duty * 1023 // 65535
        self.duty_u16(d * 65535 // 1023)

    def deinit(self):
        # The pin drops low: behind an inverting stage that turns the LED fully on.
        self._duty = 0
        self._invert = False
        self._apply()

    def _apply(self):
        if _LEDC:
            self._wrote_ms, self._wrote_us = time.ticks_ms(), time.ticks_us()
        if self._pin != _the_bench().wired_pwm:
            return  # nothing else is wired to a light
        if _CHIP == _ESP8266:
            high = self._duty / 1023  # esppwm.c: period * duty / PWM_DEPTH
        elif _LEDC:
            high = self._channel_duty() / (1 << self._bits)  # duty of 2**bits counts
        else:
            high = self._duty / 65535
        _the_bench().drive_led(1.0 - high if self._invert else high)

    def __repr__(self):
        return "PWM(Pin(%s), freq=%d, duty_u16=%d)" % (self._pin, self.freq(), self.duty_u16())


_wdt_deadline = None
_wdt_timeout = 0
_wdt_fed_at = 0
_BOOT_MS = time.ticks_ms()
_ESP8266_TIMEOUT = "machine: watchdog timeout (ESP8266 software watchdog: no feed for 1.6-3.2 s)"
_TIMEOUT = "machine: watchdog timeout"


def _watchdog_check():
    """Reset if the watchdog has run out. The faithful build's watchdog is a timer in _simchip
    that resets the board wherever its loop is; on a plain unix port this runs whenever the
    firmware touches the board (each feed, ADC read) and in a thread beside it."""
    if _wdt_deadline is None or _simchip is not None:
        return
    now = time.ticks_ms()
    if _CHIP == _ESP8266:
        # The SDK's 1.6 s timer ticks from boot; the second tick after a feed resets.
        fed_tick = time.ticks_diff(_wdt_fed_at, _BOOT_MS) // 1600
        if time.ticks_diff(now, _BOOT_MS) // 1600 - fed_tick >= 2:
            print(_ESP8266_TIMEOUT)
            _reset("SOFT_WDT_RESET")
    elif time.ticks_diff(now, _wdt_deadline) > 0:
        print(_TIMEOUT)
        _reset("WDT_RESET")


def _watchdog_thread():
    while _wdt_deadline is not None:
        time.sleep_ms(20)
        _watchdog_check()


class WDT:
    """Armed, only feed() feeds it (ports/*/machine_wdt.c): the ESP8266 port stops its event
    loop feeding the SDK's software watchdog (ets_loop_dont_feed_sw_wdt), and the ESP32's task
    watchdog has no other user. Another WDT() on the ESP8266 feeds it; on the ESP32 it sets
    the new timeout without a feed (esp_task_wdt_reconfigure)."""

    def __init__(self, id=0, timeout=5000):
        global _wdt_timeout
        if id != 0:
            raise ValueError
        if _CHIP == _ESP8266:
            if timeout != 5000:
                raise ValueError  # its period is fixed (ports/esp8266/machine_wdt.c)
        elif timeout <= 0:
            raise ValueError("WDT timeout too short")
        first = _wdt_deadline is None
        feeds = first or _CHIP == _ESP8266
        _wdt_timeout = timeout
        if _simchip is not None:  # the chip's timer: 1.6 s ticks, the second resets; or the timeout
            if _CHIP == _ESP8266:
                _simchip.watchdog(1600, 2, _ESP8266_TIMEOUT + "\nmachine: reset SOFT_WDT_RESET\n", _RUNNER, feeds)
            else:
                _simchip.watchdog(1, timeout, _TIMEOUT + "\nmachine: reset WDT_RESET\n", _RUNNER, feeds)
        if feeds:
            self._arm()
        else:
            _arm_deadline()
        if first and _RUNNER and _simchip is None:  # plain unix port: a loop that never comes back
            import _thread
            _thread.start_new_thread(_watchdog_thread, ())

    def feed(self):
        if _simchip is not None:
            _simchip.feed()
        _watchdog_check()
        self._arm()

    def _arm(self):
        global _wdt_fed_at
        _wdt_fed_at = time.ticks_ms()
        _arm_deadline()


def _arm_deadline():
    global _wdt_deadline
    _wdt_deadline = time.ticks_add(_wdt_fed_at, _wdt_timeout)


_rtc_memory = None


class RTC:
    def __init__(self, id=0):
        pass

    def memory(self, data=None):
        # Survives resets, not power loss: the runner keeps the file across reboots only.
        global _rtc_memory
        path = _getenv("LUXNODE_SIM_RTC")
        if data is None:
            if _rtc_memory is None:
                _rtc_memory = b""
                if path:
                    try:
                        with open(path, "rb") as f:
                            _rtc_memory = f.read()
                    except OSError:
                        pass
            return _rtc_memory
        if len(data) > _RTC_MEMORY:
            raise ValueError("buffer too long")
        _rtc_memory = bytes(data)
        if path:
            with open(path, "wb") as f:
                f.write(_rtc_memory)

    def datetime(self, dt=None):
        # (year, month, day, weekday, hours, minutes, seconds, subseconds), as the ports take it.
        if _simchip is None:  # a plain unix port: the host's clock, which nothing can set
            if dt is not None:
                return
            t = time.localtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        if dt is None:
            t = time.gmtime()
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        _simchip.set(time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0)) + 946684800)
        path = _getenv("LUXNODE_SIM_RTC")
        if path:  # the clock runs on through resets (the runner restarts it from here)
            with open(path + ".clock", "w") as f:
                f.write(str(_simchip.offset()))


def unique_id():
    uid = _getenv("LUXNODE_SIM_UID")
    return bytes.fromhex(uid) if uid else b"\x24\x0a\xc4\x00\x51\x4d"


def reset_cause():
    return _CAUSES.get(_getenv("LUXNODE_SIM_RESET_CAUSE") or "", PWRON_RESET)


def _reset(cause):
    global _wdt_deadline
    _wdt_deadline = None  # the chip stops here: nothing more to watch
    if _simchip is not None:
        _simchip.watchdog(0, 0, "", False, False)
    print("machine: reset", cause)
    _halt()


def reset():
    # What the next boot reports: the ESP8266's system_restart() is REASON_SOFT_RESTART
    # (SOFT_RESET), the ESP32's esp_restart() ESP_RST_SW, which it reports as HARD_RESET
    # (ports/esp8266/modmachine.c, ports/esp32/modmachine.c mp_machine_reset_cause).
    _reset("SOFT_RESET" if _CHIP == _ESP8266 else "HARD_RESET")


def soft_reset():
    _reset("SOFT_RESET")


def freq(hz=None):
    return 240000000 if hz is None else None


def idle():
    time.sleep_ms(1)


def lightsleep(ms=0):
    time.sleep_ms(ms)


def deepsleep(ms=0):
    print("machine: deepsleep", ms)
    time.sleep_ms(ms)
    _reset("DEEPSLEEP_RESET")


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


def _download_mode():
    """The boot pin held low through reset: the ROM waits for esptool, MicroPython never starts."""
    print("machine: waiting for download (boot pin %d held low at reset: the ROM's serial bootloader)"
          % _BOOT_PIN)
    while True:
        time.sleep_ms(1000)


if _BOOT_PIN is not None and str(_BOOT_PIN) in _HELD:
    _download_mode()
