"""The actuator's supervision against a fake board (tests/fakehal.py): a relock
that failed is retried, and a visit during the retries stops them before its
own motor run (two motor runs at once would fight over the bolt)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakehal import FakeHAL
from firmware import app as app_mod
from protocol import clock, events

RETRY_MS = 60


class CountingHAL(FakeHAL):
    def __init__(self, root: Path) -> None:
        super().__init__(root, clock.from_unix(1_800_000_000))
        self.timings["relock_retry_ms"] = RETRY_MS
        self.throws = 0  # motor runs towards locked

    def motor(self, direction: int) -> None:
        self.throws += direction < 0
        super().motor(direction)


def make_app(tmp_path: Path) -> tuple[CountingHAL, app_mod.App]:
    hal = CountingHAL(tmp_path)
    return hal, app_mod.App(hal)


async def wait_for(cond, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


def codes(app: app_mod.App) -> list[tuple[int, int]]:
    out = []
    for rec in app.lock.log.read():
        e = events.decode(bytes(rec))
        out.append((e.code, e.detail))
    return out


def test_failed_relock_is_retried_until_the_bolt_goes(tmp_path: Path) -> None:
    hal, app = make_app(tmp_path)
    hal.retracted, hal.jammed = True, True

    async def go() -> None:
        assert not await app.actuator.relock()
        await wait_for(lambda: hal.throws >= 3)  # the first attempt and two retries
        assert hal.retracted
        hal.jammed = False
        await wait_for(lambda: not hal.retracted)

    asyncio.run(go())
    assert hal.motor_dir == 0
    log = codes(app)
    # JAMMED once; RELOCKED counts every attempt that failed before it.
    assert log[-2:] == [(events.JAMMED, 2), (events.RELOCKED, hal.throws - 1)]
    assert hal.throws - 1 >= 3
    assert hal.indications[-1] == "off"


def test_a_visit_stops_the_retries_before_its_motor_runs(tmp_path: Path) -> None:
    hal, app = make_app(tmp_path)
    hal.retracted, hal.jammed = True, True

    async def go() -> None:
        assert not await app.actuator.relock()
        hal.jammed = False
        assert await app.actuator.unlock()  # a visitor with a valid key, before the retry
        await asyncio.sleep(RETRY_MS * 4 / 1000)

    asyncio.run(go())
    # The retry did not throw the bolt in the visitor's face.
    assert hal.retracted and hal.motor_dir == 0
    assert events.RELOCKED not in [c for c, _ in codes(app)]


def test_the_battery_is_read_after_every_motor_run(tmp_path: Path) -> None:
    hal, app = make_app(tmp_path)
    reads: list[int] = []
    real = hal.battery_mv

    def battery_mv() -> int:
        reads.append(hal.motor_dir)
        return real()

    hal.battery_mv = battery_mv  # type: ignore[method-assign]

    async def go() -> None:
        assert await app.actuator.unlock()
        assert reads == [0]  # once, with the motor off again
        assert await app.actuator.relock()
        assert await app.actuator.relock()  # already thrown: no motor run, no reading
        assert reads == [0, 0]

    asyncio.run(go())
    assert app.battery_reads == 2
