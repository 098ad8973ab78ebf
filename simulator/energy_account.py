"""Power-state accounting: time and charge spent in each firmware power state.

The firmware tells the board which state it is in (`hal.power_state`); the
account integrates the time spent in each of `firmware.hal.POWER_STATES` and,
with the board's datasheet currents (`boards/*.py` CURRENT_MA), the charge
drawn from the battery. `project_life` turns a measured mix into a battery
life estimate: the figure the one-year requirement is checked against.
"""

from __future__ import annotations

from typing import Callable

from firmware.hal import POWER_CONNECTED, POWER_STATES

# At reset the CPU runs at full speed: the closest of the firmware's states
# is "connected" (CPU awake, radio up) until the firmware says otherwise.
BOOT_STATE = POWER_CONNECTED


class PowerAccount:
    """Seconds and milliampere-seconds per power state, driven by a clock."""

    def __init__(self, now: Callable[[], float], currents_ma: dict[str, float],
                 state: str = BOOT_STATE) -> None:
        missing = [s for s in POWER_STATES if s not in currents_ma]
        if missing:
            raise ValueError(f"board has no current for power states {missing}")
        self._now = now
        self.currents_ma = dict(currents_ma)
        self._check(state)
        self.state = state
        self._since = now()
        self._seconds = {s: 0.0 for s in POWER_STATES}
        self.transitions = 0

    @staticmethod
    def _check(state: str) -> None:
        if state not in POWER_STATES:
            raise ValueError(f"unknown power state {state!r} (expected one of {POWER_STATES})")

    def _settle(self) -> None:
        t = self._now()
        if t > self._since:
            self._seconds[self.state] += t - self._since
        self._since = t

    def set(self, state: str) -> None:
        self._check(state)
        if state == self.state:
            return
        self._settle()
        self.state = state
        self.transitions += 1

    def seconds(self) -> dict[str, float]:
        self._settle()
        return dict(self._seconds)

    def charge_mas(self) -> float:
        """Charge drawn so far by the board (not the motor), mA*s."""
        secs = self.seconds()
        return sum(secs[s] * self.currents_ma[s] for s in POWER_STATES)

    def summary(self, extra_mas: float = 0.0) -> dict:
        """Totals: seconds, share and mAh per state, average current.

        `extra_mas` is charge drawn outside the power states (the motor).
        """
        secs = self.seconds()
        total = sum(secs.values())
        per_state = {}
        for s in POWER_STATES:
            per_state[s] = {
                "seconds": secs[s],
                "share": secs[s] / total if total else 0.0,
                "mah": secs[s] * self.currents_ma[s] / 3600.0,
                "current_ma": self.currents_ma[s],
            }
        board_mas = sum(secs[s] * self.currents_ma[s] for s in POWER_STATES)
        total_mas = board_mas + extra_mas
        return {
            "seconds": total,
            "states": per_state,
            "motor_mah": extra_mas / 3600.0,
            "total_mah": total_mas / 3600.0,
            "average_ma": total_mas / total if total else 0.0,
            "transitions": self.transitions,
        }


def project_life(average_ma: float, capacity_mah: float) -> float:
    """Days a battery of `capacity_mah` lasts at `average_ma` (inf for 0)."""
    if average_ma <= 0:
        return float("inf")
    return capacity_mah / average_ma / 24.0


def format_summary(summary: dict, capacity_mah: float | None = None) -> str:
    """A few readable lines (for the simulator's exit report and scenarios)."""
    lines = [f"power: {summary['seconds']:.1f} s accounted, "
             f"average {summary['average_ma']:.3f} mA, {summary['total_mah']:.4f} mAh"]
    for s, v in summary["states"].items():
        lines.append(f"  {s:<12} {v['seconds']:10.1f} s {100 * v['share']:5.1f} % "
                     f"{v['current_ma']:8.2f} mA {v['mah']:.4f} mAh")
    lines.append(f"  {'(winding)':<12} {'':>10}   {'':>5}   {'':>8}    "
                 f"{summary['motor_mah']:.4f} mAh  the bolt motor itself")
    if capacity_mah:
        days = project_life(summary["average_ma"], capacity_mah)
        lines.append(f"  projected battery life at this mix: {days:.1f} days "
                     f"({capacity_mah:.0f} mAh)")
    return "\n".join(lines)
