"""The energy report's arithmetic (simulator/energy.py puts it together):
a measured visit and idle mix extrapolated to a day, priced at the board's
currents against its derated battery, and the time to open. Pure functions,
so the tests check each against a sum done by hand."""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from firmware.hal import POWER_STATES

DAY_S = 86400.0

# Time to open (issue #13 section 3): from a key coming into range to the bolt
# withdrawn. ESTIMATES of the key's side; the exchange itself is measured.
ADV_DELAY_MEAN_S = 0.005  # the spec's random 0-10 ms advDelay added to each interval
ADV_DELAY_MAX_S = 0.010
CONNECT_EVENTS = 2  # CONNECT_IND, transmit window, the first connection event
GATT_SETUP_EVENTS = 6  # MTU exchange, service and characteristic discovery, CCCD write


class DayOverflow(ValueError):
    """More visits than fit in a day."""


def day_seconds(visit_s: dict[str, float], idle_mix: dict[str, float],
                opens_per_day: float) -> dict[str, float]:
    """Seconds per state in a day: `opens_per_day` visits of `visit_s`
    seconds per state, and the rest of the day shared out by `idle_mix`
    (fractions summing to 1)."""
    busy = opens_per_day * sum(visit_s.values())
    if busy > DAY_S:
        raise DayOverflow(f"{opens_per_day:g} visits of {sum(visit_s.values()):.1f} s "
                         f"do not fit in a day")
    idle = DAY_S - busy
    total_mix = sum(idle_mix.values())
    if total_mix <= 0:
        raise ValueError("the idle mix is empty")
    return {s: opens_per_day * visit_s.get(s, 0.0) + idle * idle_mix.get(s, 0.0) / total_mix
            for s in POWER_STATES}


def charge_per_day(state_s: dict[str, float], currents_ma: dict[str, float],
                   motor_mas_per_open: float, opens_per_day: float,
                   static_ma: dict[str, float]) -> dict[str, Any]:
    """mAh per day: per state, the motor winding, the always-on drains, total."""
    states = {s: state_s.get(s, 0.0) * currents_ma[s] / 3600.0 for s in POWER_STATES}
    motor = motor_mas_per_open * opens_per_day / 3600.0
    static = {k: v * 24.0 for k, v in static_ma.items()}
    total = sum(states.values()) + motor + sum(static.values())
    return {"states": states, "motor_winding": motor, "static": static, "total": total,
            "average_ma": total / 24.0}


def usable_fraction(curve, low_mv: float) -> float:
    """Fraction of the capacity drawn before the pack falls to `low_mv`
    (the battery-change warning), read off a (fraction remaining, mV) curve."""
    pts = sorted((float(f), float(mv)) for f, mv in curve)
    for (f0, v0), (f1, v1) in zip(pts, pts[1:], strict=False):
        if v0 <= low_mv <= v1:
            remaining = f0 if v1 == v0 else f0 + (f1 - f0) * (low_mv - v0) / (v1 - v0)
            return 1.0 - remaining
    return 1.0 if low_mv < pts[0][1] else 0.0


def effective_capacity(capacity_mah: float, usable: float, cold: float) -> float:
    return capacity_mah * usable * cold


def self_discharge_per_day(capacity_mah: float, per_year: float) -> float:
    return capacity_mah * per_year / 365.0


def life_days(effective_mah: float, daily_mah: float, self_discharge_mah_day: float) -> float:
    drain = daily_mah + self_discharge_mah_day
    return math.inf if drain <= 0 else effective_mah / drain


def year_budget_ma(effective_mah: float, self_discharge_mah_day: float,
                   days: float = 365.0) -> float:
    """The average current (mA) that makes the battery last `days`."""
    return max(0.0, (effective_mah / days - self_discharge_mah_day) / 24.0)


def supply_factor(board: ModuleType) -> tuple[float, float]:
    """(factor, quiescent mA): pack current = rail current * factor + quiescent.
    A linear regulator (no SUPPLY in the board file) is 1:1."""
    sup = getattr(board, "SUPPLY", None)
    if not sup:
        return 1.0, 0.0
    return (sup["vout_v"] / (sup["pack_v"] * sup["efficiency"]), sup.get("quiescent_ma", 0.0))


def time_to_open(adv_interval_ms: float, conn_interval_ms: float, exchange_s: float,
                 decision_s: float) -> dict[str, float]:
    """Seconds from a key coming into range to "door opened" (the bolt withdrawn):
    discovery by a phone scanning all the time (half an advertising interval on
    average, a whole one at worst, plus advDelay), connection set-up, the
    key's GATT set-up, the measured exchange (which includes the motor's
    stroke) and the lock's decision."""
    conn = conn_interval_ms / 1000.0
    setup = (CONNECT_EVENTS + GATT_SETUP_EVENTS) * conn
    rest = setup + exchange_s + decision_s
    return {"discovery_mean_s": adv_interval_ms / 2000.0 + ADV_DELAY_MEAN_S,
            "discovery_worst_s": adv_interval_ms / 1000.0 + ADV_DELAY_MAX_S,
            "setup_s": setup, "exchange_s": exchange_s, "decision_s": decision_s,
            "mean_s": adv_interval_ms / 2000.0 + ADV_DELAY_MEAN_S + rest,
            "worst_s": adv_interval_ms / 1000.0 + ADV_DELAY_MAX_S + rest}


def fast_advertising_mas_per_visit(adv_event_mas: float, idle_ms: float, fast_ms: float,
                                   window_s: float) -> float:
    """Extra charge of advertising fast for `window_s` after a visit's door events."""
    return max(0.0, window_s * adv_event_mas * (1000.0 / fast_ms - 1000.0 / idle_ms))


def sleep_between_adverts_ma(floor_ma: float, adv_interval_ms: float, adv_event_mas: float,
                             wakeups_per_s: float, wake_mas: float) -> dict[str, float]:
    """Average idle current if the CPU slept between advertising events."""
    adverts = adv_event_mas * 1000.0 / adv_interval_ms
    wakes = wake_mas * wakeups_per_s
    return {"floor": floor_ma, "advertising_events": adverts, "firmware_wakeups": wakes,
            "total": floor_ma + adverts + wakes}
