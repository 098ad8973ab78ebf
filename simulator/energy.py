"""Energy report: expected battery life from what the firmware really does.

    python -m simulator energy --board NAME|all [--opens-per-day N] [--days D]
                               [--battery-mah MAH] [--json]

How the figure is made, so it can be checked:

1. Measure (simulator/energy_visit.py). The real firmware runs in virtual
   time: commissioned over its serial port, left idle, visited once over BLE,
   left idle again. The seconds per power state come from the board's power
   account (the states the firmware sets with hal.power_state), the motor's
   charge from the bolt model, and the number of times the firmware's timers
   wake the CPU from the loop itself. What the hardware saw (link open, motor
   driven) is recorded alongside, as a check on the firmware's own accounting.
2. Extrapolate. A day is N measured visits plus idle at the measured idle
   mix: one visit and some idle minutes are simulated, not a whole day.
3. Price. Each state at the board's current (boards/*.py CURRENT_MA), plus
   the motor's own charge, plus the always-on drains (STATIC_MA), against
   the pack's capacity derated for the usable fraction, cold and
   self-discharge (BATTERY, BATTERY_DERATING).

Two variants per board: "today" (the CPU stays awake while advertising, as
MicroPython's stock BLE runs) and a clearly labelled WHAT-IF in which the
port sleeps between advertising events (SLEEP_BETWEEN_ADVERTS), priced with
the wake-ups the firmware's timers actually cause.

Exit status: 0 with a report, 2 for bad arguments (one line on stderr),
1 if the measurement itself failed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import pkgutil
import sys
from types import ModuleType
from typing import Any

import boards
from firmware import radio
from firmware.hal import POWER_ADVERTISING, POWER_CONNECTED, POWER_SLEEP, POWER_STATES
from simulator.energy_visit import (
    BLE_CHUNK,
    BLE_INTERVAL_S,
    DISCONNECT_AFTER_S,
    DOOR_HELD_OPEN_S,
    DOOR_OPEN_AFTER_S,
    EnergyError,
    measure,
)

PROG = "python -m simulator energy"
DAY_S = 86400.0
DEFAULT_OPENS = 6  # home care: morning, lunch, evening, night patrol, two extra
DEFAULT_DAYS = 365  # the municipal requirement: a year per battery
MAX_OPENS = 1000

VARIANT_TODAY = "today"
VARIANT_WHAT_IF = "what_if_sleep_between_adverts"
VARIANT_TITLES = {
    VARIANT_TODAY: "today (as the firmware runs)",
    VARIANT_WHAT_IF: "WHAT-IF: port sleeps between adverts",
}
LABEL_MODELLED = "modelled, not measured"

# Time to open (issue #13 section 3): from a key coming into range to the bolt
# withdrawn. ESTIMATES of the key's side; the exchange itself is measured.
ADV_DELAY_MEAN_S = 0.005  # the spec's random 0-10 ms advDelay added to each interval
ADV_DELAY_MAX_S = 0.010
CONNECT_EVENTS = 2  # CONNECT_IND, transmit window, the first connection event
GATT_SETUP_EVENTS = 6  # MTU exchange, service and characteristic discovery, CCCD write
DECISION_S_DEFAULT = 0.15  # ESTIMATE: the lock's HMAC decision on a board (not measured)
TIME_TO_OPEN_GOAL_S = 2.0
SECTION1_WAKEUPS_PER_HOUR = 61  # issue #13 section 1's bound on a board with a >= 1 min watchdog


class UsageError(Exception):
    """Bad arguments (one-line message, exit status 2)."""


class DayOverflow(ValueError):
    """More visits than fit in a day."""


# --- arithmetic (pure functions; tests check them against hand sums) ---------

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


# --- the report -----------------------------------------------------------------

def board_names() -> list[str]:
    """Every board module that carries currents (sim first)."""
    names = []
    for info in pkgutil.iter_modules(boards.__path__):
        # manifest.py is a freeze script run by the port's build, not a module.
        if info.ispkg or info.name == "manifest":
            continue
        mod = importlib.import_module(f"boards.{info.name}")
        if hasattr(mod, "CURRENT_MA") and hasattr(mod, "BATTERY"):
            names.append(info.name)
    return sorted(names, key=lambda n: (n != "sim", n))


def load_board(name: str) -> ModuleType:
    if name not in board_names():
        raise UsageError(f"unknown board {name!r} (known: {', '.join(board_names())}, all)")
    return importlib.import_module(f"boards.{name}")


def _variant(state_s: dict[str, float], currents: dict[str, float], motor_mas: float,
             opens: float, static: dict[str, float], eff_mah: float, sd_day: float,
             days: float, extra_mah_day: float = 0.0) -> dict:
    charge = charge_per_day(state_s, currents, motor_mas, opens, static)
    charge["total"] += extra_mah_day
    charge["average_ma"] = charge["total"] / 24.0
    life = life_days(eff_mah, charge["total"], sd_day)
    return {
        "currents_ma": {s: currents[s] for s in POWER_STATES},
        "hours_per_day": {s: state_s[s] / 3600.0 for s in POWER_STATES},
        "mah_per_day": charge["states"],
        "motor_winding_mah_per_day": charge["motor_winding"],
        "fast_advertising_mah_per_day": extra_mah_day,
        "static_mah_per_day": charge["static"],
        "total_mah_per_day": charge["total"],
        "average_ma": charge["average_ma"],
        "life_days": life,
        "life_years": life / 365.0,
        "lasts_period": life >= days,
        "packs_for_period": days / life if life > 0 else math.inf,
    }


def report_board(board: ModuleType, opens: float, days: float,
                 battery_mah: float | None = None, measured: dict | None = None) -> dict:
    m = measured if measured is not None else measure(board)
    visit, after, before = m["visit"], m["idle_after_visit"], m["idle_before_visit"]
    idle = after if opens > 0 else before
    batt = board.BATTERY
    derate = getattr(board, "BATTERY_DERATING", {"cold": 1.0, "self_discharge_per_year": 0.0})
    static = dict(getattr(board, "STATIC_MA", {}))
    what = getattr(board, "SLEEP_BETWEEN_ADVERTS", None)
    caps = getattr(board, "CAPABILITIES", {})
    # A port that sleeps whenever the firmware waits: "today" is priced that way.
    sleeps = bool(caps.get("can_deep_sleep_between_adverts", False)) and what is not None
    capacity = float(battery_mah if battery_mah is not None else batt["capacity_mah"])
    usable = usable_fraction(batt["curve"], batt["low_mv"])
    eff = effective_capacity(capacity, usable, derate["cold"])
    sd_day = self_discharge_per_day(capacity, derate["self_discharge_per_year"])
    factor, quiescent = supply_factor(board)
    currents = {s: c * factor + quiescent for s, c in board.CURRENT_MA.items()}
    motor_mas = visit["motor_winding_mas"]

    variants: dict[str, dict] = {}
    idle_parts = None
    fast_mah_day = 0.0
    if what is not None:
        idle_parts = sleep_between_adverts_ma(what["floor_ma"], what["adv_interval_ms"],
                                              what["adv_event_mas"], idle["wakeups_per_s"],
                                              what["wake_mas"])
        idle_parts = {k: v * factor for k, v in idle_parts.items()}
        idle_parts["total"] += quiescent
        window_s = DOOR_HELD_OPEN_S + radio.FAST_WINDOW_MS / 1000.0
        fast_mah_day = opens * factor * fast_advertising_mas_per_visit(
            what["adv_event_mas"], what["adv_interval_ms"], radio.FAST_INTERVAL_MS,
            window_s) / 3600.0
        wi_currents = dict(currents, **{POWER_ADVERTISING: idle_parts["total"]})
        wi_s = day_seconds(visit["observed_states_s"], idle["observed_mix"], opens)
        wi = _variant(wi_s, wi_currents, motor_mas, opens, static, eff, sd_day, days,
                      fast_mah_day)
        wi["idle_current_parts_ma"] = idle_parts
    if sleeps and what is not None:
        variants[VARIANT_TODAY] = wi
        wi["title"] = what.get("title", VARIANT_TITLES[VARIANT_TODAY])
        wi["label"] = LABEL_MODELLED
    else:
        today_s = day_seconds(visit["firmware_states_s"], idle["firmware_mix"], opens)
        variants[VARIANT_TODAY] = _variant(today_s, currents, motor_mas, opens, static, eff,
                                           sd_day, days)
        variants[VARIANT_TODAY]["title"] = VARIANT_TITLES[VARIANT_TODAY]
        variants[VARIANT_TODAY]["label"] = ("priced from the firmware's measured states; "
                                            "currents are datasheet rows and ESTIMATES")
        if what is not None:
            variants[VARIANT_WHAT_IF] = wi
            wi["title"] = what.get("title", VARIANT_TITLES[VARIANT_WHAT_IF])
            wi["label"] = "WHAT-IF, " + LABEL_MODELLED
            if what.get("needs"):
                wi["needs"] = list(what["needs"])

    adv_ms = what["adv_interval_ms"] if what is not None else getattr(board, "ADV_INTERVAL_MS",
                                                                        1000)
    tto = time_to_open(adv_ms, radio.CONN_INTERVAL_MAX_MS, visit.get("connect_to_open_s", 0.0),
                       getattr(board, "DECISION_S", DECISION_S_DEFAULT))
    tto["goal_s"] = TIME_TO_OPEN_GOAL_S
    tto["meets_goal"] = tto["mean_s"] <= TIME_TO_OPEN_GOAL_S  # on average
    tto["meets_goal_worst"] = tto["worst_s"] <= TIME_TO_OPEN_GOAL_S
    # With the section-1 goal (idle wake-ups: the watchdog's and one battery
    # reading an hour, at most 61/h): what each sleep-priced variant would give.
    for v in variants.values():
        parts = v.get("idle_current_parts_ma")
        if parts is None or what is None:
            continue
        target = min(idle["wakeups_per_s"], SECTION1_WAKEUPS_PER_HOUR / 3600.0)
        saved_ma = (idle["wakeups_per_s"] - target) * what["wake_mas"] * factor
        idle_h = v["hours_per_day"][POWER_ADVERTISING]
        total = v["total_mah_per_day"] - saved_ma * idle_h
        v["life_years_at_section1_wakeups"] = life_days(eff, total, sd_day) / 365.0
    motor = {
        "mah_per_open": motor_mas / 3600.0,
        "run_s_per_open": visit.get("motor_run_s", 0.0),
        "stall_s_per_open": visit.get("motor_stall_s", 0.0),
        "run_ma": board.MOTOR["run_ma"], "stall_ma": board.MOTOR["stall_ma"],
        "stall_share_of_charge": (visit.get("motor_stall_s", 0.0) * board.MOTOR["stall_ma"]
                                  / motor_mas
                                  if motor_mas else 0.0),
        "stopped_by": "end stop (the firmware polls the switch every 20 ms)",
    }

    out = {
        "board": board.NAME,
        "description": getattr(board, "DESCRIPTION", ""),
        "opens_per_day": opens,
        "days": days,
        "measured": m,
        "battery": {
            "chemistry": batt.get("chemistry", ""),
            "capacity_mah": capacity,
            "usable_fraction": usable,
            "low_mv": batt["low_mv"],
            "cold_factor": derate["cold"],
            "effective_mah": eff,
            "self_discharge_per_year": derate["self_discharge_per_year"],
            "self_discharge_mah_per_day": sd_day,
            "one_year_budget_ma": year_budget_ma(eff, sd_day),
            "period_budget_ma": year_budget_ma(eff, sd_day, days),
        },
        "variants": variants,
        "time_to_open": tto,
        "motor_per_open": motor,
        "idle_wakeups_per_hour": idle["wakeups_per_s"] * 3600.0,
        "supply": {"kind": getattr(board, "SUPPLY", {}).get("kind", "linear"),
                   "factor": factor, "quiescent_ma": quiescent},
        "label": LABEL_MODELLED if sleeps else "",
    }
    out["assumptions"] = _assumptions(board, out, idle_parts)
    out["findings"] = _findings(board, out)
    return out


def _fmt_days(d: float) -> str:
    if math.isinf(d):
        return "unlimited"
    return f"{d:,.1f} days ({d / 365.0:.2f} years)"


def _assumptions(board: ModuleType, r: dict, idle_parts: dict | None) -> list[str]:
    name = board.NAME
    m = r["measured"]
    b = r["battery"]
    caps = getattr(board, "CAPABILITIES", {})
    visit = m["visit"]
    idle = m["idle_after_visit"] if r["opens_per_day"] > 0 else m["idle_before_visit"]
    a = [
        "Time per power state is MEASURED: the real firmware (firmware.app on SimHAL and the "
        "virtual hardware) runs in virtual time for one visit and idle spells; a day is "
        f"{r['opens_per_day']:g} such visits plus idle at the measured idle mix "
        f"({idle['seconds']:.0f} s measured "
        f"{'after a visit' if r['opens_per_day'] > 0 else 'before any visit'}), "
        "extrapolated, not a whole simulated day.",
        f"One visit ({visit['seconds']:.1f} s, measured): BLE connect, hello, open request, "
        f"unlock, the key disconnects {DISCONNECT_AFTER_S:g} s after the answer, the door is "
        f"opened {DOOR_OPEN_AFTER_S:g} s after the answer and closed {DOOR_HELD_OPEN_S:g} s "
        "later, the firmware relocks. The key's and the person's timings are ESTIMATES; "
        f"BLE carries one {BLE_CHUNK}-byte write or notification per "
        f"{BLE_INTERVAL_S * 1000:.0f} ms connection interval (ESTIMATE: a negotiated "
        "ATT_MTU of 247; at the default 23 a request takes ~20 writes, about half a second "
        "more connected time per visit).",
        "Each open is one BLE session. Staff leaving by the thumb-turn do not count; if they "
        "lock with the app when they leave, count two opens per visit.",
        "The lock's own computing time is not in the measurement (virtual time stands still "
        "while Python runs): on a board, checking the token adds some tens to hundreds of ms "
        "of connected time per visit (more with the Ed25519 suite): negligible next to idle.",
        f"Currents: boards/{name}.py CURRENT_MA (datasheet rows or ESTIMATES, as marked there): "
        + ", ".join(f"{s} {board.CURRENT_MA[s]:g} mA" for s in POWER_STATES)
        + "; the motor winding as MOTOR (run "
        f"{board.MOTOR['run_ma']:g} mA, stall {board.MOTOR['stall_ma']:g} mA, ESTIMATE), "
        f"{visit['motor_winding_mas'] / 3600.0:.4f} mAh per visit measured.",
    ]
    sup = getattr(board, "SUPPLY", None)
    if sup:
        a.append(f"Pack current = rail current x {r['supply']['factor']:.3f} "
                 f"({sup['vout_v']:g} V rail / ({sup['pack_v']:g} V pack x "
                 f"{sup['efficiency']:g} efficiency), a {sup['kind']} converter, ESTIMATE) + "
                 f"{sup.get('quiescent_ma', 0.0) * 1000:g} uA quiescent; the motor and the "
                 "drains are at the pack.")
    else:
        a.append("Pack current = board current (a linear regulator; its quiescent current is "
                 "not counted). A buck converter would cut the board's share by roughly "
                 "3.3 V / (pack V x efficiency).")
    static = getattr(board, "STATIC_MA", {})
    if static:
        a.append("Always-on drains (boards/%s.py STATIC_MA, ESTIMATES): " % name
                 + ", ".join(f"{k.replace('_', ' ')} {v:g} mA" for k, v in static.items())
                 + ".")
    a.append(
        f"Battery: {b['chemistry']} {b['capacity_mah']:.0f} mAh (boards/{name}.py, "
        f"ESTIMATE) x usable {b['usable_fraction']:.2f} (to the battery-change warning at "
        f"{b['low_mv']} mV, read off the board's discharge curve) x cold "
        f"{b['cold_factor']:.2f} (ESTIMATE) = {b['effective_mah']:.0f} mAh; self-discharge "
        f"{100 * b['self_discharge_per_year']:g} %/year (ESTIMATE) = "
        f"{b['self_discharge_mah_per_day']:.3f} mAh/day.")
    if not caps.get("can_deep_sleep_between_adverts", False):
        a.append(f"Today: the CPU stays awake while advertising (boards/{name}.py "
                 "CAPABILITIES can_deep_sleep_between_adverts = False: MicroPython's stock "
                 "bluetooth module does not sleep between advertising events), so idle is "
                 f"priced at the '{POWER_ADVERTISING}' current.")
    what = getattr(board, "SLEEP_BETWEEN_ADVERTS", None)
    sleeps = caps.get("can_deep_sleep_between_adverts", False)
    if what is not None and idle_parts is not None:
        head = ("MODELLED, NOT MEASURED (as the firmware runs on this port, which sleeps "
                "whenever the firmware waits; docs/ENERGY.md lists what is unverified): "
                if sleeps else
                "WHAT-IF (not how the firmware runs today): the port sleeps between "
                "advertising events. ")
        if not sleeps and what.get("needs"):
            head += "It needs: " + "; ".join(what["needs"]) + ". "
        a.append(
            head + f"Idle = floor {what['floor_ma']:g} mA + one advertising event every "
            f"{what['adv_interval_ms']:g} ms at {what['adv_event_mas']:g} mA*s "
            f"({idle_parts['advertising_events']:.3f} mA) + {idle['wakeups_per_s']:.2f} "
            "firmware wake-ups/s (measured: every firing of the firmware's timers counted "
            f"on its own; {idle['wake_instants_per_s']:.2f}/s if the timers that fall "
            f"together in virtual time share a wake-up) at {what['wake_mas']:g} "
            f"mA*s ({idle_parts['firmware_wakeups']:.3f} mA) = {idle_parts['total']:.3f} mA "
            f"(boards/{name}.py SLEEP_BETWEEN_ADVERTS, ESTIMATES, at the rail). The visit keeps "
            "the connected and motor currents; time per state is as the hardware saw it "
            "(link open, motor driven). Fast advertising after each visit's door events "
            f"({radio.FAST_INTERVAL_MS} ms for {radio.FAST_WINDOW_MS // 1000} s after the last "
            "one, firmware/radio.py) is added.")
    t = r["time_to_open"]
    a.append(
        f"Time to open (MODEL): a phone scanning all the time finds a {t['discovery_worst_s'] - ADV_DELAY_MAX_S:g} s "
        f"advertiser in {t['discovery_mean_s']:.2f} s on average, {t['discovery_worst_s']:.2f} s at "
        f"worst; connection and the key's GATT set-up {CONNECT_EVENTS + GATT_SETUP_EVENTS} "
        f"connection events at {radio.CONN_INTERVAL_MAX_MS} ms ({t['setup_s']:.2f} s, ESTIMATE); "
        f"the exchange from the connection to the bolt withdrawn (the end of the unlock stroke) {t['exchange_s']:.2f} s (MEASURED in virtual "
        f"time, {r['measured']['visit'].get('notify_bytes', 244)}-byte notifications); the "
        f"decision {t['decision_s']:.2f} s (ESTIMATE for this board's CPU). A phone scanning in "
        "the background (iOS, Android's low-power modes) takes seconds longer: the key app "
        "scans in the foreground.")
    extra = getattr(board, "DEVKIT_EXTRA_MA", None)
    if extra:
        today = r["variants"][VARIANT_TODAY]
        d = life_days(b["effective_mah"], today["total_mah_per_day"] + extra * 24.0,
                      b["self_discharge_mah_per_day"])
        a.append(f"Not counted: the development board's own power LED and regulator "
                 f"(DEVKIT_EXTRA_MA {extra:g} mA, ESTIMATE): a product board has neither. "
                 f"The dev board as built, today: {_fmt_days(d)}.")
    return a


def _findings(board: ModuleType, r: dict) -> list[str]:
    m = r["measured"]
    f = []
    after = m["idle_after_visit"]
    stuck = after["firmware_mix"].get(POWER_CONNECTED, 0.0)
    if stuck > 0.01:
        f.append(
            f"The firmware reports '{POWER_CONNECTED}' for {100 * stuck:.0f} % of the idle time "
            "after a visit although no BLE link is open: the power state it sets after the "
            "relock motor run is 'connected', and it stays so until the next connection. "
            "'Today' prices that idle time as the firmware reports it; the what-if uses what "
            "the hardware saw.")
    fw_sleep = (m["visit"]["firmware_states_s"][POWER_SLEEP]
                + after["firmware_states_s"][POWER_SLEEP]
                + m["idle_before_visit"]["firmware_states_s"][POWER_SLEEP])
    if fw_sleep == 0:
        f.append(f"The firmware never enters the '{POWER_SLEEP}' state: idle is always "
                 "advertising.")
    wi = r["variants"].get(VARIANT_WHAT_IF)
    budget = r["battery"]["one_year_budget_ma"]
    today = r["variants"][VARIANT_TODAY]
    ratio = today["average_ma"] / budget
    f.append(f"One year needs an average of at most {budget:.3f} mA; today the lock draws "
             f"{today['average_ma']:.3f} mA ("
             + (f"{ratio:.0f}x too much)." if ratio > 1 else
                f"{today['life_years']:.1f} years at {r['opens_per_day']:g} openings/day).")
             + (f" {today.get('label', '')}." if today.get("label") == LABEL_MODELLED else ""))
    if today["life_years"] < 3 and caps_sleep(board):
        parts = today["idle_current_parts_ma"]
        f.append(f"Under 3 years: the firmware's timer wake-ups cost {parts['firmware_wakeups']:.4f} "
                 f"mA of {today['average_ma']:.4f} mA; pin interrupts instead of polling timers "
                 "(issue #13 section 1) take them to the watchdog's and the hourly battery reading.")
    t = r["time_to_open"]
    f.append(f"Time to open: {t['mean_s']:.2f} s on average (goal {t['goal_s']:g} s: "
             f"{'met' if t['meets_goal'] else 'NOT met'}), {t['worst_s']:.2f} s at worst, for "
             "a key arriving just after an advert ("
             + ("met too)." if t["meets_goal_worst"] else
                f"{t['worst_s'] - t['goal_s']:.2f} s over: a 15 ms connection interval saves "
                f"{GATT_SETUP_EVENTS + CONNECT_EVENTS} x 15 ms, an idle interval of 760 ms "
                "0.24 s)."))
    for v in r["variants"].values():
        if "life_years_at_section1_wakeups" in v:
            f.append(f"{v['title']}: {v['life_years']:.2f} years now; "
                     f"{v['life_years_at_section1_wakeups']:.2f} years with at most "
                     f"{SECTION1_WAKEUPS_PER_HOUR} firmware wake-ups an hour (the bound issue #13 "
                     "section 1 holds).")
    mo = r["motor_per_open"]
    f.append(f"Motor per opening (both strokes): {mo['mah_per_open'] * 1000:.1f} uAh, of which "
             f"{100 * mo['stall_share_of_charge']:.0f} % is stall against the end stop "
             f"({mo['stall_s_per_open'] * 1000:.0f} ms at {mo['stall_ma']:g} mA) before the "
             "firmware sees the switch; a current-sensing cut-off or an end-stop interrupt "
             "would stop it within about a millisecond.")
    if wi is not None and not caps_sleep(board):
        parts = wi["idle_current_parts_ma"]
        static = sum(getattr(board, "STATIC_MA", {}).values())
        verdict = "reaches" if wi["life_days"] >= 365 else "does not reach"
        f.append(
            f"Even sleeping between advertisements the lock {verdict} a year "
            f"({wi['average_ma']:.3f} mA): sleep floor {parts['floor']:.3f} mA, advertising "
            f"events {parts['advertising_events']:.3f} mA, firmware timer wake-ups "
            f"{parts['firmware_wakeups']:.3f} mA ({after['wakeups_per_s']:.2f}/s), always-on "
            f"drains {static:.3f} mA. Wake-ups would go with interrupts instead of polling "
            "timers; the drains with switched dividers and high-value pull-ups.")
    return f


def caps_sleep(board: ModuleType) -> bool:
    return bool(getattr(board, "CAPABILITIES", {}).get("can_deep_sleep_between_adverts", False)
                and getattr(board, "SLEEP_BETWEEN_ADVERTS", None) is not None)


def _table(r: dict, keys_: list[str]) -> list[str]:
    """One board's table: per power state and drain, per variant."""
    lines: list[str] = []
    head = f"  {'':<24}" + "".join(f"{r['variants'][k]['title'][:39]:>40}" for k in keys_)
    lines.append(head)
    lines.append(f"  {'state':<24}" + "".join(
        f"{'mA':>12}{'h/day':>12}{'mAh/day':>16}" for _ in keys_))
    for s in POWER_STATES:
        row = f"  {s:<24}"
        for k in keys_:
            v = r["variants"][k]
            row += (f"{v['currents_ma'][s]:>12.3f}{v['hours_per_day'][s]:>12.3f}"
                    f"{v['mah_per_day'][s]:>16.3f}")
        lines.append(row)
    row = f"  {'motor winding':<24}"
    for k in keys_:
        row += f"{'':>12}{'':>12}{r['variants'][k]['motor_winding_mah_per_day']:>16.3f}"
    lines.append(row)
    row = f"  {'fast advertising':<24}"
    for k in keys_:
        v = r["variants"][k]["fast_advertising_mah_per_day"]
        row += f"{'':>12}{'':>12}{v:>16.3f}"
    lines.append(row)
    for name in r["variants"][VARIANT_TODAY]["static_mah_per_day"]:
        row = f"  {name.replace('_', ' '):<24}"
        for k in keys_:
            v = r["variants"][k]["static_mah_per_day"][name]
            row += f"{v / 24.0:>12.3f}{24.0:>12.3f}{v:>16.3f}"
        lines.append(row)
    row = f"  {'total':<24}"
    for k in keys_:
        v = r["variants"][k]
        row += f"{v['average_ma']:>12.3f}{24.0:>12.3f}{v['total_mah_per_day']:>16.3f}"
    lines.append(row)
    return lines


def render(results: list[dict]) -> str:
    lines: list[str] = []
    for r in results:
        m = r["measured"]
        visit = m["visit"]
        after = m["idle_after_visit"]
        fw = visit["firmware_states_s"]
        lines.append(f"{r['board']}: {r['description']}")
        lines.append(
            f"  measured visit {visit['seconds']:.2f} s: "
            + ", ".join(f"{s} {fw[s]:.2f} s" for s in POWER_STATES if fw[s] > 0)
            + f"; motor winding {visit['motor_winding_mas'] / 3600.0:.4f} mAh")
        for label, idle in (("idle before any visit", m["idle_before_visit"]),
                            ("idle after the visit", after)):
            lines.append(
                f"  measured {label} ({idle['seconds']:.0f} s): "
                + ", ".join(f"{s} {100 * v:.0f} %" for s, v in idle["firmware_mix"].items()
                            if v)
                + f"; the firmware's timers fire {idle['wakeups_per_s']:.2f} times/s")
        lines.append(f"  {r['opens_per_day']:g} opens/day")
        keys_ = list(r["variants"])
        lines += _table(r, keys_)
        b = r["battery"]
        lines.append(f"  battery {b['capacity_mah']:.0f} mAh -> {b['effective_mah']:.0f} mAh "
                     f"effective, self-discharge {b['self_discharge_mah_per_day']:.3f} mAh/day")
        row = f"  {'expected life':<24}"
        for k in keys_:
            row += f"{_fmt_days(r['variants'][k]['life_days']):>40}"
        lines.append(row)
        row = f"  {'packs for %g days' % r['days']:<24}"  # battery packs used
        for k in keys_:
            v = r["variants"][k]
            row += f"{v['packs_for_period']:>40.1f}"
        lines.append(row)
        for k in keys_:
            if r["variants"][k].get("label"):
                lines.append(f"  {r['variants'][k]['title']}: {r['variants'][k]['label']}")
        t = r["time_to_open"]
        lines.append(f"  time to open: {t['mean_s']:.2f} s mean, {t['worst_s']:.2f} s worst "
                     f"(goal {t['goal_s']:g} s); idle wake-ups {r['idle_wakeups_per_hour']:.0f}/h; "
                     f"motor {r['motor_per_open']['mah_per_open'] * 1000:.1f} uAh per opening")
        lines.append("  assumptions:")
        for i, text in enumerate(r["assumptions"], 1):
            lines.append(f"    {i}. {text}")
        lines.append("  findings:")
        for text in r["findings"]:
            lines.append(f"    - {text}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isinf(obj) or math.isnan(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


# --- command line ---------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _positive(kind: type, allow_zero: bool = False):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if math.isnan(v) or math.isinf(v) or v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"must be {'zero or more' if allow_zero else 'positive'}, not {text!r}")
        return v
    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog=PROG, description="Expected battery life of a lock, from the time the "
                "real firmware spends in each power state and the board's currents.")
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"a board in boards/ ({', '.join(board_names())}) or 'all'")
    p.add_argument("--opens-per-day", type=_positive(float, allow_zero=True),
                   default=DEFAULT_OPENS, metavar="N",
                   help="door openings a day (default %(default)s)")
    p.add_argument("--days", type=_positive(float), default=DEFAULT_DAYS,
                   metavar="D", help="period to check the battery against (default "
                   "%(default)s)")
    p.add_argument("--battery-mah", type=_positive(float), default=None,
                   metavar="MAH", help="pack capacity before derating (default: the board's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    if args.opens_per_day > MAX_OPENS:
        raise UsageError(f"--opens-per-day must be at most {MAX_OPENS}")
    if args.board != "all":
        load_board(args.board)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    names = board_names() if args.board == "all" else [args.board]
    results = []
    try:
        for name in names:
            results.append(report_board(load_board(name), args.opens_per_day, args.days,
                                        args.battery_mah))
    except EnergyError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except DayOverflow as e:  # an argument that does not fit the measured visit
        print(f"{PROG}: error: --opens-per-day: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(_json_safe({"boards": results}), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
