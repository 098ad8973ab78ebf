"""The application's own supervision: a link loop that dies stops the watchdog
feeding (the board resets into a safe state); a MemoryError while serving one
peer drops that peer, not the lock."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fakehal import FakeHAL
from firmware import app as app_mod
from protocol import clock, frames
from protocol import messages as msg
from simulator.vtime import VirtualTime


class Link:
    def __init__(self, script: list[object]) -> None:
        self.script = script
        self.sent: list[bytes] = []

    async def recv(self) -> bytes:
        await asyncio.sleep(0.01)
        if not self.script:
            await asyncio.sleep(3600)
        item = self.script.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[return-value]

    async def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        pass


class SupervisedHAL(FakeHAL):
    def __init__(self, root: Path, serial_script: list[object]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        super().__init__(root, clock.from_unix(1_800_000_000))
        self.timings = {"watchdog_ms": 200}
        self.feeds = 0
        self.serial = Link(serial_script)

    def watchdog_feed(self) -> None:
        self.feeds += 1

    async def serial_link(self) -> Link:
        return self.serial

    async def ble_accept(self) -> Link:
        await asyncio.sleep(3600)
        raise AssertionError("no BLE here")


def run_for(vt: VirtualTime, hal: SupervisedHAL, seconds: float) -> None:
    """The firmware's main() for `seconds` of virtual time: every wait exact."""
    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(app_mod.main(hal, stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task
    vt.run(go())


def test_a_dead_serial_loop_stops_the_watchdog_feeding(tmp_path: Path) -> None:
    broken = SupervisedHAL(tmp_path / "a", [RuntimeError("a bug in the serial path")])
    healthy = SupervisedHAL(tmp_path / "b", [])
    for hal in (broken, healthy):
        vt = VirtualTime()
        try:
            run_for(vt, hal, 0.6)
        finally:
            vt.close()
    # The healthy lock feeds every 100 ms (half its 200 ms watchdog); the
    # broken one stops once its serial loop has died, so the board's watchdog
    # restarts it.
    # In virtual time the count is exact up to the first and last feed: 0.6 s
    # at one feed per 100 ms (a feed at 200 ms would let the watchdog fire).
    assert 0.6 / 0.1 - 1 <= healthy.feeds <= 0.6 / 0.1 + 1
    assert broken.feeds == 0


def test_memory_error_drops_the_request_not_the_port(tmp_path: Path, virtual_time) -> None:
    ask = frames.encode(msg.encode(msg.GET_HELLO, {}))
    hal = SupervisedHAL(tmp_path, [MemoryError(), ask])
    run_for(virtual_time, hal, 0.8)
    hellos = [p for chunk in hal.serial.sent for p in frames.Decoder().feed(chunk)]
    assert any(msg.decode(p)[0] == msg.HELLO for p in hellos)
    assert 0.8 / 0.1 - 1 <= hal.feeds <= 0.8 / 0.1 + 1  # it kept feeding every 100 ms
