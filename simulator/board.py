"""One simulated lock: flash, virtual hardware, ports, control, and a firmware
runner (composition: the board is the same whatever runs the firmware).

Runners (simulator/runner.py's interface): InProcessRunner (the firmware under
CPython in this loop, simulator/runner.py), MpyRunner (under MicroPython in a
child, simulator/mpyrunner.py) and ReplRunner() (an MpyRunner whose child is an
empty MicroPython board that mpremote deploys to, simulator/virtualboard.py).
`SimBoard(...)` is a Board with an InProcessRunner.

State lives in a directory (simulator/statedir.py: flash.bin, hardware.json,
.lock, control.sock).

In process, the firmware runs as `firmware.app.main(hal, stop_event)` in the
caller's asyncio loop. The board restarts it, on the same flash, after
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
from types import ModuleType
from typing import Any, Callable

from boards import sim as sim_board
from firmware import hal as hal_mod
from simulator import control as control_mod
from simulator import flash as flash_mod
from simulator.endpoints import BleServer, EndpointError, PtyEndpoint
from simulator.hal import SimHAL
from simulator.hardware import Clock, Hardware
from simulator.runner import (
    HANG_MAX_S,
    POLL_S,
    SAVE_PERIOD_S,
    STOP_GRACE_S,
    BoardError,
    InProcessRunner,
    Runner,
)
from simulator.statedir import StateDir
from simulator.timings import check_timings, timings_from_env

__all__ = ["Board", "SimBoard", "BoardError", "run_board", "POLL_S", "SAVE_PERIOD_S",
           "STOP_GRACE_S"]


class Board:
    def __init__(self, state_dir: str, *, runner: Runner, board: ModuleType = sim_board,
                 clock: Clock | None = None, auto_button: bool = False,
                 serial_link: str | None = None, serial: bool = True,
                 ble_host: str = "127.0.0.1", ble_port: int | None = 0,
                 rtc_drift_ppm: float | None = None,
                 control: bool = True, timings: dict[str, int] | None = None) -> None:
        self.runner = runner
        self.statedir = StateDir(state_dir, board)
        self.state_dir = self.statedir.path
        self.board = board
        self.clock = clock
        self.auto_button = auto_button
        self.serial_link_path = serial_link
        self.want_serial = serial
        self.ble_host = ble_host
        self.ble_port = ble_port
        self.rtc_drift_ppm = rtc_drift_ppm
        self.want_control = control
        self.control: control_mod.ControlServer | None = None
        # Overrides of the firmware's waits (simulator/timings.py), shared
        # with every boot's SimHAL; from LOCK_SIM_TIMINGS unless given.
        self._given_timings = timings
        self.timings: dict[str, int] = {}
        self.hw: Hardware | None = None
        self.pty: PtyEndpoint | None = None
        self.ble: BleServer | None = None
        self.boots: list[tuple[int, float]] = []  # (reset cause, clock time) per boot
        self.crashes = 0
        self._request: int | None = None  # a reset asked for, with its cause
        self._power_cut = False
        self._next_cause = hal_mod.RESET_POWER_ON
        runner.attach(self)

    @property
    def mode(self) -> str:
        return self.runner.mode

    @property
    def board_name(self) -> str:
        return str(self.board.NAME)

    def _hw(self) -> Hardware:
        if self.hw is None:
            raise BoardError("the board is not started")
        return self.hw

    @property
    def flash(self) -> flash_mod.FlashDevice | None:
        return self.statedir.flash

    def _flash(self) -> flash_mod.FlashDevice:
        return self.statedir.device()

    # --- paths ----------------------------------------------------------------
    @property
    def flash_path(self) -> str:
        return self.statedir.flash_path

    @property
    def hardware_path(self) -> str:
        return self.statedir.hardware_path

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
            self.timings = (check_timings(self._given_timings)
                            if self._given_timings is not None
                            else timings_from_env())
        except control_mod.ControlError as e:
            raise BoardError(str(e)) from None
        self.statedir.open()
        self.hw = Hardware.from_snapshot(self.statedir.hardware_snapshot(), self.board,
                                         self.clock, auto_button=self.auto_button,
                                         rtc_drift_ppm=self.rtc_drift_ppm)
        self.clock = self.hw.clock
        hw, loop = self.hw, asyncio.get_running_loop()
        # A scheduled press or release: checked when it is due (the clock may
        # be a test's, which jumps: the supervision's polls check too).
        hw.scheduler = lambda t: loop.call_later(max(0.0, t - hw.clock.now()), hw.check_edges)
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
        try:
            await self.runner.prepare()
        except BoardError:
            await self.close()
            raise
        self.save()

    def save(self) -> None:
        self.statedir.save(self.hw)

    async def close(self) -> None:
        """Save the state and close the ports (after run() has returned)."""
        await self.runner.close()
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
        self.statedir.close()

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
        self.runner.cut_power(after_writes, mode)

    def firmware_running(self) -> bool:
        return self.runner.running()

    def heap(self) -> dict:
        """control "heap": ask the firmware for a heap measurement."""
        return self.runner.heap()

    def timings_changed(self) -> None:
        """control "timings" changed them: the running firmware hears of it."""
        self.runner.timings_changed()

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
        """The firmware stops running (as a task in a busy loop) until the
        watchdog fires or `seconds` pass (see the runner)."""
        self.runner.hang(seconds)

    def state(self) -> dict:
        """The hardware as measured, and the board's own record (for control)."""
        hw = self._hw()
        out = hw.state()
        out["boots"] = [{"cause": c, "name": control_mod.RESET_NAMES.get(c, str(c)),
                         "time_s": t} for c, t in self.boots]
        out["crashes"] = self.crashes
        out["running"] = self.runner.running()
        out["flash"] = self.runner.flash_state()
        out["timings"] = dict(self.timings)
        out.update(self.runner.state_extra())
        return out

    def new_hal(self, cause: int, **kw: Any) -> SimHAL:
        """The board side of one boot's HAL (every runner's: the one mapping of
        the HAL onto the hardware models)."""
        store = self.statedir
        args: dict[str, Any] = dict(
            config_fs=store.mount_fs, log_device=lambda: store.region(self.board.LOG_REGION, "log"),
            serial=self.pty, ble=self.ble, on_reset=self.request_reset,
            timings=self.timings, erase_config=store.erase_fs)
        args.update(kw)
        return SimHAL(self._hw(), reset_cause=cause, **args)

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

    def energy_report(self) -> str:
        return self.hw.energy_report() if self.hw else ""


def SimBoard(state_dir: str, *, app: Callable[..., Any] | None = None,  # noqa: N802
             on_crash: str = "halt", **kw: Any) -> Board:
    """A board whose firmware runs under CPython in this process."""
    return Board(state_dir, runner=InProcessRunner(app, on_crash), **kw)


async def run_board(board: Board, stop: asyncio.Event,
                    on_ready: Callable[[Board], None] | None = None) -> None:
    """start, run until stop, close: the whole life of a simulator process."""
    await board.start()
    try:
        if on_ready is not None:
            on_ready(board)
        await board.run(stop)
    finally:
        await board.close()
