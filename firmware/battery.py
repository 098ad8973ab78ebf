# The lock's forecast of its own battery: days left at its recent openings per
# day. Portable (MicroPython and CPython), no flash writes (the openings are
# counted in RAM; after a reset the forecast starts again from the board's
# default rate).
#
#   f = Forecast.for_board(board)      # boards/*.py: BATTERY, FORECAST
#   f.note_open(now)                   # lock seconds, at each OPENED record
#   f.days_left(mv, now)               # int days, or None if unknown
#
# Charge left: the pack voltage read off the board's discharge curve
# (BATTERY["curve"], fraction remaining against pack mV), down to the
# battery-change warning (BATTERY["low_mv"]), times the capacity. Use per
# day: FORECAST["idle_mah_per_day"] (what the energy report prices idle at,
# as the firmware runs on that board) + openings per day *
# FORECAST["mah_per_open"] (a visit: radio, CPU and the motor both ways) +
# self-discharge. Li/FeS2 cells keep a flat voltage for most of their life,
# so the voltage says little between about 80 % and 20 %: the figure is a
# guide for the battery round, not a promise (docs/ENERGY.md).
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

DAY_S = const(86400)
WINDOW_DAYS = const(7)  # "recent": the openings of the last week
DEFAULT_OPENS_PER_DAY = const(6)  # until a day has been seen
MAX_DAYS = const(99999)  # an idle lock with no drains would be "forever"


class ForecastError(ValueError):
    """A board without the figures a forecast needs."""


def fraction_at(curve, mv):
    """Fraction of the charge remaining at pack voltage mv, read off a curve of
    (fraction remaining, mV) points (linear between points, clamped)."""
    pts = sorted(curve)
    if mv <= pts[0][1]:
        return pts[0][0]
    if mv >= pts[-1][1]:
        return pts[-1][0]
    for i in range(len(pts) - 1):
        f0, v0 = pts[i]
        f1, v1 = pts[i + 1]
        if v0 <= mv <= v1:
            if v1 == v0:
                return f1
            return f0 + (f1 - f0) * (mv - v0) / (v1 - v0)
    return pts[-1][0]


class Forecast:
    def __init__(self, capacity_mah, curve, low_mv, idle_mah_per_day, mah_per_open,
                 self_discharge_per_year=0.0):
        if capacity_mah <= 0 or idle_mah_per_day < 0 or mah_per_open < 0 or len(curve) < 2:
            raise ForecastError("forecast figures out of range")
        self.capacity_mah = capacity_mah
        self.curve = tuple(curve)
        self.low_mv = low_mv
        self.idle_mah_per_day = idle_mah_per_day
        self.mah_per_open = mah_per_open
        self.self_discharge_mah_per_day = capacity_mah * self_discharge_per_year / 365
        self._days = {}  # lock day -> openings that day (at most WINDOW_DAYS + 1 kept)
        self._since = None  # lock seconds of the first observation

    @classmethod
    def for_board(cls, board):
        """From a board module (BATTERY, FORECAST; optional BATTERY_DERATING)."""
        batt = getattr(board, "BATTERY", None)
        fc = getattr(board, "FORECAST", None)
        if batt is None or fc is None:
            raise ForecastError("the board has no BATTERY/FORECAST figures")
        derate = getattr(board, "BATTERY_DERATING", None) or {}
        f = cls(batt["capacity_mah"] * derate.get("cold", 1.0), batt["curve"],
                batt["low_mv"], fc["idle_mah_per_day"], fc["mah_per_open"])
        # Self-discharge is a share of the nominal capacity (as in the energy report).
        f.self_discharge_mah_per_day = (batt["capacity_mah"]
                                        * derate.get("self_discharge_per_year", 0.0) / 365)
        return f

    def _observe(self, now):
        if self._since is None or now < self._since:
            self._since = now  # first reading, or the clock was set back

    def note_open(self, now):
        self._observe(now)
        day = now // DAY_S
        self._days[day] = self._days.get(day, 0) + 1
        for d in list(self._days):
            if d < day - WINDOW_DAYS:
                del self._days[d]

    def opens_per_day(self, now):
        """Openings per day over the last WINDOW_DAYS (the board's default
        rate, or more if already seen, until a whole day has been watched)."""
        self._observe(now)
        first = now // DAY_S - WINDOW_DAYS + 1
        count = 0
        for d, n in self._days.items():
            if d >= first:
                count += n
        watched = (now - self._since) / DAY_S
        if watched < 1:
            return max(DEFAULT_OPENS_PER_DAY, count)
        return count / min(watched, WINDOW_DAYS)

    def mah_left(self, mv):
        left = fraction_at(self.curve, mv) - fraction_at(self.curve, self.low_mv)
        return self.capacity_mah * left if left > 0 else 0.0

    def mah_per_day(self, now):
        return (self.idle_mah_per_day + self.opens_per_day(now) * self.mah_per_open
                + self.self_discharge_mah_per_day)

    def days_left(self, mv, now):
        """Whole days until the battery-change warning at the recent rate;
        None when the voltage is unknown."""
        if mv is None or mv <= 0:
            return None
        per_day = self.mah_per_day(now)
        if per_day <= 0:
            return MAX_DAYS
        return min(MAX_DAYS, int(self.mah_left(mv) / per_day))


def board_of(hal):
    """The board module behind a HAL (MachineHAL.board, SimHAL.hw.board), or None."""
    board = getattr(hal, "board", None)
    if board is None:
        board = getattr(getattr(hal, "hw", None), "board", None)
    return board


def forecast_for(hal):
    """A Forecast for the HAL's board, or None if its board has no figures."""
    board = board_of(hal)
    if board is None:
        return None
    try:
        return Forecast.for_board(board)
    except ForecastError:
        return None
