"""One simulated lock: flash, virtual hardware, ports, and the firmware.

State lives in a directory:
  flash.bin      the whole flash chip (board FLASH_SIZE, 4 MB), erased when new;
                 mmap'ed, so every program/erase is in the file at once.
  hardware.json  what survives a restart of the simulator: the RTC (reading,
                 drift), the battery's drawn charge, bolt position, door.
  .lock          flock: one simulator per state directory.
  control.sock   the control channel (simulator/control.py), owner-only, while
                 the board runs: tests and `lockctl sim` act on the hardware.

The firmware runs as `firmware.app.main(hal, stop_event)` in the caller's
asyncio loop. The board restarts it, on the same flash, after
  - a watchdog reset (the watchdog was started and not fed in time): WATCHDOG;
  - `hal.reset()`: SOFT;
  - a power cut (an injected flash PowerCut, or `power_cut()`): POWER_ON, and
    the RTC loses its time unless the board has a backup cell.
  `hang()` blocks the loop as a firmware task stuck in a busy loop would, until
  the watchdog fires.
A restart cancels every task that boot of the firmware created (they are
tracked through a context variable and a task factory), closes its BLE
connection, and gives the next boot a fresh SimHAL. The pty and the TCP port
stay the same across restarts, like a board's USB serial-JTAG port.

If `main` raises, the traceback goes to stderr and the board sits halted (as
a board drops to its REPL) until its watchdog, if started, resets it;
`on_crash="raise"` re-raises instead (for tests).

A restart of the simulator process is a power-on (reset cause POWER_ON) with
the RTC carried over from hardware.json, as if the board had a backup cell
while the simulator was stopped.
"""

from __future__ import annotations

import asyncio
import contextvars
import fcntl
import json
import os
import sys
import time
import traceback
import weakref
from types import ModuleType
from typing import Any, Callable

from boards import sim as sim_board
from firmware import hal as hal_mod
from simulator import control as control_mod
from simulator import flash as flash_mod
from simulator.endpoints import BleServer, EndpointError, PtyEndpoint
from simulator.hal import BoardReset, SimHAL
from simulator.hardware import Clock, Hardware
from simulator.lfs import LittleFsFs

POLL_S = 0.02  # supervision period (real time)
STOP_GRACE_S = 2.0  # how long the firmware gets to stop on its own
HANG_MAX_S = 120.0  # a hang with no watchdog to end it ends after this (real time)
SAVE_PERIOD_S = 10.0  # hardware.json is rewritten this often
MAX_TRACEBACKS = 3  # after this many crashes, one line each

_boot_var: contextvars.ContextVar = contextvars.ContextVar("simulator_boot", default=None)


class BoardError(Exception):
    """The board could not be set up (one-line message)."""


class _Boot:
    def __init__(self, number: int, cause: int, hal: SimHAL) -> None:
        self.number = number
        self.cause = cause
        self.hal = hal
        self.tasks: weakref.WeakSet = weakref.WeakSet()
        self.main: asyncio.Future = asyncio.get_running_loop().create_future()  # set at start
        self.stop = asyncio.Event()


def _default_app() -> Callable[..., Any]:
    from firmware import app  # imported late: the firmware is written in parallel

    return app.main


class SimBoard:
    def __init__(self, state_dir: str, *, board: ModuleType = sim_board,
                 clock: Clock | None = None, auto_button: bool = False,
                 serial_link: str | None = None, serial: bool = True,
                 ble_host: str = "127.0.0.1", ble_port: int | None = 0,
                 rtc_drift_ppm: float | None = None,
                 app: Callable[..., Any] | None = None, on_crash: str = "halt",
                 control: bool = True, timings: dict[str, int] | None = None) -> None:
        if on_crash not in ("halt", "raise"):
            raise ValueError("on_crash must be 'halt' or 'raise'")
        self.state_dir = os.path.abspath(state_dir)
        self.board = board
        self.clock = clock
        self.auto_button = auto_button
        self.serial_link_path = serial_link
        self.want_serial = serial
        self.ble_host = ble_host
        self.ble_port = ble_port
        self.rtc_drift_ppm = rtc_drift_ppm
        self.app = app
        self.on_crash = on_crash
        self.want_control = control
        self.control: control_mod.ControlServer | None = None
        # Overrides of the firmware's waits (simulator/control.py TIMINGS), shared
        # with every boot's SimHAL; from LOCK_SIM_TIMINGS unless given.
        self._given_timings = timings
        self.timings: dict[str, int] = {}
        self.hw: Hardware | None = None
        self.flash: flash_mod.FlashDevice | None = None
        self.pty: PtyEndpoint | None = None
        self.ble: BleServer | None = None
        self.boots: list[tuple[int, float]] = []  # (reset cause, clock time) per boot
        self.crashes = 0
        self.boot: _Boot | None = None
        self._lockfile: Any = None
        self._request: int | None = None  # a reset asked for, with its cause
        self._power_cut = False
        self._next_cause = hal_mod.RESET_POWER_ON

    def _hw(self) -> Hardware:
        if self.hw is None:
            raise BoardError("the board is not started")
        return self.hw

    def _flash(self) -> flash_mod.FlashDevice:
        if self.flash is None:
            raise BoardError("the board is not started")
        return self.flash

    # --- paths ----------------------------------------------------------------
    @property
    def flash_path(self) -> str:
        return os.path.join(self.state_dir, "flash.bin")

    @property
    def hardware_path(self) -> str:
        return os.path.join(self.state_dir, "hardware.json")

    @property
    def serial_path(self) -> str | None:
        return self.pty.slave_path if self.pty else None

    @property
    def ble_address(self) -> str | None:
        return self.ble.address if self.ble else None

    @property
    def control_path(self) -> str:
        return control_mod.socket_path(self.state_dir)

    # --- set-up -----------------------------------------------------------------
    async def start(self) -> None:
        """Open the state, the flash and the ports (the firmware starts in run())."""
        try:
            self.timings = (control_mod.check_timings(self._given_timings)
                            if self._given_timings is not None
                            else control_mod.timings_from_env())
        except control_mod.ControlError as e:
            raise BoardError(str(e)) from None
        os.makedirs(self.state_dir, exist_ok=True)
        self._lockfile = open(os.path.join(self.state_dir, ".lock"), "w")
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lockfile.close()
            self._lockfile = None
            raise BoardError(f"state directory {self.state_dir} is in use by another "
                             "simulator") from None
        b = self.board
        try:
            self.flash = flash_mod.FlashDevice.open(self.flash_path, b.FLASH_SIZE,
                                                    b.FLASH_BLOCK_SIZE)
        except flash_mod.FlashError as e:
            self._unlock()
            raise BoardError(f"{self.flash_path}: {e}") from None
        snap = None
        if os.path.exists(self.hardware_path):
            try:
                with open(self.hardware_path) as f:
                    snap = json.load(f)
            except (OSError, ValueError) as e:
                print(f"simulator: ignoring unreadable {self.hardware_path}: {e}",
                      file=sys.stderr)
        self.hw = Hardware.from_snapshot(snap, b, self.clock, auto_button=self.auto_button,
                                         rtc_drift_ppm=self.rtc_drift_ppm)
        self.clock = self.hw.clock
        try:
            if self.want_serial:
                self.pty = PtyEndpoint(self.serial_link_path)
                self.pty.open()
            if self.ble_port is not None:
                self.ble = BleServer(self.ble_host, self.ble_port)
                await self.ble.start()
        except EndpointError as e:
            await self.close()
            raise BoardError(str(e)) from None
        if self.want_control:
            server = control_mod.ControlServer(self, self.control_path)
            try:
                await server.start()
            except OSError as e:
                await self.close()
                raise BoardError(f"cannot create {self.control_path}: "
                                 f"{e.strerror or e}") from None
            self.control = server
        self.save()

    def _unlock(self) -> None:
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    def save(self) -> None:
        if self.flash is not None:
            self.flash.save()
        if self.hw is not None:
            tmp = self.hardware_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.hw.snapshot(), f, indent=1)
            os.replace(tmp, self.hardware_path)

    async def close(self) -> None:
        """Save the state and close the ports (after run() has returned)."""
        if self.control is not None:
            await self.control.close()
            self.control = None
        if self.hw is not None and self.flash is not None:
            self.save()
        if self.ble is not None:
            await self.ble.close()
            self.ble = None
        if self.pty is not None:
            self.pty.close()
            self.pty = None
        if self.flash is not None:
            self.flash.close()
            self.flash = None
        self._unlock()

    # --- storage for the firmware ---------------------------------------------
    def _region(self, region: tuple[int, int], name: str) -> flash_mod.BlockDevice:
        off, size = region
        bs = self.board.FLASH_BLOCK_SIZE
        return flash_mod.BlockDevice(self._flash(), off // bs, size // bs, name=name)

    def _mount_fs(self) -> Any:
        bdev = self._region(self.board.FS_REGION, "fs")
        try:
            return LittleFsFs(bdev)
        except OSError:
            off, size = self.board.FS_REGION
            if bytes(self._flash().data[off:off + size]).count(0xFF) != size:
                raise  # a damaged filesystem is the firmware's to handle
            return LittleFsFs.mkfs(bdev)  # a new board: format it

    def _erase_fs(self) -> None:
        """Factory reset: erase the whole configuration region (block by block,
        through the flash model, so writes are counted and cuts still apply)."""
        bdev = self._region(self.board.FS_REGION, "fs")
        for block in range(bdev.block_count):
            bdev.ioctl(6, block)

    # --- resets -----------------------------------------------------------------
    def request_reset(self, cause: int = hal_mod.RESET_SOFT) -> None:
        self._request = cause

    def power_cut(self) -> None:
        """Cut the power now; it comes back at once (a POWER_ON boot)."""
        self._power_cut = True

    def cut_power(self, after_writes: int | None = None, mode: str = "lost") -> None:
        """Cut the power now, or during the flash's `after_writes`-th next
        program/erase (0: the next), damaging that write as `mode` says."""
        if after_writes is None:
            self.power_cut()
            return
        try:
            self._flash().cut_at(after_writes, mode)
        except flash_mod.FlashError as e:
            raise control_mod.ControlError(str(e)) from None

    def firmware_running(self) -> bool:
        return self.boot is not None and not self.boot.main.done()

    def hang_limit(self, seconds: float | None = None) -> float:
        """How long (real seconds) a hang asked for now would last at most."""
        if not self.firmware_running():
            raise control_mod.ControlError("no firmware is running")
        if seconds is not None:
            return float(seconds)
        left = self._hw().watchdog.remaining_s()
        if left is None:
            raise control_mod.ControlError("the watchdog is not running: give seconds")
        return min(HANG_MAX_S, max(0.0, left) + 1.0)

    def hang(self, seconds: float) -> None:
        """A task of the running firmware stops yielding: the whole loop (the
        firmware, its ports, this board's supervision) stands still, as a CPU
        in a busy loop does, until the watchdog fires or `seconds` pass."""
        boot = self.boot
        if boot is None:
            return
        hw = self._hw()

        async def stuck() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not hw.watchdog.expired():
                time.sleep(0.002)

        ctx = contextvars.copy_context()
        ctx.run(_boot_var.set, boot)
        asyncio.get_running_loop().create_task(stuck(), context=ctx)

    def state(self) -> dict:
        """The hardware as measured, and the board's own record (for control)."""
        hw = self._hw()
        out = hw.state()
        out["boots"] = [{"cause": c, "name": control_mod.RESET_NAMES.get(c, str(c)),
                         "time_s": t} for c, t in self.boots]
        out["crashes"] = self.crashes
        out["running"] = self.boot is not None and not self.boot.main.done()
        fl = self.flash
        out["flash"] = ({"powered": fl.powered, "cut_pending": fl.cut_pending, "ops": fl.ops,
                         "cuts": fl.cuts} if fl is not None else None)
        out["timings"] = dict(self.timings)
        return out

    def _new_hal(self, cause: int) -> SimHAL:
        return SimHAL(self._hw(), reset_cause=cause, config_fs=self._mount_fs,
                      log_device=lambda: self._region(self.board.LOG_REGION, "log"),
                      serial=self.pty, ble=self.ble, on_reset=self.request_reset,
                      timings=self.timings, erase_config=self._erase_fs)

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

    async def _start_boot(self, cause: int) -> _Boot:
        hal = self._new_hal(cause)
        boot = _Boot(len(self.boots) + 1, cause, hal)
        self.boots.append((cause, self._hw().clock.now()))
        main = self.app if self.app is not None else _default_app()
        token = _boot_var.set(boot)
        try:
            boot.main = asyncio.ensure_future(main(hal, boot.stop))
        finally:
            _boot_var.reset(token)
        boot.tasks.add(boot.main)
        self.boot = boot
        return boot

    async def _end_boot(self, boot: _Boot, graceful: bool) -> None:
        if graceful and not boot.main.done():
            boot.stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(boot.main), STOP_GRACE_S)
            except BaseException:  # noqa: BLE001 - whatever it ended with, it ended
                pass
        boot.hal.kill()
        if self.ble is not None:
            self.ble.drop_active()
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
        self.crashes += 1
        if exc is None:
            print("simulator: firmware main returned; board halted", file=sys.stderr)
        elif self.crashes <= MAX_TRACEBACKS:
            print("simulator: firmware crashed; board halted until its watchdog resets it",
                  file=sys.stderr)
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        else:
            print(f"simulator: firmware crashed again: {exc!r}", file=sys.stderr)
        sys.stderr.flush()
        return exc

    async def _supervise(self, boot: _Boot, stop: asyncio.Event) -> str:
        """Wait for the end of this boot: 'stop', 'watchdog', 'reset', 'power'."""
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
            if not halted and boot.main.done():
                if self._request is not None or not self._flash().powered:
                    continue
                exc = self._report_crash(boot)
                if self.on_crash == "raise" and exc is not None:
                    raise exc
                halted = True
                await self._end_boot(boot, graceful=False)
            if loop.time() >= next_save:
                next_save = loop.time() + SAVE_PERIOD_S
                self.save()
            await asyncio.sleep(POLL_S)

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
        loop = asyncio.get_running_loop()
        prev_factory = loop.get_task_factory()
        prev_handler = loop.get_exception_handler()
        loop.set_task_factory(self._task_factory(prev_factory))
        loop.set_exception_handler(self._exception_handler(prev_handler))
        try:
            cause = self._next_cause
            while True:
                self._request = None
                boot = await self._start_boot(cause)
                try:
                    why = await self._supervise(boot, stop)
                except BaseException:
                    await self._end_boot(boot, graceful=False)
                    raise
                await self._end_boot(boot, graceful=(why == "stop"))
                if why == "stop":
                    break
                if why == "power":
                    self._flash().reboot()
                cause = self._restart_cause(why)
        finally:
            loop.set_task_factory(prev_factory)
            loop.set_exception_handler(prev_handler)
            self.boot = None
            self.save()

    def energy_report(self) -> str:
        return self.hw.energy_report() if self.hw else ""


async def run_board(board: SimBoard, stop: asyncio.Event,
                    on_ready: Callable[[SimBoard], None] | None = None) -> None:
    """start, run until stop, close: the whole life of a simulator process."""
    await board.start()
    try:
        if on_ready is not None:
            on_ready(board)
        await board.run(stop)
    finally:
        await board.close()
