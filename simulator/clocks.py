"""The simulator's clocks: real time, or a manual clock that tests and the
virtual-time loop move (simulator/vtime.py). Every hardware model reads time
only from one of these."""

from __future__ import annotations

import time


# --- clocks -------------------------------------------------------------------
class Clock:
    """Monotonic seconds (float) since the clock was made."""

    def now(self) -> float:
        raise NotImplementedError


class RealClock(Clock):
    def __init__(self) -> None:
        self._t0 = time.monotonic()

    def now(self) -> float:
        return time.monotonic() - self._t0


class ManualClock(Clock):
    """A clock that moves only when told to (for tests)."""

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)

    def now(self) -> float:
        return self._t

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock does not run backwards")
        self._t += seconds
        return self._t
