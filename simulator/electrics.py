"""The lock's electrics (simulator/hardware.py puts them together): the LED
and buzzer, the battery and its discharge, the RTC and its drift, the
watchdog. State is computed from the clock when it is read."""

from __future__ import annotations

import collections
from typing import Callable

from simulator.clocks import Clock


# --- LED and buzzer -----------------------------------------------------------
class Indicator:
    """What the LED and buzzer show: the current pattern and a log of changes."""

    PATTERNS = ("ok", "refused", "wait-button", "alarm", "off")

    def __init__(self, clock: Clock, maxlen: int = 1000) -> None:
        self.clock = clock
        self.state = "off"
        self.log: collections.deque = collections.deque(maxlen=maxlen)
        self.unknown = 0  # patterns outside PATTERNS (shown, but counted)

    def set(self, what: str) -> None:
        if what not in self.PATTERNS:
            self.unknown += 1
        self.state = what
        self.log.append((self.clock.now(), what))

    def history(self) -> list[str]:
        return [w for _, w in self.log]


# --- battery ------------------------------------------------------------------
class Battery:
    """A battery pack: capacity, a voltage curve, and the charge drawn from it.

    Drawn charge comes from `sources` (callables returning cumulative mA*s:
    the power account and the motor). `set_mv()`/`set_level()` pin the
    voltage for tests; `set_level(None)` goes back to the curve.
    """

    def __init__(self, capacity_mah: float, curve, low_mv: int, critical_mv: int,
                 consumed_mah: float = 0.0) -> None:
        pts = sorted((float(f), int(mv)) for f, mv in curve)
        if len(pts) < 2 or pts[0][0] > 0.0 or pts[-1][0] < 1.0:
            raise ValueError("battery curve must span fractions 0.0 .. 1.0")
        self.capacity_mah = float(capacity_mah)
        self.curve = pts
        self.low_mv = int(low_mv)
        self.critical_mv = int(critical_mv)
        self._base_mah = float(consumed_mah)
        self._sources: list[Callable[[], float]] = []
        self._override_mv: int | None = None

    def add_source(self, cumulative_mas: Callable[[], float]) -> None:
        """Count a consumer's charge from now on."""
        offset = cumulative_mas()
        self._sources.append(lambda: cumulative_mas() - offset)

    @property
    def consumed_mah(self) -> float:
        return self._base_mah + sum(src() for src in self._sources) / 3600.0

    def remaining_fraction(self) -> float:
        return max(0.0, 1.0 - self.consumed_mah / self.capacity_mah)

    def curve_mv(self, fraction: float) -> int:
        pts = self.curve
        fraction = min(1.0, max(0.0, fraction))
        for (f0, v0), (f1, v1) in zip(pts, pts[1:], strict=False):
            if f0 <= fraction <= f1:
                if f1 == f0:
                    return v1
                return int(round(v0 + (v1 - v0) * (fraction - f0) / (f1 - f0)))
        return pts[-1][1]

    def mv(self) -> int:
        if self._override_mv is not None:
            return self._override_mv
        return self.curve_mv(self.remaining_fraction())

    def set_mv(self, mv: int | None) -> None:
        self._override_mv = None if mv is None else int(mv)

    def level(self, mv: int | None = None) -> str:
        """How the firmware reads `mv` (now, by default): ok, low or critical."""
        mv = self.mv() if mv is None else mv
        if mv <= self.critical_mv:
            return "critical"
        if mv <= self.low_mv:
            return "low"
        return "ok"

    def level_mv(self, level: str) -> int:
        """A voltage that the firmware must read as `level` (ok/low/critical)."""
        if level == "ok":
            return max(self.low_mv + 500, self.curve_mv(0.5))
        if level == "low":
            return (self.low_mv + self.critical_mv) // 2
        if level == "critical":
            return self.critical_mv - 200
        raise ValueError(f"battery level must be ok, low or critical, not {level!r}")

    def set_level(self, level: str | None) -> None:
        self.set_mv(None if level is None else self.level_mv(level))

    def replace(self) -> None:
        """Fresh batteries: nothing drawn from now on."""
        self._base_mah -= self.consumed_mah
        self._override_mv = None


# --- RTC ----------------------------------------------------------------------
class RTC:
    """The real-time clock, in lock seconds, with a drift in ppm.

    It counts `1 + drift_ppm / 1e6` seconds per true second. On power loss it
    keeps its time only with a backup cell (`keeps_time_on_power_loss`);
    otherwise it restarts from 0 ("reads 0 then", and counts up from there).
    """

    def __init__(self, clock: Clock, drift_ppm: float = 0.0, lock_seconds: float = 0.0,
                 keeps_time_on_power_loss: bool = False) -> None:
        self.clock = clock
        self.drift_ppm = float(drift_ppm)
        self.keeps_time_on_power_loss = keeps_time_on_power_loss
        self._base = float(lock_seconds)
        self._t = clock.now()
        self.lost = False  # time was lost since it was last set
        self.sets = 0

    def value(self) -> float:
        """Exact (fractional) reading."""
        return self._base + (self.clock.now() - self._t) * (1.0 + self.drift_ppm * 1e-6)

    def now(self) -> int:
        return max(0, int(self.value()))

    def set(self, lock_seconds: float) -> None:
        self._base = float(lock_seconds)
        self._t = self.clock.now()
        self.lost = False
        self.sets += 1

    def power_loss(self) -> bool:
        """The board lost power. Returns True if the time was lost."""
        if self.keeps_time_on_power_loss:
            return False
        self._base = 0.0
        self._t = self.clock.now()
        self.lost = True
        return True


# --- watchdog -----------------------------------------------------------------
class Watchdog:
    """A hardware watchdog: once started it cannot be stopped, only fed.

    `expired()` tells the board to reset (the simulator's board runner polls
    it and restarts the firmware with reset cause WATCHDOG).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.timeout_s: float | None = None
        self._fed = 0.0
        self.feeds = 0
        self.fired = False  # it has expired: the chip is resetting, a late feed is too late

    @property
    def running(self) -> bool:
        return self.timeout_s is not None

    def start(self, timeout_ms: int) -> None:
        """Start it, or change the timeout of a running one (which also feeds it)."""
        if timeout_ms <= 0:
            raise ValueError("watchdog timeout must be positive")
        if self.expired():
            return  # too late: it has fired
        self.timeout_s = timeout_ms / 1000.0
        self._fed = self.clock.now()

    def feed(self) -> None:
        if self.timeout_s is not None and not self.expired():
            self._fed = self.clock.now()
            self.feeds += 1

    def remaining_s(self) -> float | None:
        if self.timeout_s is None:
            return None
        return self._fed + self.timeout_s - self.clock.now()

    def expired(self) -> bool:
        """True once the timeout has passed unfed; it stays True (the reset
        is under way) even if the firmware feeds it after that instant, as a
        task that was stuck and comes back to life would."""
        if not self.fired:
            left = self.remaining_s()
            self.fired = left is not None and left <= 0
        return self.fired
