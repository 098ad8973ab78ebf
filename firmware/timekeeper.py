# The lock's sense of time.
#
# The RTC is set at commissioning and by authenticated updates. An exact
# update (bound to the lock's nonce, from the installer's serial tool) may move
# the clock backwards, but only within the drift the RTC can have gathered
# since the last trusted time. A key-carried update only says "it is at least
# T" (the issuer made it before the shift), so it can only move time forward.
# After a power loss the RTC cannot be trusted: the lock keeps a lower bound
# (the last trusted time, and the time of its newest log record) and uses it.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

DRIFT_PPM = const(100)  # crystal tolerance plus temperature, with margin
MIN_TOLERANCE = const(120)  # never refuse a correction smaller than the token skew


class TimeKeeper:
    def __init__(self, hal, lower_bound, trusted_at, trusted):
        self.hal = hal
        self.lower_bound = lower_bound  # lock seconds; real time is at least this
        self.trusted_at = trusted_at  # lock time of the last exact update
        self.trusted = trusted
        self.went_back = False  # set when the RTC is caught running backwards (to log it)

    @classmethod
    def at_boot(cls, hal, stored_trusted_at, newest_event_time, rtc_survives):
        """Decide at boot whether the RTC still holds good time."""
        bound = max(stored_trusted_at, newest_event_time)
        rtc = hal.rtc_now()
        trusted = rtc_survives and stored_trusted_at > 0 and rtc >= bound
        if not trusted and rtc < bound:
            hal.rtc_set(bound)
        return cls(hal, bound, stored_trusted_at, trusted)

    def now(self):
        t = self.hal.rtc_now()
        if t < self.lower_bound:
            # The RTC went backwards (lost power, or a fault): the bound wins.
            if self.trusted:
                self.went_back = True
            self.trusted = False
            self.hal.rtc_set(self.lower_bound)
            return self.lower_bound
        self.lower_bound = t
        return t

    def tolerance(self, now):
        elapsed = max(0, now - self.trusted_at)
        return max(MIN_TOLERANCE, elapsed * DRIFT_PPM // 1000000)

    def set_exact(self, t):
        """Nonce-bound time from the installer. Returns True if accepted."""
        now = self.now()
        if self.trusted and t < now - self.tolerance(now):
            return False
        self.hal.rtc_set(t)
        self.lower_bound = t
        self.trusted_at = t
        self.trusted = True
        return True

    def force(self, t):
        """Installer's time with the button pressed: taken whatever the clock
        reads, backwards too (a clock pushed out of range, an RTC fault)."""
        self.hal.rtc_set(t)
        self.lower_bound = t
        self.trusted_at = t
        self.trusted = True

    def raise_bound(self, t):
        """Authenticated evidence that real time is at least `t` (forward only)."""
        if t > self.now():
            self.hal.rtc_set(t)
            self.lower_bound = t
            return True
        return False

    def commissioned(self, t):
        self.hal.rtc_set(t)
        self.lower_bound = t
        self.trusted_at = t
        self.trusted = True
