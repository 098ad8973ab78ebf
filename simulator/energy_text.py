"""The energy report in words (simulator/energy.py computes it): each board's
assumptions with their sources, the findings, and the table that
`python -m simulator energy` prints."""

from __future__ import annotations

import math
from types import ModuleType

from firmware import radio
from firmware.hal import POWER_ADVERTISING, POWER_CONNECTED, POWER_SLEEP, POWER_STATES
from simulator.energy import (
    LABEL_MODELLED,
    SECTION1_WAKEUPS_PER_HOUR,
    VARIANT_TODAY,
    VARIANT_WHAT_IF,
    caps_sleep,
)
from simulator.energy_math import ADV_DELAY_MAX_S, CONNECT_EVENTS, GATT_SETUP_EVENTS, life_days
from simulator.energy_visit import (
    DISCONNECT_AFTER_S,
    DOOR_HELD_OPEN_S,
    DOOR_OPEN_AFTER_S,
)
from simulator.memlock import BLE_CHUNK, BLE_INTERVAL_S


def _fmt_days(d: float) -> str:
    if math.isinf(d):
        return "unlimited"
    return f"{d:,.1f} days ({d / 365.0:.2f} years)"


def assumptions(board: ModuleType, r: dict, idle_parts: dict | None) -> list[str]:
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


def findings(board: ModuleType, r: dict) -> list[str]:
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


