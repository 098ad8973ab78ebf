# firmware/battery.py: the lock's forecast of its own battery. Plain asserts
# (runs under CPython and MicroPython). Expected values are worked by hand.
from firmware import battery

CURVE = ((0.0, 4000), (0.5, 5000), (1.0, 6000))  # linear: 1 % per 20 mV


def close(a, b, tol=1e-6):
    return abs(a - b) <= tol


def make(idle=1.0, per_open=0.5, sd=0.0):
    # 1000 mAh, warning at 4500 mV (25 % left): 750 mAh usable from full.
    return battery.Forecast(1000.0, CURVE, 4500, idle, per_open, sd)


def test_fraction_read_off_the_curve():
    assert close(battery.fraction_at(CURVE, 5000), 0.5)
    assert close(battery.fraction_at(CURVE, 5500), 0.75)
    assert battery.fraction_at(CURVE, 9000) == 1.0
    assert battery.fraction_at(CURVE, 100) == 0.0
    unsorted = ((1.0, 6000), (0.0, 4000))
    assert close(battery.fraction_at(unsorted, 4400), 0.2)


def test_days_left_at_the_default_rate_before_a_day_is_seen():
    f = make()
    # 5500 mV: 75 % - 25 % = 500 mAh; 1 + 6 x 0.5 = 4 mAh/day: 125 days.
    assert f.days_left(5500, 1000) == 125
    assert f.days_left(4500, 1000) == 0
    assert f.days_left(4000, 1000) == 0
    assert f.days_left(None, 1000) is None and f.days_left(0, 1000) is None


def test_recent_openings_set_the_rate():
    f = make()
    t0 = 700 * 86400
    for day in range(3):  # 20 openings a day for three days
        for i in range(20):
            f.note_open(t0 + day * 86400 + i * 600)
    now = t0 + 3 * 86400
    # Three days watched, 60 openings: 20 a day; 1 + 20 x 0.5 = 11 mAh/day.
    assert close(f.opens_per_day(now), 20.0)
    assert f.days_left(5500, now) == int(500 / 11)
    # A week later with no openings the old ones have left the window.
    later = now + 8 * 86400
    assert f.opens_per_day(later) == 0
    assert f.days_left(5500, later) == 500
    assert len(f._days) <= battery.WINDOW_DAYS + 1


def test_a_busy_first_day_counts_more_than_the_default():
    f = make()
    for i in range(30):
        f.note_open(5000 + i)
    assert f.opens_per_day(5100) == 30


def test_self_discharge_and_limits():
    # 365 %/year of 1000 mAh = 10 mAh a day on top of 1 mAh idle, no openings.
    f = make(per_open=0.0, sd=3.65)
    assert f.days_left(5500, 1000) == int(500 / 11)
    g = battery.Forecast(1000.0, CURVE, 4500, 0.0, 0.0)
    assert g.days_left(5500, 1000) == battery.MAX_DAYS
    for bad in ((0, CURVE, 4500, 1, 1), (1000, CURVE, 4500, -1, 1), (1000, ((0, 1),), 4500, 1, 1)):
        try:
            battery.Forecast(*bad)
        except battery.ForecastError:
            pass
        else:
            raise AssertionError(bad)


def test_for_board_and_board_of():
    class Board:
        BATTERY = {"capacity_mah": 1000.0, "curve": CURVE, "low_mv": 4500}
        FORECAST = {"idle_mah_per_day": 1.0, "mah_per_open": 0.5}
        BATTERY_DERATING = {"cold": 0.5, "self_discharge_per_year": 0.0}

    class Hal:
        board = Board

    f = battery.forecast_for(Hal())
    assert f is not None and close(f.capacity_mah, 500.0)  # derated for the cold
    assert f.days_left(5500, 0) == int(250 / 4)

    class Bare:
        pass

    assert battery.forecast_for(Bare()) is None
    h = Bare()
    h.board = Bare  # a board without the figures
    assert battery.forecast_for(h) is None
