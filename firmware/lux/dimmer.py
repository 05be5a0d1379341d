# LED strip by PWM: perceptual (gamma) curve, min/max duty, non-blocking fades,
# polarity inverted in hardware where the port can, in software otherwise. A
# level above 0 never rounds to dark: its duty is at least the port's least step,
# which the port is asked for (its PWM keeps 10 to 16 of duty_u16's bits, by chip
# and frequency).
from time import sleep_ms, ticks_diff


def curve(level, gamma, lo, hi):
    """Brightness 0..100 % -> duty 0..1; 0 % is really off, anything else lo..hi."""
    if level <= 0:
        return 0.0
    if level >= 100:
        return hi
    return lo + (hi - lo) * (level / 100) ** gamma


class Dimmer:
    def __init__(self, pwm, soft_invert, gamma=2.2, lo=0.0, hi=1.0):
        """pwm: the port's PWM at its final frequency (duty_u16() reads what it keeps)."""
        self.pwm = pwm  # anything with duty_u16(int), duty_u16() and freq()
        self.soft_invert = soft_invert
        # The least step the port tells from dark: the first power of two whose duty_u16()
        # reads back other than dark's (ESP8266 64; ESP32 1 to 64, C3/S3 8 at 1 kHz). Tried
        # upwards from dark, so no try lights the LED more than that step; dark again after.
        # Each read waits two periods (at most 0.5 s): the ESP32 family reads the duty register,
        # which takes a new duty only from the next period (ledc_get_duty).
        wait = min(2000 // pwm.freq() + 1, 500)
        dark = 65535 if soft_invert else 0
        pwm.duty_u16(dark)
        sleep_ms(wait)
        was = pwm.duty_u16()
        step = 1
        while step < 32768:
            pwm.duty_u16(abs(dark - step))
            sleep_ms(wait)
            if pwm.duty_u16() != was:
                break
            step <<= 1
        pwm.duty_u16(dark)
        self.least = step / 65535  # as a duty 0..1
        self.gamma = gamma
        self.lo = lo
        self.hi = hi
        self.level = 0.0  # brightness % now (during a fade: the current step)
        self.target = 0.0  # where the fade ends
        self.duty = 0.0
        self._from = 0.0
        self._start = 0
        self._fade = 0
        self._u16 = -1

    def set_level(self, level, fade_ms, now):
        self._from = self.level
        self.target = level
        self._start = now
        self._fade = fade_ms
        if not fade_ms:
            self._apply_level(level)

    def hold(self, duty, level):
        """Duty set directly (AUTO: lux.control), ending any fade; level is its brightness %."""
        self._fade = 0
        self.level = self.target = level
        self._write(duty)

    def poll(self, now):
        if not self._fade:
            return
        t = ticks_diff(now, self._start)
        if t >= self._fade:
            self._fade = 0
            self._apply_level(self.target)
        else:
            self._apply_level(self._from + (self.target - self._from) * t / self._fade)

    def _apply_level(self, level):
        self.level = level
        self._write(curve(level, self.gamma, self.lo, self.hi))

    def _write(self, duty):
        if 0 < duty < self.least:
            duty = self.least  # a lit level stays lit
        self.duty = duty
        u16 = int(duty * 65535 + 0.5)
        if self.soft_invert:
            u16 = 65535 - u16
        if u16 != self._u16:
            self._u16 = u16
            self.pwm.duty_u16(u16)
