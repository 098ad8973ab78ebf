"""Virtual hardware of one lock: bolt and motor, door, button, LED/buzzer,
battery, RTC, watchdog and the power account, put together from their models
(simulator/mechanics.py: bolt, door, button; simulator/electrics.py: LED and
buzzer, battery, RTC, watchdog; simulator/clocks.py).

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

import time
from types import ModuleType
from typing import Callable

from boards import sim as sim_board
from firmware.hal import POWER_STATES
from protocol.clock import to_unix
from simulator.clocks import Clock, ManualClock, RealClock  # noqa: F401 (imported from here)
from simulator.electrics import RTC, Battery, Indicator, Watchdog  # noqa: F401
from simulator.energy_account import BOOT_STATE, PowerAccount, format_summary
from simulator.mechanics import RETRACTED, THROWN, Bolt, Button, Door  # noqa: F401


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
