# AUTO mode: a PI controller that drives the LED duty so that the measured
# light holds the target. Conditional integration keeps the integrator from
# winding up while the output is saturated.


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
