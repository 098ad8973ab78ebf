# The HAL for the MicroPython unix port: the lock's firmware as the child
# process of `python -m simulator --mpy`, and on the virtual board
# (`python -m simulator --virtual-board`). MicroPython code, in the port code
# of those boards, not in the lock's image (firmware/ holds only what a board runs).
#
# The board around the firmware is the simulator process (simulator/mpyport.py),
# reached over loopback TCP:
#   - control and events: the HAL boundary (simulator/mpy/proxy.py). Every
#     method of firmware.hal.BOARD_CALLS is a call to the parent, made by
#     proxy.bind() from that one declaration: the bolt, motor, door, button,
#     LED, battery, RTC, watchdog and power account live in the parent's
#     hardware models (simulator/hardware.py, through simulator/hal.py's
#     SimHAL, the same code as under CPython), so --auto-button, RTC drift,
#     the energy account and hardware.json are the same as under CPython. A
#     call blocks the interpreter for one loopback round trip (tens of
#     microseconds). Sensor edges come as events (next_event).
#   - serial: a byte stream the parent joins to its pty (the USB serial port).
#     When the host closes the port the parent closes the stream: recv() gives
#     b"" once (the session ends) and the next recv() connects again.
#   - ble: one connection per BLE central; the parent answers with one byte
#     (0x01) once a central has connected to its BLE socket, then a length
#     byte and the central's device address, then joins the two.
# So on the unix port the lock's serial port is NOT the interpreter's stdin:
# stdin/stdout stay the REPL (virtual board) or the log (--mpy), and
# micropython.kbd_intr(-1) is not needed for the frames. Ctrl-C reaches the
# unix port only as SIGINT from a terminal with ISIG set; the simulator keeps
# its terminals raw. (firmware/main.py still calls kbd_intr(-1) in production.)
#
# Flash: the state directory's flash.bin (the whole chip, boards/sim.py layout,
# the same file and regions as the CPython simulator), opened by the port code
# that starts the interpreter (`unixport.flash`) and used through the one flash
# model (simulator/mpy/flash.py, FileStore): NOR semantics, with power-cut
# injection at the N-th program/erase (`cut` in the port's configuration:
# {"after": N, "mode": "lost"|"torn"|"bits"|"erase", "seed": S}, the same
# damage for the same seed as under CPython). `Partition` gives a region of it with
# MicroPython's extended block-device protocol, for vfs.VfsLfs2 (the
# configuration store) and for the raw event log, as esp32.Partition does.
#
# The port code registers a module `unixport` before the firmware starts:
#   unixport.config  dict: "control" (TCP port), "serial", "ble" (TCP ports or
#                    None), "reset_cause", "fs" ("region": littlefs on the FS
#                    region, used unmounted as the CPython simulator does;
#                    "root": the FS region is mounted at / and holds the
#                    deployed firmware too, as on an ESP32), "cut", "flash_size"
#   unixport.flash   the open flash.bin file
#   unixport.make_hal(board)  this HAL (what firmware.main calls on the unix port)
# A hal.reset(), a watchdog reset or a power cut ends this process: the parent
# kills it and starts the next boot with the right reset cause.
#
# Heap (a measurement for the simulator's tests, tools/fuzz.py): the directive
# "!heap" asks for one (the board sends "wake" on the event stream with it);
# right after the wake-up that fetched it, in the event task (or at a
# watchdog feed, whichever comes first) the HAL runs gc.collect() and answers
# "heap FREE ALLOC" (gc.mem_free(), gc.mem_alloc()); control "heap" and
# "state" show the last one (simulator/mpyrunner.py). Flash figures: after
# each program or erase the HAL reports it ("flash 1 PENDING"), so the
# board's "state" shows real figures (the virtual board's root filesystem
# reports its own: simulator/mpy/vboard.py).
import asyncio
import gc
import os
import time

from firmware import hal as hal_mod
from firmware.fs import Fs, mount_lfs
from simulator.mpy import proxy
from simulator.mpy.flash import Flash, Partition
from simulator.mpy.stores import FileStore

HOST = "127.0.0.1"
CHUNK = 244  # bytes per read from a link (a GATT write of ATT_MTU - 3)
BLE_CONNECTED = b"\x01"


async def _open(port, kind, token):
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(("%s %s\n" % (kind, token)).encode())
    await writer.drain()
    return reader, writer


def _close(writer):
    try:
        writer.close()
        # MicroPython's Stream.close() does nothing: the socket closes in
        # wait_closed(). Close it now, so the peer sees the end at once.
        sock = getattr(writer, "s", None)
        if sock is not None:
            sock.close()
    except OSError:
        pass


class StreamLink(hal_mod.Link):
    """One TCP stream to the parent as a firmware Link."""

    def __init__(self, reader, writer):
        self.reader = reader
        self.writer = writer
        self.closed = False
        self.central = ""  # a BLE central's device address

    async def recv(self):
        if self.closed:
            return b""
        try:
            data = await self.reader.read(CHUNK)
        except OSError:
            data = b""
        if not data:
            self.close()
        return data

    async def send(self, data):
        if self.closed:
            raise OSError(104)  # ECONNRESET: the peer has gone
        self.writer.write(data)
        await self.writer.drain()

    def close(self):
        if not self.closed:
            self.closed = True
            _close(self.writer)


class SerialLink(hal_mod.Link):
    """The USB serial port: a stream per host session, reconnected on demand."""

    def __init__(self, port, token):
        self.port = port
        self.token = token
        self.link = None

    async def _open(self):
        if self.link is None or self.link.closed:
            reader, writer = await _open(self.port, "serial", self.token)
            self.link = StreamLink(reader, writer)
        return self.link

    async def recv(self):
        link = await self._open()
        return await link.recv()

    async def send(self, data):
        link = await self._open()
        try:
            await link.send(data)
        except OSError:
            link.close()  # no host: dropped, as a USB CDC port drops it

    def close(self):
        if self.link is not None:
            self.link.close()


class _Flash(Flash):
    """The flash model, reporting its operation count to the board."""

    def __init__(self, report, *args, **kw):
        self.report = report
        super().__init__(*args, **kw)

    def count(self, kind, region, n):
        if kind != "read":
            self.report(1, self.cut_pending)


class UnixHAL(hal_mod.HAL):
    board_name = "unix"

    def __init__(self, board, port=None):
        if port is None:
            import unixport  # type: ignore[import-not-found]  # made by the port code

            port = unixport
        cfg = port.config
        # What the HAL needs from the board file, copied (firmware.main then
        # drops the board module to give its heap back).
        self.board_name = board.NAME
        self.fs_region = board.FS_REGION
        self.log_region = board.LOG_REGION
        batt = getattr(board, "BATTERY", None)
        if batt:
            self.battery_low_mv = batt["low_mv"]
            self.battery_critical_mv = batt["critical_mv"]
        self.config = cfg
        self._cause = cfg.get("reset_cause", hal_mod.RESET_POWER_ON)
        self.timings = cfg.get("timings") or {}  # overrides of the firmware's waits
        self.control = proxy.Control(cfg["control"], cfg["token"], self._directive)
        self.events = proxy.EventStream(cfg["control"], cfg["token"], self.control,
                                        self._measure_heap)
        caps = getattr(board, "CAPABILITIES", None) or {}
        self.watchdog_max_ms = caps.get("watchdog_max_ms")
        self.flash = _Flash(self._flash_report, FileStore(port.flash), board.FLASH_SIZE,
                            board.FLASH_BLOCK_SIZE, cut=cfg.get("cut"), on_cut=self._power_cut)
        self._fs = None
        self._log = None
        self._serial = None
        self._t0 = time.ticks_ms()
        self._ms = 0
        self._heap_asked = False
        self.control.call("boot", (self._cause,))

    def _directive(self, line):
        what, _, arg = line.partition(" ")
        if what == "cut":
            n, mode, seed = arg.split()
            self.flash.cut_at(int(n), mode, int(seed))
        elif what == "timings":
            import json

            self.timings = json.loads(arg)
            self.events.local.append((hal_mod.EVENT_TIMINGS, True))  # the app re-arms
        elif what == "heap":
            self._heap_asked = True  # measured after the wake-up that brought it
        elif what == "stop":
            self.control.dead = True
            raise SystemExit(0)

    def close_repl(self):
        """Production: tell the board the REPL is closed (no escape to it)."""
        self.control.call("repl", ("closed",))

    def _power_cut(self):
        self.control.last_words("cut")

    def _flash_report(self, ops, pending):
        # From inside a flash operation: directives wait for the next call.
        self.control.call("flash", (ops, pending), defer=True)

    # --- time (the RTC and the rest of BOARD_CALLS: proxy.bind, below) ---
    def ticks_ms(self):
        # Milliseconds since this boot, never wrapping (time.ticks_ms wraps
        # every 2**30 ms, and the firmware subtracts plain numbers).
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._t0)
        self._t0 = now
        return self._ms

    # --- events and supervision ----------------------------------------------
    async def next_event(self):
        return await self.events.next()

    def watchdog_feed(self):
        self.control.call("watchdog_feed")
        self._measure_heap()

    def _measure_heap(self):
        # In the event task (or the watchdog's), between other tasks' steps.
        if self._heap_asked:
            self._heap_asked = False
            gc.collect()
            self.control.call("heap", (gc.mem_free(), gc.mem_alloc()))

    def reset_cause(self):
        return self._cause

    def reset(self):
        self.control.last_words("reset")

    def random_bytes(self, n):
        return os.urandom(n)

    # --- storage --------------------------------------------------------------
    def _region(self, region):
        return Partition(self.flash, region[0], region[1])

    def config_fs(self):
        if self._fs is None:
            if self.config.get("fs") == "root":
                self._fs = Fs()  # littlefs mounted at /, as on the board
            else:
                bdev = self._region(self.fs_region)
                try:
                    self._fs = mount_lfs(bdev)
                except OSError:
                    if not bdev.erased():
                        raise  # a damaged filesystem is the firmware's to handle
                    self._fs = mount_lfs(bdev, mkfs=True)  # a new board: format it
        return self._fs

    def erase_config_storage(self):
        """Factory reset: erase every block of the configuration region (the
        next boot formats it). On the virtual board that region is also the
        board's own filesystem, with the deployed firmware in it: there the
        lock deletes its files instead (NotImplementedError), as on a board
        flashed with mpremote; a frozen production image has nothing to lose."""
        if self.config.get("fs") == "root":
            raise NotImplementedError
        bdev = self._region(self.fs_region)
        self._fs = None  # the mounted filesystem goes with its blocks
        for block in range(bdev.block_count):
            bdev.ioctl(6, block)

    def log_device(self):
        if self._log is None:
            self._log = self._region(self.log_region)
        return self._log

    # --- links ----------------------------------------------------------------
    async def serial_link(self):
        if self._serial is None:
            port = self.config.get("serial")
            if not port:
                raise OSError(19)
            self._serial = SerialLink(port, self.config["token"])
        return self._serial

    async def ble_accept(self):
        port = self.config.get("ble")
        if not port:
            raise OSError(19)
        while True:
            reader, writer = await _open(port, "ble", self.config["token"])
            first = await reader.read(1)  # the parent answers once a central is there
            if first == BLE_CONNECTED:
                n = (await reader.readexactly(1))[0]
                link = StreamLink(reader, writer)
                link.central = (await reader.readexactly(n)).decode() if n else ""
                return link
            _close(writer)
            await asyncio.sleep(0.1)


proxy.bind(UnixHAL)
