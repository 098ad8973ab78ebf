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
from firmware.hal import POWER_ADVERTISING, POWER_STATES
from simulator.energy_math import (  # noqa: F401 (the arithmetic's names, imported from here)
    ADV_DELAY_MAX_S,
    ADV_DELAY_MEAN_S,
    CONNECT_EVENTS,
    DAY_S,
    GATT_SETUP_EVENTS,
    DayOverflow,
    charge_per_day,
    day_seconds,
    effective_capacity,
    fast_advertising_mas_per_visit,
    life_days,
    self_discharge_per_day,
    sleep_between_adverts_ma,
    supply_factor,
    time_to_open,
    usable_fraction,
    year_budget_ma,
)
from simulator.energy_visit import (
    DOOR_HELD_OPEN_S,
    EnergyError,
    measure,
)

PROG = "python -m simulator energy"
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

# Time to open (issue #13 section 3; the key's side is in simulator/energy_math.py).
DECISION_S_DEFAULT = 0.15  # ESTIMATE: the lock's HMAC decision on a board (not measured)
TIME_TO_OPEN_GOAL_S = 2.0
SECTION1_WAKEUPS_PER_HOUR = 61  # issue #13 section 1's bound on a board with a >= 1 min watchdog


class UsageError(Exception):
    """Bad arguments (one-line message, exit status 2)."""


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
    from simulator import energy_text  # (it reads this module's figures)
    out["assumptions"] = energy_text.assumptions(board, out, idle_parts)
    out["findings"] = energy_text.findings(board, out)
    return out


def caps_sleep(board: ModuleType) -> bool:
    return bool(getattr(board, "CAPABILITIES", {}).get("can_deep_sleep_between_adverts", False)
                and getattr(board, "SLEEP_BETWEEN_ADVERTS", None) is not None)


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
        from simulator.energy_text import render
        sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
