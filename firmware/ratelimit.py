# Slows down repeated failures without locking anyone out for long.
#
# A refused attempt adds to a penalty that decays with time; past a threshold
# every new request waits before it is processed, doubling up to a ceiling of
# a few seconds. A valid key arriving during a burst of garbage is delayed, never
# refused, so the night patrol still gets in.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

FREE_FAILURES = const(5)
BASE_DELAY_MS = const(500)
MAX_DELAY_MS = const(8000)
DECAY_MS = const(60000)  # one failure forgiven per minute


class RateLimiter:
    def __init__(self, hal):
        self.hal = hal
        self.failures = 0
        self.last_ms = hal.ticks_ms()
        self.limited = False  # True while a burst is being slowed (logged once)

    def _decay(self):
        now = self.hal.ticks_ms()
        forgiven = (now - self.last_ms) // DECAY_MS
        if forgiven:
            self.failures = max(0, self.failures - forgiven)
            self.last_ms = now
        if self.failures < FREE_FAILURES:
            self.limited = False

    def delay_ms(self):
        self._decay()
        excess = self.failures - FREE_FAILURES
        if excess < 0:
            return 0
        return min(MAX_DELAY_MS, BASE_DELAY_MS << min(excess, 8))

    def failure(self):
        """Count a refusal; True when this starts a limited burst (log it once)."""
        self._decay()
        self.failures += 1
        self.last_ms = self.hal.ticks_ms()
        if self.failures >= FREE_FAILURES and not self.limited:
            self.limited = True
            return True
        return False

    def success(self):
        self.failures = 0
        self.limited = False
