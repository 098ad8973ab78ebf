# The log budget for what peers cause without a verified token.
#
# Frame errors, refusals before a token verifies, connection timeouts, bad
# updates and repeats of one token's refusal cost a peer nothing, so a peer
# could write them as fast as the link carries frames and push the visits out
# of the ring. They share one budget instead: after a quiet window the first is
# written as it is (with its reason: the usual case is one mistake); the rest
# of that window are only counted, and the counts are written as one
# PEER_SUMMARY record once the window is over (at the next such event, or at
# the next record the lock writes anyway). At most one record per window:
# 24 a day with the default hour, whatever the peers do.
#
# The counts live in RAM: a power cut loses at most one window's summary,
# never a visit.
from firmware.hal import timing

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

WINDOW_MS = const(3600000)
FRAME = const(0)
REFUSAL = const(1)
TIMEOUT = const(2)
OTHER = const(3)


class PeerBudget:
    def __init__(self, hal):
        self.hal = hal
        self.window_ms = None  # ticks when the current window began; None: quiet
        self.counts = [0, 0, 0, 0]

    def _over(self, now):
        if self.window_ms is None:
            return True
        return now - self.window_ms >= timing(self.hal, "peer_budget_ms", WINDOW_MS)

    def pending(self):
        return self.counts[0] or self.counts[1] or self.counts[2] or self.counts[3]

    def admit(self, kind, n=1):
        """What to do with an event of `kind` (n of them, for frame errors):
        "write" it, "summary" (write the counts instead, this event among
        them) or "count" (nothing now)."""
        now = self.hal.ticks_ms()
        if not self._over(now):
            self.counts[kind] += n
            return "count"
        self.window_ms = now
        if self.pending():
            self.counts[kind] += n
            return "summary"
        return "write"

    def due(self):
        """True when counts wait and their window is over (write them now)."""
        return bool(self.pending()) and self._over(self.hal.ticks_ms())

    def take(self):
        """(total, key id bytes holding the four counts); the counts start
        again, and so does the window (this record was its one record)."""
        self.window_ms = self.hal.ticks_ms()
        total = 0
        out = b""
        for c in self.counts:
            total += c
            out += min(c, 0xFFFF).to_bytes(2, "big")
        self.counts = [0, 0, 0, 0]
        return min(total, 0xFFFF), out
