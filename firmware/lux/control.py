# AUTO mode: a PI controller that drives the LED duty so that the measured
# light holds the target. Conditional integration keeps the integrator from
# winding up while the output is saturated. Loaded only while in AUTO.


def level_of(duty, gamma, lo, hi):
    """Inverse of lux.dimmer.curve(): the brightness % that gives this duty."""
    if duty <= lo:
        return 0.0
    if duty >= hi:
        return 100.0
    return 100 * ((duty - lo) / (hi - lo)) ** (1 / gamma)


class PI:
    def __init__(self, kp, ki, lo=0.0, hi=1.0):
        self.kp = kp
        self.ki = ki
        self.lo = lo
        self.hi = hi
        self.i = 0.0

    def reset(self, output):
        """Start from the current output so that switching to AUTO does not jump."""
        self.i = min(self.hi, max(self.lo, output))

    def step(self, target, measured, dt):
        """target and measured in %, dt in s; returns the duty lo..hi."""
        e = (target - measured) / 100
        u = self.i + self.kp * e
        if self.lo < u < self.hi or (u >= self.hi and e < 0) or (u <= self.lo and e > 0):
            self.i = min(self.hi, max(self.lo, self.i + self.ki * e * dt))
            u = self.i + self.kp * e
        return min(self.hi, max(self.lo, u))

    def drive(self, dimmer, target, measured, dt):
        """One step: the dimmer's duty set directly (no curve, no fade), within its min..max."""
        duty = min(dimmer.hi, max(dimmer.lo, self.step(target, measured, dt)))
        dimmer.hold(duty, level_of(duty, dimmer.gamma, dimmer.lo, dimmer.hi))
