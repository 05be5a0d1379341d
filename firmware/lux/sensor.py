# Photoresistor on the ADC: oversampled raw reading -> calibrated 0..100 %,
# smoothed; publish when it moves past the deadband or the interval elapses.
from time import ticks_diff


def to_percent(raw, dark, bright):
    """Linear map of the calibrated span; dark > bright (inverted divider) works too."""
    pct = (raw - dark) * 100 / (bright - dark)
    return 0.0 if pct < 0 else 100.0 if pct > 100 else pct


class LightSensor:
    def __init__(self, read, shift, dark, bright, oversample=16, smoothing=0.3,
                 deadband=1.0, interval_ms=5000):
        """read() >> shift: the raw value in the board's ADC width (lux.config.adc_reader)."""
        self._read = read
        self.shift = shift
        self.dark = dark
        self.bright = bright
        self.oversample = oversample
        self.smoothing = smoothing
        self.deadband = deadband
        self.interval_ms = interval_ms
        self.raw = 0
        self.light = None  # smoothed %, None before the first sample
        self.sent = None  # the last published reading; None publishes the next one
        self._sent_at = 0

    def sample(self):
        total = 0
        for _ in range(self.oversample):
            total += self._read()
        self.raw = (total // self.oversample) >> self.shift
        pct = to_percent(self.raw, self.dark, self.bright)
        self.light = pct if self.light is None else self.light + self.smoothing * (pct - self.light)
        return self.light

    def due(self, now):
        """True when the reading should be published now (and marks it published)."""
        if self.light is None:
            return False
        if self.sent is None or abs(self.light - self.sent) >= self.deadband \
                or ticks_diff(now, self._sent_at) >= self.interval_ms:
            self.sent = self.light
            self._sent_at = now
            return True
        return False
