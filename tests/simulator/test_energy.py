"""The energy report (simulator/energy.py): its arithmetic against sums done
by hand, the measurement of the real firmware, and the command line.

Expected values here are worked out in the comments, never computed with
the code under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from boards import nrf52840_zephyr as nrf_board
from boards import sim as sim_board
from simulator import energy

ROOT = Path(__file__).resolve().parents[2]
S = ("sleep", "advertising", "connected", "motor")


# --- arithmetic against hand sums ------------------------------------------------

def test_day_seconds_by_hand() -> None:
    # 6 visits of 10 s connected + 2 s motor + 8 s advertising = 120 s busy;
    # 86400 - 120 = 86280 s idle, half advertising, half connected = 43140 each.
    visit = {"sleep": 0.0, "advertising": 8.0, "connected": 10.0, "motor": 2.0}
    mix = {"sleep": 0.0, "advertising": 0.5, "connected": 0.5, "motor": 0.0}
    d = energy.day_seconds(visit, mix, 6)
    assert d["advertising"] == pytest.approx(48 + 43140)
    assert d["connected"] == pytest.approx(60 + 43140)
    assert d["motor"] == pytest.approx(12)
    assert d["sleep"] == 0
    assert sum(d.values()) == pytest.approx(86400)


def test_day_seconds_refuses_more_visits_than_a_day_holds() -> None:
    with pytest.raises(energy.DayOverflow):
        energy.day_seconds({"connected": 3600.0}, {"advertising": 1.0}, 25)


def test_charge_per_day_by_hand() -> None:
    # advertising 36000 s x 2 mA / 3600 = 20 mAh; connected 3600 s x 10 mA = 10;
    # motor 360 s x 20 mA = 2; sleep 46440 s x 0.1 mA = 1.29; winding 180 mA*s
    # x 4 opens / 3600 = 0.2; a 0.05 mA drain all day = 1.2. Total 34.69 mAh,
    # 34.69 / 24 = 1.4454166 mA on average.
    state_s = {"sleep": 46440.0, "advertising": 36000.0, "connected": 3600.0, "motor": 360.0}
    currents = {"sleep": 0.1, "advertising": 2.0, "connected": 10.0, "motor": 20.0}
    c = energy.charge_per_day(state_s, currents, 180.0, 4, {"divider": 0.05})
    assert c["states"]["advertising"] == pytest.approx(20.0)
    assert c["states"]["connected"] == pytest.approx(10.0)
    assert c["states"]["motor"] == pytest.approx(2.0)
    assert c["states"]["sleep"] == pytest.approx(1.29)
    assert c["motor_winding"] == pytest.approx(0.2)
    assert c["static"]["divider"] == pytest.approx(1.2)
    assert c["total"] == pytest.approx(34.69)
    assert c["average_ma"] == pytest.approx(1.4454166667)


def test_usable_fraction_read_off_the_curve() -> None:
    # 5000 mV lies between (0.0, 3600) and (0.1, 5400): 1400/1800 of the way,
    # 0.0777... remaining, so 0.9222... usable.
    curve = ((1.0, 7000), (0.1, 5400), (0.0, 3600))
    assert energy.usable_fraction(curve, 5000) == pytest.approx(1 - 0.1 * 1400 / 1800)
    # The boards' curve puts 5000 mV (the low warning) at exactly 5 % left.
    assert energy.usable_fraction(sim_board.BATTERY["curve"], 5000) == pytest.approx(0.95)


def test_battery_and_life_by_hand() -> None:
    assert energy.effective_capacity(3000, 0.95, 0.95) == pytest.approx(2707.5)
    assert energy.self_discharge_per_day(3650, 0.01) == pytest.approx(0.1)
    assert energy.life_days(1000, 9.0, 1.0) == pytest.approx(100.0)
    # 17520 mAh / 365 = 48 mAh/day; less 24 mAh/day self-discharge = 24 mAh/day = 1 mA.
    assert energy.year_budget_ma(17520, 24.0) == pytest.approx(1.0)
    assert energy.year_budget_ma(8760, 0.0) == pytest.approx(1.0)


def test_sleep_between_adverts_by_hand() -> None:
    # 0.2 mA floor + 0.1 mA*s every 0.5 s (0.2 mA) + 4 wakes/s x 0.05 mA*s (0.2 mA).
    p = energy.sleep_between_adverts_ma(0.2, 500, 0.1, 4.0, 0.05)
    assert p["advertising_events"] == pytest.approx(0.2)
    assert p["firmware_wakeups"] == pytest.approx(0.2)
    assert p["total"] == pytest.approx(0.6)


def _fake_board() -> Any:  # stands in for a board module
    return SimpleNamespace(
        NAME="fake", DESCRIPTION="hand-computed",
        CURRENT_MA={"sleep": 0.0, "advertising": 1.0, "connected": 2.0, "motor": 3.0},
        MOTOR={"travel_s": 0.6, "run_ma": 150.0, "stall_ma": 600.0},
        CAPABILITIES={"can_deep_sleep_between_adverts": False},
        BATTERY={"chemistry": "test", "capacity_mah": 2600.0,
                 "curve": ((0.0, 0), (1.0, 100)), "low_mv": 0, "critical_mv": 0},
        BATTERY_DERATING={"cold": 1.0, "self_discharge_per_year": 0.0},
        STATIC_MA={},
        SLEEP_BETWEEN_ADVERTS={"floor_ma": 0.2, "adv_interval_ms": 1000,
                               "adv_event_mas": 0.1, "wake_mas": 0.1},
    )


def _fake_measurement() -> dict:
    zero = {s: 0.0 for s in S}
    idle = {"seconds": 600.0, "firmware_states_s": dict(zero, advertising=600.0),
            "firmware_mix": dict(zero, advertising=1.0),
            "observed_mix": dict(zero, advertising=1.0),
            "wakeups": 2400, "wakeups_per_s": 4.0, "wake_instants": 2400,
            "wake_instants_per_s": 4.0}
    visit = {"seconds": 36.0, "firmware_states_s": dict(zero, connected=36.0),
             "observed_states_s": dict(zero, connected=36.0), "motor_winding_mas": 36.0,
             "link_open_s": 36.0, "power_states": []}
    return {"idle_before_visit": idle, "visit": visit, "idle_after_visit": idle}


def test_report_board_by_hand() -> None:
    # 100 visits of 36 s connected = 3600 s at 2 mA = 2 mAh; 82800 s idle at
    # 1 mA = 23 mAh; winding 36 mA*s x 100 / 3600 = 1 mAh. 26 mAh/day from
    # 2600 mAh (usable 1, no cold, no self-discharge): 100 days.
    # What-if: idle at 0.2 + 0.1 + 4 x 0.1 = 0.7 mA: 82800 x 0.7 / 3600 =
    # 16.1 mAh, + 2 + 1 = 19.1 mAh/day; fast advertising after each visit's
    # door events: (5 s held open + 30 s) x 0.1 mA*s x (10 - 1) /s = 31.5 mA*s
    # a visit, x 100 / 3600 = 0.875 mAh: 19.975 mAh/day, 2600 / 19.975 days.
    r = energy.report_board(_fake_board(), 100, 365, measured=_fake_measurement())
    today = r["variants"][energy.VARIANT_TODAY]
    assert today["total_mah_per_day"] == pytest.approx(26.0)
    assert today["life_days"] == pytest.approx(100.0)
    assert today["packs_for_period"] == pytest.approx(3.65)
    assert not today["lasts_period"]
    wi = r["variants"][energy.VARIANT_WHAT_IF]
    assert wi["currents_ma"]["advertising"] == pytest.approx(0.7)
    assert wi["fast_advertising_mah_per_day"] == pytest.approx(0.875)
    assert wi["total_mah_per_day"] == pytest.approx(19.975)
    assert wi["life_days"] == pytest.approx(2600 / 19.975)
    # 2600 mAh over 365 days: 7.1233 mAh/day = 0.29680 mA.
    assert r["battery"]["one_year_budget_ma"] == pytest.approx(2600 / 365 / 24)
    # --battery-mah replaces the board's capacity before derating.
    r2 = energy.report_board(_fake_board(), 100, 365, battery_mah=5200,
                             measured=_fake_measurement())
    assert r2["variants"][energy.VARIANT_TODAY]["life_days"] == pytest.approx(200.0)


# --- the real firmware -------------------------------------------------------------

@pytest.fixture(scope="module")
def measured() -> dict:
    return energy.measure(sim_board)


def test_measured_visit_spends_time_in_motor_and_connected(measured: dict) -> None:
    visit = measured["visit"]
    fw = visit["firmware_states_s"]
    # Two strokes (unlock and relock) of 0.6 s each; the end-stop switch reads
    # "reached" 2 % before the end of the travel: at least 2 x 0.588 s.
    assert fw["motor"] >= 1.17
    assert fw["connected"] > 0
    states = [s for _, s in visit["power_states"]]
    assert states.count("motor") == 2
    assert visit["link_open_s"] > 0
    # Winding: 2 strokes x 0.6 s x 150 mA = 180 mA*s, plus any stall before the stop.
    assert 180.0 * 0.95 <= visit["motor_winding_mas"] <= 180.0 * 1.2
    # The seconds per state add up to the visit's length.
    assert sum(fw.values()) == pytest.approx(visit["seconds"], rel=1e-6)
    assert sum(visit["observed_states_s"].values()) == pytest.approx(visit["seconds"], rel=1e-6)


def test_measured_idle_is_timers_only(measured: dict) -> None:
    for key in ("idle_before_visit", "idle_after_visit"):
        idle = measured[key]
        assert idle["seconds"] > 100
        assert idle["firmware_states_s"]["motor"] == 0
        assert idle["wakeups_per_s"] > 0
        assert sum(idle["firmware_mix"].values()) == pytest.approx(1.0)
    assert measured["idle_before_visit"]["firmware_mix"]["advertising"] == pytest.approx(1.0)


def test_more_opens_shorten_life(measured: dict) -> None:
    lives: dict[str, list[float]] = {}
    for opens in (2, 6, 60, 600):
        r = energy.report_board(sim_board, opens, 365, measured=measured)
        for name, v in r["variants"].items():
            assert sum(v["hours_per_day"].values()) == pytest.approx(24.0)
            lives.setdefault(name, []).append(v["life_days"])
    for name, seq in lives.items():
        assert all(a > b for a, b in zip(seq, seq[1:], strict=False)), (name, seq)


def test_what_if_outlasts_today_and_assumptions_are_listed(measured: dict) -> None:
    r = energy.report_board(sim_board, 6, 365, measured=measured)
    assert (r["variants"][energy.VARIANT_WHAT_IF]["life_days"]
            > r["variants"][energy.VARIANT_TODAY]["life_days"])
    text = " ".join(r["assumptions"])
    for word in ("MEASURED", "WHAT-IF", "self-discharge", "cold", "usable", "ESTIMATE"):
        assert word in text


# --- the command line ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    [],
    ["--board", "no-such-board"],
    ["--board", "sim", "--opens-per-day", "-1"],
    ["--board", "sim", "--opens-per-day", "many"],
    ["--board", "sim", "--days", "0"],
    ["--board", "sim", "--battery-mah", "-5"],
    ["--board", "sim", "--frobnicate"],
])
def test_argument_errors_exit_2_with_one_line(argv: list[str],
                                              capsys: pytest.CaptureFixture) -> None:
    assert energy.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("python -m simulator energy")


def test_json_output_parses(capsys: pytest.CaptureFixture) -> None:
    assert energy.main(["--board", "sim", "--json", "--opens-per-day", "8"]) == 0
    data = json.loads(capsys.readouterr().out)
    (b,) = data["boards"]
    assert b["board"] == "sim" and b["opens_per_day"] == 8
    assert set(b["variants"]) == {energy.VARIANT_TODAY, energy.VARIANT_WHAT_IF}
    for v in b["variants"].values():
        assert set(v["hours_per_day"]) == set(S)
        assert v["life_days"] > 0
    assert b["assumptions"] and b["findings"]


def test_all_boards_as_a_module() -> None:
    p = subprocess.run([sys.executable, "-m", "simulator.energy", "--board", "all"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    for name in energy.board_names():
        assert f"{name}: " in p.stdout
    assert "WHAT-IF" in p.stdout and "expected life" in p.stdout


# --- issue #13 sections 2 and 3 -------------------------------------------------------

def test_time_to_open_by_hand() -> None:
    # 1 s adverts: 0.5 + 0.005 s on average, 1.01 s at worst; 8 events at 30 ms
    # = 0.24 s; exchange 0.7 s; decision 0.1 s.
    t = energy.time_to_open(1000, 30, 0.7, 0.1)
    assert t["mean_s"] == pytest.approx(0.505 + 0.24 + 0.7 + 0.1)
    assert t["worst_s"] == pytest.approx(1.01 + 0.24 + 0.7 + 0.1)


def test_supply_and_fast_advertising_by_hand() -> None:
    b = SimpleNamespace(SUPPLY={"kind": "buck", "vout_v": 3.0, "pack_v": 6.0,
                                "efficiency": 0.5, "quiescent_ma": 0.001})
    assert energy.supply_factor(b) == (pytest.approx(1.0), 0.001)
    assert energy.supply_factor(SimpleNamespace()) == (1.0, 0.0)
    # 10 s at 100 ms instead of 1 s: 90 extra events of 0.01 mA*s.
    assert energy.fast_advertising_mas_per_visit(0.01, 1000, 100, 10) == pytest.approx(0.9)


@pytest.fixture(scope="module")
def nrf_report() -> dict:
    m = energy.measure(nrf_board)
    return {n: energy.report_board(nrf_board, n, 365, measured=m) for n in (0, 6, 20)}


def test_nrf52840_is_modelled_as_the_port_runs_and_lasts_3_years_at_20(nrf_report) -> None:
    r = nrf_report[20]
    assert set(r["variants"]) == {energy.VARIANT_TODAY}  # the port sleeps: no what-if
    today = r["variants"][energy.VARIANT_TODAY]
    assert today["label"] == energy.LABEL_MODELLED and r["label"] == energy.LABEL_MODELLED
    assert "MODELLED" in today["title"]
    # Idle is priced with the firmware's measured wake-ups (not assumed away).
    parts = today["idle_current_parts_ma"]
    factor = r["supply"]["factor"]
    wake = r["measured"]["idle_after_visit"]["wakeups_per_s"]
    assert parts["firmware_wakeups"] == pytest.approx(
        wake * nrf_board.SLEEP_BETWEEN_ADVERTS["wake_mas"] * factor)
    assert today["life_years"] >= 3.0
    assert nrf_report[6]["variants"][energy.VARIANT_TODAY]["life_years"] > today["life_years"]
    assert "MODELLED, NOT MEASURED" in " ".join(r["assumptions"])


def test_time_to_open_and_motor_are_reported(nrf_report) -> None:
    for r in nrf_report.values():
        t = r["time_to_open"]
        visit = r["measured"]["visit"]
        # The exchange ends when the unlock stroke ends: after the motor's
        # travel, before the lock's answer.
        assert nrf_board.MOTOR["travel_s"] * 0.95 < t["exchange_s"] <= visit["connect_to_answer_s"]
        assert t["mean_s"] < t["worst_s"]
        assert t["mean_s"] <= t["goal_s"]  # at the idle interval, on average
        mo = r["motor_per_open"]
        assert mo["mah_per_open"] == pytest.approx(visit["motor_winding_mas"] / 3600.0)
        assert mo["run_s_per_open"] == pytest.approx(2 * nrf_board.MOTOR["travel_s"], rel=0.05)


@pytest.mark.parametrize("board", [sim_board, nrf_board], ids=lambda b: b.NAME)
def test_the_boards_forecast_figures_follow_the_energy_report(board, nrf_report,
                                                              measured) -> None:
    m = nrf_report[0]["measured"] if board is nrf_board else measured
    idle = energy.report_board(board, 0, 365, measured=m)["variants"]["today"]
    busy = energy.report_board(board, 20, 365, measured=m)["variants"]["today"]
    per_open = (busy["total_mah_per_day"] - idle["total_mah_per_day"]) / 20
    fc = board.FORECAST
    # Never more optimistic than the report; not wildly pessimistic either.
    assert per_open <= fc["mah_per_open"] <= 1.25 * per_open
    assert idle["total_mah_per_day"] <= fc["idle_mah_per_day"] <= 1.25 * idle["total_mah_per_day"] + 0.5


def test_json_keeps_its_shape_for_every_board(capsys: pytest.CaptureFixture) -> None:
    assert energy.main(["--board", "all", "--json", "--opens-per-day", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {b["board"] for b in data["boards"]} == set(energy.board_names())
    for b in data["boards"]:
        assert b["variants"]["today"]["life_years"] > 0
        for key in ("idle_before_visit", "idle_after_visit"):
            assert b["measured"][key]["wakeups_per_s"] >= 0
        assert b["time_to_open"]["mean_s"] > 0 and b["idle_wakeups_per_hour"] >= 0
        assert b["motor_per_open"]["mah_per_open"] > 0
    esp = next(b for b in data["boards"] if b["board"] == "esp32c3_devkit")
    wi = esp["variants"][energy.VARIANT_WHAT_IF]
    assert wi["title"].startswith("WHAT-IF") and "custom MicroPython build" in wi["title"]
    assert any("32.768 kHz" in n for n in wi["needs"])


# --- an idle lock does nothing (issue 13, section 1) --------------------------------

def _longest_feed_s(board: Any) -> float:
    """The longest period at which this board's watchdog can be fed: a minute
    where the hardware waits longer (the firmware's cap: 60 feeds an hour),
    else the hardware's longest timeout less the 2 s margin for a late feed."""
    hw_max = board.CAPABILITIES.get("watchdog_max_ms")
    if hw_max is None or hw_max >= 62_000:
        return 60.0
    return (hw_max - 2_000) / 1000


def test_longest_feed_periods_follow_the_hardware() -> None:
    from boards import esp32c3_devkit, pico_w

    assert _longest_feed_s(sim_board) == _longest_feed_s(esp32c3_devkit) == 60.0
    assert _longest_feed_s(pico_w) == pytest.approx(6.388)  # RP2040: 8388 ms at most


@pytest.mark.parametrize("name", energy.board_names())
def test_an_idle_hour_wakes_the_firmware_only_to_feed_and_read_the_battery(name: str) -> None:
    board = energy.load_board(name)
    idle = energy.measure(board)["idle_after_visit"]
    assert idle["seconds"] == pytest.approx(3600.0)
    bound = 3600.0 / _longest_feed_s(board) + 1  # the feeds, and the hourly battery reading
    assert idle["wakeups"] <= bound, (name, idle["wakeups"], bound)
    assert idle["wakeups_per_hour"] == pytest.approx(idle["wakeups"])
    assert idle["wakeups"] >= 3600.0 / _longest_feed_s(board) - 1  # it does feed the watchdog
