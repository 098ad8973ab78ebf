"""Firmware runners: what runs the firmware on a simulator Board
(simulator/board.py). The board owns the hardware, flash, endpoints and
control; a runner starts and ends one boot of the firmware at a time.

`Runner` is the interface; `InProcessRunner` runs `firmware.app.main(hal,
stop_event)` under CPython in the board's own asyncio loop. The MicroPython
runner is simulator/mpyrunner.py (a child interpreter), with the firmware in
it (simulator/mpyimage.py) or an empty board behind its REPL
(simulator/virtualboard.py).

In process, a restart cancels every task that boot of the firmware created
(they are tracked through a context variable and a task factory) and gives
the next boot a fresh SimHAL; `hang()` blocks the loop as a firmware task
stuck in a busy loop would, until the watchdog fires.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import time
import traceback
import weakref
from typing import TYPE_CHECKING, Any, Callable

from firmware import hal as hal_mod
from simulator import control as control_mod
from simulator import flash as flash_mod
from simulator.hal import BoardReset, SimHAL

if TYPE_CHECKING:  # pragma: no cover
    from simulator.board import Board

POLL_S = 0.02  # supervision period (real time)
STOP_GRACE_S = 2.0  # how long the firmware gets to stop on its own
HANG_MAX_S = 120.0  # a hang with no watchdog to end it ends after this (real time)
SAVE_PERIOD_S = 10.0  # hardware.json is rewritten this often
MAX_TRACEBACKS = 3  # after this many crashes, one line each


class BoardError(Exception):
    """The board could not be set up (one-line message)."""


class Runner:
    """What a Board needs from whatever runs its firmware."""

    mode = "abstract"
    board: Board

    def attach(self, board: Board) -> None:
        self.board = board

    async def prepare(self) -> None:
        """Once, after the board has started (raises BoardError)."""

    async def begin(self) -> None:
        """Board.run starts."""

    async def finish(self) -> None:
        """Board.run ends (after the last boot)."""

    async def start_boot(self, cause: int) -> None:
        raise NotImplementedError

    async def check(self) -> str | None:
        """Polled while a boot runs: None, "halted" (the firmware ended by
        itself and the board waits for its watchdog), or a reason to boot again."""
        return None

    async def end_boot(self, graceful: bool) -> None:
        raise NotImplementedError

    async def after_boot(self, why: str) -> None:
        """A boot has ended (`why`), before the next starts."""

    async def close(self) -> None:
        """The board closes."""

    def running(self) -> bool:
        raise NotImplementedError

    def cut_power(self, after_writes: int, mode: str) -> None:
        raise NotImplementedError

    def flash_state(self) -> dict:
        raise NotImplementedError

    def hang(self, seconds: float) -> None:
        raise NotImplementedError

    def heap(self) -> dict:
        raise control_mod.ControlError("the firmware's heap is measured under MicroPython only")

    def timings_changed(self) -> None:
        """The board's timing overrides changed (an event for the firmware)."""

    def state_extra(self) -> dict:
        return {}


_boot_var: contextvars.ContextVar = contextvars.ContextVar("simulator_boot", default=None)


class _Boot:
    def __init__(self, number: int, cause: int, hal: SimHAL) -> None:
        self.number = number
        self.cause = cause
        self.hal = hal
        self.tasks: weakref.WeakSet = weakref.WeakSet()
        self.main: asyncio.Future = asyncio.get_running_loop().create_future()  # set at start
        self.stop = asyncio.Event()


def _default_app() -> Callable[..., Any]:
    from firmware import app

    return app.main


class InProcessRunner(Runner):
    """The firmware under CPython, in the board's loop. `on_crash="raise"`
    re-raises what main raised (for tests) instead of halting the board."""

    mode = "cpython"

    def __init__(self, app: Callable[..., Any] | None = None, on_crash: str = "halt") -> None:
        if on_crash not in ("halt", "raise"):
            raise ValueError("on_crash must be 'halt' or 'raise'")
        self.app = app
        self.on_crash = on_crash
        self.boot: _Boot | None = None
        self._prev_factory: Any = None
        self._prev_handler: Any = None

    async def begin(self) -> None:
        loop = asyncio.get_running_loop()
        self._prev_factory = loop.get_task_factory()
        self._prev_handler = loop.get_exception_handler()
        loop.set_task_factory(self._task_factory(self._prev_factory))
        loop.set_exception_handler(self._exception_handler(self._prev_handler))

    async def finish(self) -> None:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(self._prev_factory)
        loop.set_exception_handler(self._prev_handler)
        self.boot = None

    def running(self) -> bool:
        return self.boot is not None and not self.boot.main.done()

    def timings_changed(self) -> None:
        if self.boot is not None:
            self.boot.hal.post_event(hal_mod.EVENT_TIMINGS, True)

    def cut_power(self, after_writes: int, mode: str) -> None:
        try:
            self.board._flash().cut_at(after_writes, mode)
        except flash_mod.FlashError as e:
            raise control_mod.ControlError(str(e)) from None

    def flash_state(self) -> dict:
        fl = self.board.flash
        return ({"powered": fl.powered, "cut_pending": fl.cut_pending, "ops": fl.ops,
                 "cuts": fl.cuts} if fl is not None else {})

    def hang(self, seconds: float) -> None:
        boot = self.boot
        if boot is None:
            return
        hw = self.board._hw()

        async def stuck() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not hw.watchdog.expired():
                time.sleep(0.002)

        ctx = contextvars.copy_context()
        ctx.run(_boot_var.set, boot)
        asyncio.get_running_loop().create_task(stuck(), context=ctx)

    def _task_factory(self, prev: Any) -> Callable[..., asyncio.Task]:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, context: Any = None,
                    **kw: Any) -> asyncio.Task:
            boot = (context.get(_boot_var) if context is not None else _boot_var.get())
            if context is not None:
                kw["context"] = context
            if prev is not None:
                task = prev(loop, coro, **kw)
            else:
                task = asyncio.Task(coro, loop=loop, **kw)
            if boot is not None:
                boot.tasks.add(task)
            return task
        return factory

    def _exception_handler(self, prev: Any) -> Callable[..., None]:
        def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
            exc = context.get("exception")
            if isinstance(exc, (BoardReset, flash_mod.PowerCut)):
                return  # the board reset under this task: expected
            if prev is not None:
                prev(loop, context)
            else:
                loop.default_exception_handler(context)
        return handler

    async def start_boot(self, cause: int) -> None:
        hal = self.board.new_hal(cause)
        boot = _Boot(len(self.board.boots), cause, hal)
        main = self.app if self.app is not None else _default_app()
        token = _boot_var.set(boot)
        try:
            boot.main = asyncio.ensure_future(main(hal, boot.stop))
        finally:
            _boot_var.reset(token)
        boot.tasks.add(boot.main)
        self.boot = boot

    async def check(self) -> str | None:
        boot = self.boot
        if boot is None or not boot.main.done():
            return None
        if self.board.ending() or not self.board._flash().powered:
            return None  # the board is about to restart it
        exc = self._report_crash(boot)
        if self.on_crash == "raise" and exc is not None:
            raise exc
        await self.end_boot(graceful=False)
        return "halted"

    async def end_boot(self, graceful: bool) -> None:
        boot = self.boot
        if boot is None:
            return
        if graceful and not boot.main.done():
            boot.stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(boot.main), STOP_GRACE_S)
            except BaseException:  # noqa: BLE001 - whatever it ended with, it ended
                pass
        boot.hal.kill()
        if self.board.ble is not None:
            self.board.ble.drop_active()
        me = asyncio.current_task()
        pending = [t for t in list(boot.tasks) if t is not me]
        for t in pending:
            if not t.done():
                t.cancel()
        if pending:
            await asyncio.wait(pending, timeout=STOP_GRACE_S)
        for t in pending:
            if t.done() and not t.cancelled():
                t.exception()  # retrieved: no "never retrieved" noise
            elif not t.done():
                print(f"simulator: firmware task {t.get_name()} ignored cancellation",
                      file=sys.stderr)

    def _report_crash(self, boot: _Boot) -> BaseException | None:
        t = boot.main
        exc = None if t.cancelled() else t.exception()
        if isinstance(exc, (BoardReset, flash_mod.PowerCut)):
            return None
        board = self.board
        board.crashes += 1
        if exc is None:
            print("simulator: firmware main returned; board halted", file=sys.stderr)
        elif board.crashes <= MAX_TRACEBACKS:
            print("simulator: firmware crashed; board halted until its watchdog resets it",
                  file=sys.stderr)
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        else:
            print(f"simulator: firmware crashed again: {exc!r}", file=sys.stderr)
        sys.stderr.flush()
        return exc
