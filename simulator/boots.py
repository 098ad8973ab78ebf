"""The boot cycle of a simulated board (simulator/board.py): run the firmware
through its runner, watch for the end of each boot (stop, watchdog, reset,
power cut, or the runner's own reason), do the hardware's side of the restart
and start the next boot with the reset cause a board would report."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from firmware import hal as hal_mod
from simulator.runner import POLL_S, SAVE_PERIOD_S

if TYPE_CHECKING:
    from simulator.flash import FlashDevice
    from simulator.hardware import Hardware


class BootCycle:
    """A mixin of Board: the attributes below are the board's."""

    runner: Any
    hw: Any
    boots: list
    _request: int | None
    _power_cut: bool
    _next_cause: int

    if TYPE_CHECKING:  # the board's own
        def _hw(self) -> Hardware: ...
        def _flash(self) -> FlashDevice: ...
        def save(self) -> None: ...
        async def start(self) -> None: ...

    async def _supervise(self, stop: asyncio.Event) -> str:
        """Wait for the end of this boot: 'stop', 'watchdog', 'reset', 'power',
        or the runner's own reason (a soft reboot of the REPL board)."""
        loop = asyncio.get_running_loop()
        halted = False
        next_save = loop.time() + SAVE_PERIOD_S
        while True:
            if stop.is_set():
                return "stop"
            if self._power_cut or not self._flash().powered:
                return "power"
            if self._request is not None:
                return "reset"
            if self._hw().watchdog.expired():
                return "watchdog"
            self._hw().check_edges()
            if not halted:
                why = await self.runner.check()
                if why == "halted":
                    halted = True
                elif why is not None:
                    return why
            if loop.time() >= next_save:
                next_save = loop.time() + SAVE_PERIOD_S
                self.save()
            await asyncio.sleep(POLL_S)

    def ending(self) -> bool:
        """A reset or power cut has been asked for (the boot is ending)."""
        return self._request is not None or self._power_cut

    def _restart_cause(self, why: str) -> int:
        """The hardware side of a restart, and the reset cause the next boot sees."""
        request, self._request = self._request, None
        if why == "power":
            self._power_cut = False
            self._hw().power_loss()
            return hal_mod.RESET_POWER_ON
        self._hw().reset()
        if why == "watchdog":
            return hal_mod.RESET_WATCHDOG
        return request if request is not None else hal_mod.RESET_SOFT

    async def run(self, stop: asyncio.Event) -> None:
        """Run the firmware until `stop` is set, restarting it after resets."""
        if self.hw is None:
            await self.start()
        runner = self.runner
        await runner.begin()
        try:
            cause = self._next_cause
            while True:
                self._request = None
                self._power_cut = False
                self.boots.append((cause, self._hw().clock.now()))
                await runner.start_boot(cause)
                try:
                    why = await self._supervise(stop)
                except BaseException:
                    await runner.end_boot(graceful=False)
                    raise
                await runner.end_boot(graceful=(why == "stop"))
                if why == "stop":
                    break
                await runner.after_boot(why)
                if why == "power":
                    self._flash().reboot()
                cause = self._restart_cause(why)
        finally:
            await runner.finish()
            self.save()
