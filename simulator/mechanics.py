"""The lock's moving parts (simulator/hardware.py puts them together): the
bolt and its motor (position, end-stop switches, jams, stall current), the
door and its reed switch, the button. State is computed from the clock when it
is read. Directions follow firmware.hal: motor(+1) withdraws the bolt."""

from __future__ import annotations

import collections
from typing import Callable

from simulator.clocks import Clock

RETRACTED = 0.0
THROWN = 1.0


# --- bolt and motor -----------------------------------------------------------
class Bolt:
    """The bolt, moved by a gear motor through an H-bridge.

    The motor moves the bolt at a constant speed (a full stroke in
    `travel_s`). Against an end stop or a jam it stalls: the bolt stays and
    the motor draws its stall current until the firmware stops it.
    `jam(at)` puts an obstacle at a position: the bolt cannot pass it in
    either direction until `unjam()`; `jam()` with no position stops the bolt
    where it is now (mid-travel if it is moving).
    """

    def __init__(self, clock: Clock, travel_s: float = 0.6, run_ma: float = 150.0,
                 stall_ma: float = 600.0, position: float = THROWN,
                 sensor_margin: float = 0.02) -> None:
        if travel_s <= 0:
            raise ValueError("travel_s must be positive")
        self.clock = clock
        self.travel_s = float(travel_s)
        self.run_ma = float(run_ma)
        self.stall_ma = float(stall_ma)
        self.sensor_margin = sensor_margin
        self._pos = min(THROWN, max(RETRACTED, float(position)))
        self._dir = 0
        self._t = clock.now()
        self._jam_at: float | None = None
        self._charge_mas = 0.0
        self.run_s = 0.0  # time the motor moved the bolt
        self.stall_s = 0.0  # time the motor was driven against a stop or jam
        self.starts = 0  # motor starts (each drive command that changes direction)

    # The physics: advance position and charge from the last update to now.
    def _update(self) -> None:
        now = self.clock.now()
        dt = now - self._t
        self._t = now
        if dt <= 0 or self._dir == 0:
            return
        target = RETRACTED if self._dir > 0 else THROWN
        if self._jam_at is not None:
            j = self._jam_at
            if self._dir > 0 and j <= self._pos:
                target = j
            elif self._dir < 0 and j >= self._pos:
                target = j
        distance = abs(target - self._pos)
        move_s = min(dt, distance * self.travel_s)
        step = move_s / self.travel_s
        self._pos = self._pos - step if self._dir > 0 else self._pos + step
        if move_s >= distance * self.travel_s:
            self._pos = target  # exact, so the end-stop sensors see it
        stall_s = dt - move_s
        self.run_s += move_s
        self.stall_s += stall_s
        self._charge_mas += move_s * self.run_ma + stall_s * self.stall_ma

    def drive(self, direction: int) -> None:
        """+1 withdraw (unlock), -1 throw (lock), 0 stop."""
        if direction not in (-1, 0, 1):
            raise ValueError(f"motor direction must be -1, 0 or +1, not {direction!r}")
        self._update()
        if direction != 0 and direction != self._dir:
            self.starts += 1
        self._dir = direction

    @property
    def direction(self) -> int:
        return self._dir

    @property
    def position(self) -> float:
        self._update()
        return self._pos

    def set_position(self, position: float) -> None:
        """Move the bolt by hand (the thumb-turn inside the door)."""
        self._update()
        self._pos = min(THROWN, max(RETRACTED, float(position)))

    def jam(self, at: float | None = None) -> None:
        self._update()
        self._jam_at = self._pos if at is None else min(THROWN, max(RETRACTED, float(at)))

    def unjam(self) -> None:
        self._update()
        self._jam_at = None

    @property
    def jammed(self) -> bool:
        return self._jam_at is not None

    @property
    def jam_at(self) -> float | None:
        return self._jam_at

    def retracted(self) -> bool:
        """The 'retracted' end-stop sensor."""
        return self.position <= RETRACTED + self.sensor_margin

    def thrown(self) -> bool:
        """The 'thrown' end-stop sensor."""
        return self.position >= THROWN - self.sensor_margin

    def moving(self) -> bool:
        """True while the motor is driven and the bolt is not blocked."""
        pos = self.position
        if self._dir == 0:
            return False
        target = RETRACTED if self._dir > 0 else THROWN
        return pos != target and pos != self._jam_at

    def current_ma(self) -> float:
        """The motor's current now: 0 off, run current moving, stall current blocked."""
        if self._dir == 0:
            return 0.0
        return self.run_ma if self.moving() else self.stall_ma

    def charge_mas(self) -> float:
        self._update()
        return self._charge_mas


# --- door ---------------------------------------------------------------------
class Door:
    """The door, with its closed sensor (reed switch).

    A thrown or half-thrown bolt holds a closed door shut and keeps an open
    one from closing (it hits the frame): `open()` / `close()` then return
    False and nothing changes, unless `force=True` (a break-in, or a test).
    """

    def __init__(self, clock: Clock, bolt: Bolt, closed: bool = True) -> None:
        self.clock = clock
        self.bolt = bolt
        self._closed = closed
        self.log: collections.deque = collections.deque(maxlen=1000)
        self.on_change: Callable[[], None] | None = None  # the reed switch's edges

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def closed(self) -> bool:
        return self._closed

    def open(self, force: bool = False) -> bool:
        if not self._closed:
            return True
        if not force and not self.bolt.retracted():
            self.log.append((self.clock.now(), "open-blocked"))
            return False
        self._closed = False
        self.log.append((self.clock.now(), "forced-open" if force else "opened"))
        self._changed()
        return True

    def close(self, force: bool = False) -> bool:
        if self._closed:
            return True
        if not force and not self.bolt.retracted():
            self.log.append((self.clock.now(), "close-blocked"))
            return False
        self._closed = True
        self.log.append((self.clock.now(), "closed"))
        self._changed()
        return True


# --- button -------------------------------------------------------------------
class Button:
    """The commissioning button inside the door.

    `press(duration)` presses it from now (or after `delay`) for `duration`
    seconds; `hold()`/`release()` press it until told otherwise. In `auto`
    mode it is pressed for `auto_press_s` whenever the firmware indicates
    "wait-button" (an installer standing at the door).
    """

    def __init__(self, clock: Clock, auto: bool = False, auto_press_s: float = 0.5,
                 auto_delay_s: float = 0.2) -> None:
        self.clock = clock
        self.auto = auto
        self.auto_press_s = auto_press_s
        self.auto_delay_s = auto_delay_s
        self._presses: list[tuple[float, float]] = []  # (start, end) in clock time
        self._held = False
        self.presses = 0
        self.on_change: Callable[[], None] | None = None  # a press or release (maybe later)

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def press(self, duration: float = 0.5, delay: float = 0.0) -> None:
        start = self.clock.now() + max(0.0, delay)
        self._presses.append((start, start + max(0.0, duration)))
        self.presses += 1
        self._changed()

    def hold(self) -> None:
        self._held = True
        self.presses += 1
        self._changed()

    def next_change(self) -> float | None:
        """The clock time of the next scheduled press or release, if any."""
        now = self.clock.now()
        times = [t for s, e in self._presses for t in (s, e) if t > now]
        return min(times) if times else None

    @property
    def held(self) -> bool:
        return self._held

    def release(self) -> None:
        self._held = False
        now = self.clock.now()
        self._presses = [(s, min(e, now)) for s, e in self._presses if s < now]
        self._changed()

    def pressed(self) -> bool:
        if self._held:
            return True
        now = self.clock.now()
        self._presses = [(s, e) for s, e in self._presses if e > now]
        return any(s <= now < e for s, e in self._presses)

    def on_indicate(self, what: str) -> None:
        if self.auto and what == "wait-button":
            self.press(self.auto_press_s, delay=self.auto_delay_s)
