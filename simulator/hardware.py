"""Virtual hardware of one lock: bolt and motor, door, button, LED/buzzer,
battery, RTC, watchdog and the power account.

Every model is deterministic and reads time only from a `Clock`: the
simulator uses `RealClock` (real time, the default); tests use `ManualClock`
and `advance()` it, so a 0.6 s bolt stroke or a week of battery drain takes no
real time at all. State is computed lazily from the clock when it is read, so
nothing needs a background task.

Directions follow firmware.hal: motor(+1) unlocks (withdraws the bolt),
motor(-1) locks (throws it). Bolt position: 0.0 = fully retracted,
1.0 = fully thrown.
"""

from __future__ import annotations

import collections
import time
from types import ModuleType
from typing import Callable

from boards import sim as sim_board
from firmware.hal import POWER_STATES
from protocol.clock import to_unix
from simulator.energy_account import BOOT_STATE, PowerAccount, format_summary

RETRACTED = 0.0
THROWN = 1.0


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


# --- the whole lock -----------------------------------------------------------
class Hardware:
    """All the virtual hardware of one lock, built from a board module."""

    def __init__(self, board: ModuleType = sim_board, clock: Clock | None = None, *,
                 auto_button: bool = False, rtc_drift_ppm: float = 0.0,
                 rtc_lock_seconds: float = 0.0, battery_consumed_mah: float = 0.0,
                 bolt_position: float = THROWN, door_closed: bool = True) -> None:
        self.board = board
        self.clock = clock if clock is not None else RealClock()
        motor = board.MOTOR
        caps = board.CAPABILITIES
        batt = board.BATTERY
        self.bolt = Bolt(self.clock, motor["travel_s"], motor["run_ma"], motor["stall_ma"],
                         position=bolt_position)
        self.door = Door(self.clock, self.bolt, closed=door_closed)
        self.button = Button(self.clock, auto=auto_button)
        self.indicator = Indicator(self.clock)
        self.rtc = RTC(self.clock, rtc_drift_ppm, rtc_lock_seconds,
                       keeps_time_on_power_loss=caps.get("rtc_keeps_time_on_power_loss", False))
        self.watchdog = Watchdog(self.clock)
        self.power = PowerAccount(self.clock.now, board.CURRENT_MA)
        self.battery = Battery(batt["capacity_mah"], batt["curve"], batt["low_mv"],
                               batt["critical_mv"], consumed_mah=battery_consumed_mah)
        self.battery.add_source(self.power.charge_mas)
        self.battery.add_source(self.bolt.charge_mas)
        self.advertised: tuple | None = None
        # Sensor edges for the firmware (its pin interrupts): listeners get
        # (name, level) at each change of the door or button sensor. Door
        # edges come at once; a press scheduled for later comes when the
        # owner's `scheduler(clock_time)` calls check_edges() (and the board's
        # supervision calls it as it polls, for clocks that jump).
        self._listeners: list[Callable[[str, bool], None]] = []
        self._levels = {"door": self.door.closed(), "button": self.button.pressed()}
        self.scheduler: Callable[[float], object] | None = None
        self._scheduled: float | None = None
        self.edges = 0
        self.door.on_change = self.check_edges
        self.button.on_change = self.check_edges

    def listen(self, listener: Callable[[str, bool], None]) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[str, bool], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def check_edges(self) -> None:
        """Tell the listeners of every sensor that changed since the last look."""
        levels = {"door": self.door.closed(), "button": self.button.pressed()}
        for name, level in levels.items():
            if self._levels[name] != level:
                self._levels[name] = level
                self.edges += 1
                for listener in list(self._listeners):
                    listener(name, level)
        t = self.button.next_change()
        if t is not None and t != self._scheduled and self.scheduler is not None:
            self._scheduled = t
            self.scheduler(t)

    # What the firmware does to the hardware.
    def indicate(self, what: str) -> None:
        self.indicator.set(what)
        self.button.on_indicate(what)

    def power_state(self, state: str) -> None:
        self.power.set(state)

    # Resets and power.
    def reset(self) -> None:
        """A chip reset: the outputs float (motor off), the watchdog stops,
        the CPU runs flat out. Mechanics, RTC and battery carry on."""
        self.bolt.drive(0)
        self.watchdog = Watchdog(self.clock)
        self.power.set(BOOT_STATE)
        self.indicator.set("off")

    def power_loss(self) -> bool:
        """Power cut and back: a reset, and the RTC may lose its time.
        Returns True if the RTC lost its time."""
        self.reset()
        return self.rtc.power_loss()

    # Reports.
    def state(self, history: int = 20) -> dict:
        """Everything a person could see or measure at the door, JSON-able."""
        bolt = self.bolt
        wd = self.watchdog
        left = wd.remaining_s()
        return {
            "time_s": self.clock.now(),
            "bolt": {"position": round(bolt.position, 4), "thrown": bolt.thrown(),
                     "retracted": bolt.retracted(), "jammed": bolt.jammed,
                     "jam_at": bolt.jam_at, "motor": bolt.direction,
                     "moving": bolt.moving(), "current_ma": bolt.current_ma(),
                     "starts": bolt.starts},
            "door": {"closed": self.door.closed(),
                     "history": [[t, w] for t, w in list(self.door.log)[-history:]]},
            "button": {"pressed": self.button.pressed(), "held": self.button.held,
                       "auto": self.button.auto, "presses": self.button.presses},
            "indicator": {"state": self.indicator.state,
                          "history": [[t, w] for t, w in list(self.indicator.log)[-history:]]},
            "battery": {"mv": self.battery.mv(), "level": self.battery.level(),
                        "pinned": self.battery._override_mv is not None,
                        "consumed_mah": self.battery.consumed_mah,
                        "low_mv": self.battery.low_mv, "critical_mv": self.battery.critical_mv},
            "rtc": {"lock_seconds": self.rtc.now(), "unix": to_unix(self.rtc.now()),
                    "drift_ppm": self.rtc.drift_ppm, "lost": self.rtc.lost},
            "watchdog": {"running": wd.running, "timeout_s": wd.timeout_s,
                         "remaining_s": left, "fired": wd.fired, "feeds": wd.feeds},
            "power": {"state": self.power.state, "seconds": self.power.seconds()},
            "advertised": list(self.advertised) if self.advertised is not None else None,
        }

    def energy_summary(self) -> dict:
        return self.power.summary(extra_mas=self.bolt.charge_mas())

    def energy_report(self) -> str:
        return format_summary(self.energy_summary(), self.battery.capacity_mah)

    def snapshot(self) -> dict:
        """The state that survives a restart of the simulator (JSON-able)."""
        return {
            "board": self.board.NAME,
            "rtc": {"lock_seconds": self.rtc.value(), "drift_ppm": self.rtc.drift_ppm,
                    "lost": self.rtc.lost, "host_time": time.time()},
            "battery": {"consumed_mah": self.battery.consumed_mah},
            "bolt": {"position": self.bolt.position},
            "door": {"closed": self.door.closed()},
            "power_seconds": self.power.seconds(),
        }

    @classmethod
    def from_snapshot(cls, snap: dict | None, board: ModuleType = sim_board,
                      clock: Clock | None = None, *, auto_button: bool = False,
                      rtc_drift_ppm: float | None = None) -> Hardware:
        """Rebuild from `snapshot()`: the RTC has run on (with its drift)
        for the host time that passed while the simulator was stopped."""
        if not snap:
            return cls(board, clock, auto_button=auto_button,
                       rtc_drift_ppm=rtc_drift_ppm or 0.0)
        rtc = snap.get("rtc", {})
        drift = rtc.get("drift_ppm", 0.0) if rtc_drift_ppm is None else rtc_drift_ppm
        gap = max(0.0, time.time() - rtc.get("host_time", time.time()))
        lock_s = rtc.get("lock_seconds", 0.0) + gap * (1.0 + drift * 1e-6)
        hw = cls(board, clock, auto_button=auto_button, rtc_drift_ppm=drift,
                 rtc_lock_seconds=lock_s,
                 battery_consumed_mah=snap.get("battery", {}).get("consumed_mah", 0.0),
                 bolt_position=snap.get("bolt", {}).get("position", THROWN),
                 door_closed=snap.get("door", {}).get("closed", True))
        hw.rtc.lost = bool(rtc.get("lost", False))
        return hw


__all__ = [
    "RETRACTED", "THROWN", "POWER_STATES", "Clock", "RealClock", "ManualClock", "Bolt", "Door",
    "Button", "Indicator", "Battery", "RTC", "Watchdog", "Hardware",
]
