"""The lock's battery forecast in the status keys bring back (ST_BATTERY_DAYS,
issue #13 section 3): worked out here from the board file's figures with an
interpolation of our own, and absent (old keys unchanged) on a HAL whose
board has no figures."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

import boards.nrf52840_zephyr as nrf
import boards.sim as sim
from fakehal import FakeHAL
from firmware import app as app_mod
from firmware.lock import Session
from protocol import clock, events, keys
from protocol import messages as msg

START = 1768464000
OLD_KEYS = {msg.ST_REVOCATION_VERSION, msg.ST_BATTERY, msg.ST_BATTERY_MV, msg.ST_LOG_COUNT,
            msg.ST_LOG_CAPACITY, msg.ST_CLOCK_TRUSTED, msg.ST_TIME, msg.ST_LAST_SEQ,
            msg.ST_FIRMWARE}


def interp(x: float, pts: list[tuple[float, float]]) -> float:
    """y at x on a polyline of (x, y) points sorted by x (clamped)."""
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        if x <= x1:
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return pts[-1][1]


def expected_days(board, mv: int, opens_per_day: float) -> int:
    by_mv = sorted((v, f) for f, v in board.BATTERY["curve"])
    left = interp(mv, by_mv) - interp(board.BATTERY["low_mv"], by_mv)
    cap = board.BATTERY["capacity_mah"]
    mah = cap * board.BATTERY_DERATING["cold"] * max(0.0, left)
    per_day = (board.FORECAST["idle_mah_per_day"] + opens_per_day * board.FORECAST["mah_per_open"]
               + cap * board.BATTERY_DERATING["self_discharge_per_year"] / 365)
    return int(mah / per_day)


@pytest.fixture
def tmp():
    d = Path(tempfile.mkdtemp(prefix="battdays-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def lock_on(tmp: Path, board=None):
    hal = FakeHAL(tmp, clock.from_unix(START))
    if board is not None:
        hal.board = board  # type: ignore[attr-defined]
    a = app_mod.App(hal)
    a.lock.hello(Session("serial"))
    a.lock.commission({1: b"", 2: "L-1", 3: keys.lock_secret(bytes(32), "L-1"), 4: "hmac",
                       5: START, 6: "site", 7: "apartment"})
    return hal, a.lock


@pytest.mark.parametrize("board", [nrf, sim], ids=lambda b: b.NAME)
def test_status_carries_days_left_at_the_recent_openings(tmp: Path, board) -> None:
    hal, lock = lock_on(tmp, board)
    for mv in (6100, 5850, 5600, 5000, 4800):
        hal.mv = mv
        lock.check_battery()
        st = lock.status()
        assert OLD_KEYS <= set(st)
        # Before a day has been watched: the default of 6 openings a day.
        assert st[msg.ST_BATTERY_DAYS] == expected_days(board, mv, 6), mv
    hal.mv = 5850
    lock.check_battery()
    # 20 openings a day for two days.
    for _day in range(2):
        for _ in range(20):
            lock.record(events.OPENED, 0)
            hal.advance(86400 // 20)
    st = lock.status()
    assert abs(st[msg.ST_BATTERY_DAYS] - expected_days(board, 5850, 20)) <= 1
    assert st[msg.ST_BATTERY_DAYS] <= expected_days(board, 5850, 6)
    if board is nrf:  # (on the sim board idle dwarfs the openings: 3 days either way)
        assert st[msg.ST_BATTERY_DAYS] < expected_days(board, 5850, 6)


def test_no_figures_no_field_and_the_old_keys_as_before(tmp: Path) -> None:
    _, lock = lock_on(tmp)
    st = lock.status()
    assert set(st) == OLD_KEYS
    assert lock.battery_days() is None


def test_the_forecast_writes_nothing_to_flash(tmp: Path) -> None:
    hal, lock = lock_on(tmp, nrf)
    before = sorted(p.name for p in tmp.rglob("*"))
    ops = hal.log_dev.flash.ops  # program + erase operations on the log's flash
    for _ in range(5):
        lock.record(events.OPENED, 0)
    ops_opens = hal.log_dev.flash.ops
    for _ in range(5):
        lock.status()
        lock.battery_days()
    assert sorted(p.name for p in tmp.rglob("*")) == before
    assert hal.log_dev.flash.ops == ops_opens  # reading the forecast writes nothing
    assert ops_opens > ops  # (the openings themselves are records)
