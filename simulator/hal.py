"""SimHAL: firmware.hal.HAL over the virtual hardware, the flash and the ports.

One SimHAL serves one boot of the firmware: simulator/board.py makes a new one
after every reset, with that boot's reset cause. `timings` shortens the
firmware's waits for tests (see simulator/control.py, command "timings"). Once the board has reset, the
old SimHAL is dead: a firmware task that outlived the reset gets `BoardReset`
from every call, so it can no longer move the motor or write the flash.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable

from firmware import hal as hal_mod
from simulator.endpoints import BleServer, PtyEndpoint
from simulator.hardware import Hardware


class BoardReset(BaseException):
    """The board is restarting (hal.reset(), or a call into a HAL whose boot
    is over). A BaseException, so the firmware's `except Exception` cannot
    swallow it: on a board, machine.reset() never returns."""


class SimHAL(hal_mod.HAL):
    board_name = "sim"

    def __init__(self, hw: Hardware, *, reset_cause: int = hal_mod.RESET_POWER_ON,
                 config_fs: Callable[[], Any] | None = None,
                 log_device: Callable[[], Any] | None = None,
                 serial: PtyEndpoint | None = None, ble: BleServer | None = None,
                 on_reset: Callable[[int], None] | None = None,
                 timings: dict[str, int] | None = None,
                 erase_config: Callable[[], None] | None = None,
                 on_event: Callable[[str, bool], None] | None = None) -> None:
        self.hw = hw
        # Overrides of the firmware's waits, by name (firmware.actuator.timing):
        # the board's own dict, so a change through the control channel is
        # seen at once. Empty: the firmware's own constants.
        self.timings = timings if timings is not None else {}
        self.board_name = hw.board.NAME
        batt = hw.board.BATTERY
        # Thresholds the firmware reads for ok/low/critical (board-specific).
        self.battery_low_mv = batt["low_mv"]
        self.battery_critical_mv = batt["critical_mv"]
        self._cause = reset_cause
        self._config_fs_factory = config_fs
        self._erase_config = erase_config
        self._log_device_factory = log_device
        self._fs: Any = None
        self._log: Any = None
        self._serial = serial
        self._serial_link: Any = None
        self._ble = ble
        self._on_reset = on_reset
        self._boot_t = hw.clock.now()
        self.alive = True
        self.ble_links: list[Any] = []
        self.watchdog_max_ms = hw.board.CAPABILITIES.get("watchdog_max_ms")
        # Events (next_event): the hardware's sensor edges, in order. The
        # models' edges are clean, so there is nothing to debounce here (a
        # board's HAL debounces its pins). `on_event` sends them elsewhere
        # instead (the MicroPython child's event stream).
        self._on_event = on_event
        self._events: list[tuple[str, bool]] = []
        self._event_ready = asyncio.Event()
        hw.listen(self._edge)

    def _check(self) -> None:
        if not self.alive:
            raise BoardReset("this boot is over")

    def kill(self) -> None:
        """The board has reset: this HAL answers nothing more."""
        self.alive = False
        self.hw.unlisten(self._edge)
        self._event_ready.set()  # a waiter gets BoardReset
        if self._serial_link is not None:
            self._serial_link.close()
        for link in self.ble_links:
            link.close()

    # --- time ---------------------------------------------------------------
    def rtc_now(self) -> int:
        self._check()
        return self.hw.rtc.now()

    def rtc_set(self, lock_seconds: int) -> None:
        self._check()
        self.hw.rtc.set(int(lock_seconds))

    def ticks_ms(self) -> int:
        return int((self.hw.clock.now() - self._boot_t) * 1000)

    # --- actuator and sensors ---------------------------------------------
    def motor(self, direction: int) -> None:
        self._check()
        self.hw.bolt.drive(direction)

    def bolt_retracted(self) -> bool:
        self._check()
        return self.hw.bolt.retracted()

    def bolt_thrown(self) -> bool:
        self._check()
        return self.hw.bolt.thrown()

    def door_closed(self) -> bool:
        self._check()
        return self.hw.door.closed()

    def button_pressed(self) -> bool:
        self._check()
        return self.hw.button.pressed()

    def indicate(self, what: str) -> None:
        self._check()
        self.hw.indicate(what)

    def battery_mv(self) -> int:
        self._check()
        return self.hw.battery.mv()

    # --- events ---------------------------------------------------------------
    def _edge(self, name: str, level: bool) -> None:
        kind = {"door": hal_mod.EVENT_DOOR, "button": hal_mod.EVENT_BUTTON}[name]
        self.post_event(kind, level)

    def post_event(self, kind: str, value: bool) -> None:
        """An event for the firmware of this boot (a sensor edge, or new timings)."""
        if not self.alive:
            return
        if self._on_event is not None:
            self._on_event(kind, value)
            return
        self._events.append((kind, value))
        self._event_ready.set()

    async def next_event(self) -> tuple[str, bool]:
        while True:
            self._check()
            if self._events:
                return self._events.pop(0)
            self._event_ready.clear()
            await self._event_ready.wait()

    # --- supervision --------------------------------------------------------
    def watchdog_start(self, timeout_ms: int) -> None:
        self._check()
        self.hw.watchdog.start(timeout_ms)

    def watchdog_feed(self) -> None:
        self._check()
        self.hw.watchdog.feed()

    def reset_cause(self) -> int:
        return self._cause

    def reset(self) -> None:
        self._check()
        if self._on_reset is not None:
            self._on_reset(hal_mod.RESET_SOFT)
        self.alive = False
        raise BoardReset("hal.reset()")

    def random_bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def power_state(self, state: str) -> None:
        self._check()
        self.hw.power_state(state)

    # --- storage ------------------------------------------------------------
    def config_fs(self) -> Any:
        self._check()
        if self._fs is None:
            if self._config_fs_factory is None:
                raise OSError(19, "no filesystem on this board")
            self._fs = self._config_fs_factory()
        return self._fs

    def erase_config_storage(self) -> None:
        self._check()
        if self._erase_config is None:
            raise NotImplementedError
        self._fs = None  # the mounted filesystem is gone with its blocks
        self._erase_config()

    def log_device(self) -> Any:
        self._check()
        if self._log is None:
            if self._log_device_factory is None:
                raise OSError(19, "no log region on this board")
            self._log = self._log_device_factory()
        return self._log

    # --- links --------------------------------------------------------------
    async def serial_link(self) -> Any:
        self._check()
        if self._serial is None:
            raise OSError(19, "no serial port on this board")
        if self._serial_link is None:
            self._serial_link = self._serial.link()
        return self._serial_link

    async def ble_accept(self) -> Any:
        self._check()
        if self._ble is None:
            raise OSError(19, "no BLE on this board")
        link = await self._ble.accept()
        if not self.alive:  # the board reset while we waited
            link.close()
            raise BoardReset("this boot is over")
        self.ble_links = [x for x in self.ble_links if not x.closed] + [link]
        return link

    def ble_advertise(self, lock_id: Any, status: Any) -> None:
        self._check()
        self.hw.advertised = (lock_id, status)
        if self._ble is not None:
            self._ble.advertise(lock_id, status)
