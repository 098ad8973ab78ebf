"""A fast in-memory HAL for driving firmware.lock.Lock directly in tests.

The simulator (simulator/hal.py) is the full virtual board; this one keeps
only what the lock's decisions need, with time moved by the test (and by
10 ms at each look at the clock while the motor runs, so a jam is found
without waiting). The bolt moves at once unless `jammed`. Storage is
real: Store over a host directory, EventLog over a RAM block device.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from firmware import hal as hal_mod
from firmware.fs import Fs
from protocol import frames
from simulator.mpy.flash import RamBlockDevice


class DirFs(Fs):
    """Fs rooted in a host directory, so the lock's "/store" stays in a temp dir."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = str(root)

    def _p(self, path: str) -> str:
        return self.root + path

    def open(self, path, mode="rb"):  # type: ignore[override]
        return super().open(self._p(path), mode)

    def rename(self, src, dst):  # type: ignore[override]
        super().rename(self._p(src), self._p(dst))

    def remove(self, path):  # type: ignore[override]
        super().remove(self._p(path))

    def mkdir(self, path):  # type: ignore[override]
        super().mkdir(self._p(path))

    def listdir(self, path):  # type: ignore[override]
        return super().listdir(self._p(path))

    def size(self, path):  # type: ignore[override]
        return super().size(self._p(path))


class FakeHAL(hal_mod.HAL):
    board_name = "fake"

    def __init__(self, root: Path, now: int, log_blocks: int = 8) -> None:
        self.root = root
        self.rtc = now
        self.ms = 0
        self.fs = DirFs(root)
        self.log_dev = RamBlockDevice(4096, log_blocks)
        self.cause = hal_mod.RESET_POWER_ON
        self.mv = 5200
        self.retracted = False
        self.jammed = False  # the bolt cannot move (either way) until cleared
        self.motor_dir = 0
        self.door = True
        self.button = False
        self._events: list[tuple[str, bool]] = []
        self._event_ready: asyncio.Event | None = None
        self.indications: list[str] = []
        # Waits the firmware reads through firmware.actuator.timing: a jam is
        # found after 30 ms of (fake) motor time, not 2 s.
        self.timings: dict[str, int] = {"motor_timeout_ms": 30}

    def reboot(self, cause: int = hal_mod.RESET_POWER_ON, rtc_lost: bool = False) -> None:
        self.cause = cause
        if rtc_lost:
            self.rtc = 0

    def advance(self, seconds: int) -> None:
        self.rtc += seconds
        self.ms += seconds * 1000

    def rtc_now(self) -> int:
        return self.rtc

    def rtc_set(self, t: int) -> None:
        self.rtc = t

    def ticks_ms(self) -> int:
        if self.motor_dir:
            self.ms += 10  # time runs while the motor does (each look takes 10 ms)
        return self.ms

    def motor(self, direction: int) -> None:
        """The bolt moves at once, unless jammed."""
        self.motor_dir = direction
        if direction and not self.jammed:
            self.retracted = direction > 0

    def bolt_retracted(self) -> bool:
        return self.retracted

    def bolt_thrown(self) -> bool:
        return not self.retracted

    def door_closed(self) -> bool:
        return self.door

    def button_pressed(self) -> bool:
        return self.button

    def set_door(self, closed: bool) -> None:
        """The door moves: its sensor's interrupt (an event) comes with it."""
        self.door = closed
        self.post_event(hal_mod.EVENT_DOOR, closed)

    def set_button(self, pressed: bool) -> None:
        self.button = pressed
        self.post_event(hal_mod.EVENT_BUTTON, pressed)

    def post_event(self, kind: str, value: bool) -> None:
        self._events.append((kind, value))
        if self._event_ready is not None:
            self._event_ready.set()

    async def next_event(self) -> tuple[str, bool]:
        if self._event_ready is None:
            self._event_ready = asyncio.Event()
        while not self._events:
            self._event_ready.clear()
            await self._event_ready.wait()
        return self._events.pop(0)

    def indicate(self, what: str) -> None:
        self.indications.append(what)

    def battery_mv(self) -> int:
        return self.mv

    def reset_cause(self) -> int:
        return self.cause

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def config_fs(self) -> Fs:
        return self.fs

    def log_device(self) -> RamBlockDevice:
        return self.log_dev


class RecordingLink:
    """The key's end of a BLE link: collects what the lock sends."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(bytes(data))

    def payloads(self) -> list[bytes]:
        decoder = frames.Decoder()
        out: list[bytes] = []
        for chunk in self.sent:
            out.extend(decoder.feed(chunk))
        return out
