# The HAL for real boards: firmware.hal.HAL over MicroPython's `machine`,
# `aioble`/`bluetooth` and the port's raw flash (`esp32.Partition` on the
# ESP32 port, `rp2.Flash` on the rp2 port), configured by a board module:
#
#     import boards.esp32c3_devkit as board       # or boards.pico_w
#     hal = MachineHAL(board)                       # port = sys.platform
#
# What it reads from the board module: NAME, PINS (motor_in1, motor_in2,
# motor_sleep, bolt_retracted, bolt_thrown, door_closed, button, led, buzzer,
# battery_adc), ACTIVE_LOW, LED_KIND ("ws2812" or "plain"), BATTERY_DIVIDER,
# BATTERY (low_mv, critical_mv), FLASH_SIZE, FLASH_BLOCK_SIZE, FS_REGION,
# LOG_REGION, CAPABILITIES (watchdog_max_ms); optional: LOG_PARTITION (ESP32 label, default "eventlog"),
# ADC_VREF_MV (rp2 ADC reference, default 3300), ADV_INTERVAL_MS (default 1000,
# the idle interval: firmware/radio.py advertises faster for a while after a
# door or button event), PINS["battery_en"] with DIVIDER_SETTLE_US (a switched
# divider, on only inside battery_mv()), FS_MOUNT (default "/").
#
# Sensors: the door and button pins interrupt on both edges (Pin.irq, soft
# IRQ: scheduled, so it may set an asyncio.ThreadSafeFlag); next_event()
# waits for the flag, lets the contact settle (DEBOUNCE_MS), reads the pins
# with the debounced read and returns each change of level as an event. A
# bounce that ends where it began is no event. Nothing polls.
#
# Flash layout (nothing here formats or repartitions anything; a layout that
# does not match the board file is refused with OSError, never written over):
#
# ESP32 (4 MB): MicroPython's _boot.py mounts the data partition labelled
#   "vfs" (littlefs) at "/"; that is the config filesystem. The event log needs
#   a raw partition of its own, so the board is flashed with this partition
#   table (gen_esp32part.py -> partition-table.bin at 0x8000, with esptool;
#   the stock MicroPython app image runs unchanged, and _boot.py formats the
#   smaller "vfs" on first boot):
#       # Name,   Type, SubType,   Offset,   Size,     Flags
#       nvs,      data, nvs,       0x9000,   0x6000,
#       phy_init, data, phy,       0xf000,   0x1000,
#       factory,  app,  factory,   0x10000,  0x1F0000,
#       vfs,      data, fat,       0x200000, 0x1C0000,
#       eventlog, data, undefined, 0x3C0000, 0x40000,
#   (FS_REGION and LOG_REGION of boards/esp32c3_devkit.py; the log is found
#   with esp32.Partition.find(TYPE_DATA, label="eventlog") and its address and
#   size are checked against LOG_REGION.)
#
# rp2 (Pico W, 2 MB): the port's storage is the last 848 KB of flash
#   (MICROPY_HW_FLASH_STORAGE_BYTES, at the default MICROPY_HW_FLASH_STORAGE_BASE
#   = flash size - storage size); rp2.Flash() is all of it and
#   rp2.Flash(start=, len=) a block-aligned part of it (offsets from the start
#   of the storage). The lock splits it: FS_REGION (592 KB) is littlefs at "/",
#   LOG_REGION (the last 256 KB) is the raw log. The stock _boot.py mounts
#   the whole 848 KB at "/", which would own the log's blocks, so the lock's
#   image must freeze its own _boot.py in place of the port's, mounting
#       vfs.VfsLfs2(rp2.Flash(start=0, len=0x94000), progsize=256) at "/"
#   (formatting it only if it does not mount). config_fs() checks the size of
#   the filesystem at "/" and refuses one that reaches into LOG_REGION.
#
# Time: rtc_now()/rtc_set() read and write machine.RTC as a calendar
# (year, month, day, ...) and convert with integer day arithmetic, so the
# port's epoch (2000 on ESP32, 1970 on rp2 and unix: time.gmtime(0)) never
# enters, nothing is a bignum on a 32-bit port, and nothing depends on a
# 32-bit time_t (2038). ticks_ms() is monotonic and does not wrap (see there).
#
# Power: power_state() only records the state and the time spent in each. The
# CPU stays awake in every state: with the stock `bluetooth` module the
# ESP32 port does not enable automatic light sleep while BLE is active (the
# NimBLE host runs on the CPU and the build has no power management
# configured), and machine.lightsleep() would stop advertising and drop a
# connection; on the Pico W, lightsleep stops clocks the CYW43439 driver
# needs. (boards/*.py CAPABILITIES["can_deep_sleep_between_adverts"] = False.)
import asyncio
import os
import sys
import time

import machine

from firmware import hal as hal_mod
from firmware.fs import Fs
from firmware.radio import AdvertisingPolicy
from protocol import ble as ble_proto

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

DEBOUNCE_SAMPLES = const(3)  # a switch reading counts once this many samples agree
DEBOUNCE_US = const(250)  # between samples (contact bounce is ~1-5 ms: a read during it keeps the last state)
DEBOUNCE_MS = const(20)  # after an edge interrupt: let the contact settle, then read
BRAKE_MS = const(100)  # after a stroke: both bridge outputs low-side (brake), then the driver sleeps
ADC_SAMPLES = const(8)
RP2_WDT_MAX_MS = const(8388)  # the RP2040 watchdog's longest timeout
PREFERRED_MTU = const(247)  # offered in the ATT MTU exchange (244-byte chunks)
NOTIFY_RETRIES = const(50)  # a full notification queue (NimBLE ENOMEM) is retried ...
NOTIFY_RETRY_MS = const(10)  # ... this often, then the link counts as gone
SERIAL_CHUNK = const(128)
COMPANY_ID = const(0xFFFF)  # Bluetooth SIG: "no company / testing"; a product uses its own ID
ADV_MAX = const(31)  # legacy advertising payload

# Days from 1970-01-01 to the lock epoch 2020-01-01.
LOCK_EPOCH_DAYS = const(18262)

_ON = const(1)
_OFF = const(0)

# LED and buzzer patterns: (steps, repeats); a step is (ms, colour, tone Hz).
# Every pattern ends by itself; "off" (or the next pattern) ends it earlier.
_GREEN = (0, 24, 0)
_RED = (24, 0, 0)
_AMBER = (24, 10, 0)
PATTERNS = {
    "ok": (((100, _GREEN, 2700), (900, _GREEN, 0)), 1),
    "refused": (((120, _RED, 600), (120, None, 0)), 3),
    "wait-button": (((150, _AMBER, 0), (850, None, 0)), 30),  # the button window
    "alarm": (((300, _RED, 2000), (700, None, 0)), 120),  # two minutes of sound
}


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (integers only)."""
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    mp = m - 3 if m > 2 else m + 9
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of a day count since 1970-01-01."""
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    y = yoe + era * 400
    if m <= 2:
        y += 1
    return y, m, d


def lock_seconds_from_datetime(dt):
    """machine.RTC().datetime() tuple (y, m, d, weekday, h, min, s, sub) -> lock seconds."""
    days = days_from_civil(dt[0], dt[1], dt[2]) - LOCK_EPOCH_DAYS
    return days * 86400 + dt[4] * 3600 + dt[5] * 60 + dt[6]


def datetime_from_lock_seconds(t):
    """Lock seconds -> the 8-tuple machine.RTC().datetime() takes (weekday 0 = Monday)."""
    days, secs = divmod(int(t), 86400)
    days += LOCK_EPOCH_DAYS
    y, m, d = civil_from_days(days)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday
    return (y, m, d, weekday, secs // 3600, secs // 60 % 60, secs % 60, 0)


def _ad(kind, payload):
    # One advertising data structure: length, type, payload.
    return bytes((len(payload) + 1, kind)) + payload


def uuid_le(uuid):
    """A 128-bit UUID string as the 16 bytes advertising data carries (little-endian)."""
    hexdigits = uuid.replace("-", "")
    return bytes(int(hexdigits[i:i + 2], 16) for i in range(30, -2, -2))


def adv_payload(lock_id, status):
    """(adv_data, resp_data): flags, the name "NKL-<lock id>" (shortened to fit),
    manufacturer data (company id, status byte); the service UUID in the scan
    response. Not authenticated (docs/PROTOCOL.md 3.1)."""
    name = (ble_proto.LOCAL_NAME_PREFIX + (lock_id or "new")).encode()
    flags = _ad(0x01, b"\x06")  # LE general discoverable, no BR/EDR
    manuf = _ad(0xFF, bytes((COMPANY_ID & 0xFF, COMPANY_ID >> 8, int(status) & 0xFF)))
    room = ADV_MAX - len(flags) - len(manuf) - 2
    if len(name) <= room:
        name_ad = _ad(0x09, name)  # complete local name
    else:
        name_ad = _ad(0x08, name[:room])  # shortened local name
    return flags + name_ad + manuf, _ad(0x07, uuid_le(ble_proto.SERVICE_UUID))


def _block_device_bytes(dev):
    # Size of a block device in bytes (ioctl 4: block count, 5: block size).
    return dev.ioctl(4, 0) * dev.ioctl(5, 0)


async def _sleep_ms(ms):
    await asyncio.sleep(ms / 1000)


class _EventFlag:
    """CPython's stand-in for asyncio.ThreadSafeFlag (the fakes call the
    interrupt handler in the loop's thread): an Event that clears on wait."""

    def __init__(self):
        self._event = asyncio.Event()

    def set(self):
        self._event.set()

    async def wait(self):
        await self._event.wait()
        self._event.clear()


def _edge_flag():
    """asyncio.ThreadSafeFlag where the port has it (set from an interrupt)."""
    tsf = getattr(asyncio, "ThreadSafeFlag", None)
    return tsf() if tsf is not None else _EventFlag()


def _spawn(coro):
    """Run coro as a task; False (and coro closed) if no event loop can take
    it (CPython outside asyncio). MicroPython always has its loop."""
    try:
        asyncio.create_task(coro)
        return True
    except RuntimeError:
        coro.close()
        return False


class SerialLink(hal_mod.Link):
    """The USB serial port (REPL stream) as a Link. Every byte is data."""

    def __init__(self, reader, writer, stream=None):
        self._reader = reader  # .read(n) awaitable: asyncio.StreamReader on a board
        self._writer = writer  # .write(bytes): sys.stdout.buffer on a board
        self._poll = None
        if stream is not None:
            import select

            self._stream = stream
            self._poll = select.poll()
            self._poll.register(stream, select.POLLIN)

    async def recv(self):
        # One byte at a time through the reader: on the boards,
        # sys.stdin.buffer.read(n) blocks until it has n bytes. Bytes already
        # waiting are then taken without yielding.
        data = await self._reader.read(1)
        if not data:
            return b""
        if self._poll is None:
            return data
        buf = bytearray(data)
        while len(buf) < SERIAL_CHUNK and self._poll.poll(0):
            more = self._stream.read(1)
            if not more:
                break
            buf += more
        return bytes(buf)

    async def send(self, data):
        self._writer.write(data)


class BleLink(hal_mod.Link):
    """One BLE connection (aioble DeviceConnection) as a Link."""

    def __init__(self, hal, conn, rx, tx, errors):
        self._hal = hal
        self.conn = conn
        self._rx = rx
        self._tx = tx
        self._disconnected = errors  # aioble.DeviceDisconnectedError
        self.closed = False
        try:  # the central's device address (aioble: conn.device.addr, bytes)
            self.central = bytes(conn.device.addr).hex()
        except (AttributeError, TypeError):
            self.central = ""

    def _gone(self):
        return self.closed or not self.conn.is_connected()

    async def recv(self):
        """Next chunk the central wrote to RX; b"" once it has disconnected."""
        conn = self.conn
        if self._gone():
            return b""
        try:
            # aioble cancels this wait when the connection drops.
            with conn.timeout(None):
                while True:
                    who, data = await self._rx.written()
                    # Skip a write still queued from an earlier connection, and
                    # an empty write: b"" means "gone" to the application.
                    if who is conn and data:
                        return bytes(data)
        except self._disconnected:
            return b""

    async def send(self, data):
        """A frame as notifications of at most ATT_MTU - 3 bytes each."""
        conn = self.conn
        for piece in ble_proto.chunks(data, conn.mtu or ble_proto.DEFAULT_ATT_MTU):
            tries = 0
            while True:
                if self._gone():
                    raise OSError(107, "BLE peer gone")  # ENOTCONN
                try:
                    self._tx.notify(conn, piece)
                    break
                except OSError:
                    # The stack's notification queue is full: wait for it to drain.
                    tries += 1
                    if tries > NOTIFY_RETRIES:
                        raise
                    await _sleep_ms(NOTIFY_RETRY_MS)

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self.conn.is_connected():
            _spawn(self._disconnect())

    async def _disconnect(self):
        try:
            await self.conn.disconnect()
        except Exception:  # noqa: BLE001 - already gone, or the stack timed out
            pass


class MachineHAL(hal_mod.HAL):
    PORTS = ("esp32", "rp2")  # a subclass for another port widens this (board_zephyr.py)

    def __init__(self, board, port=None, stdio=None):
        """board: a boards/*.py module. port: "esp32" or "rp2" (default
        sys.platform). stdio: (reader, writer) for the serial link instead of
        the REPL stream (tests)."""
        port = port or sys.platform
        if port not in self.PORTS:
            raise ValueError("no MachineHAL for port " + str(port))
        self.port = port
        self.board = board
        self.board_name = board.NAME
        self.battery_low_mv = board.BATTERY["low_mv"]
        self.battery_critical_mv = board.BATTERY["critical_mv"]
        self._stdio = stdio
        pins = board.PINS
        Pin = machine.Pin
        self._pins = pins
        # Motor: H-bridge IN1/IN2 (+1: IN1 high, -1: IN2 high, brake: both
        # high, coast: both low) and nSLEEP (low between strokes).
        self._in1 = Pin(pins["motor_in1"], Pin.OUT, value=0)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        self._in2 = Pin(pins["motor_in2"], Pin.OUT, value=0)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        self._nsleep = None
        if "motor_sleep" in pins:
            self._nsleep = Pin(pins["motor_sleep"], Pin.OUT, value=0)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        self.motor_direction = 0
        self._motor_gen = 0
        # Switches to GND with the internal pull-ups; debounced reads.
        self._inputs = {}
        self._stable = {}
        for name in ("bolt_retracted", "bolt_thrown", "door_closed", "button"):
            pin = Pin(pins[name], Pin.IN, self._input_pull())  # type: ignore[attr-defined,call-arg]  # unix-stubs
            self._inputs[name] = pin
            self._stable[name] = pin.value()
        self._active_low = board.ACTIVE_LOW
        # Door and button: an interrupt on each edge wakes next_event().
        self._edge = _edge_flag()
        self._events = []
        self._levels = {}
        for name in ("door_closed", "button"):
            self._levels[name] = self._sense(name)
            edges = machine.Pin.IRQ_RISING | machine.Pin.IRQ_FALLING  # type: ignore[attr-defined,call-arg]  # unix-stubs
            self._inputs[name].irq(handler=self._irq, trigger=edges)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        self.watchdog_max_ms = board.CAPABILITIES.get("watchdog_max_ms")
        # Indication: LED (addressable or plain) and a passive buzzer on PWM.
        self._np = None
        self._led = None
        if getattr(board, "LED_KIND", "plain") == "ws2812":
            import neopixel  # type: ignore[import-not-found]  # (not in the unix stubs)

            self._np = neopixel.NeoPixel(Pin(pins["led"], Pin.OUT), 1)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        else:
            self._led = Pin(pins["led"], Pin.OUT, value=0)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        self._buzzer = self._make_buzzer(pins)
        self.indication = "off"
        self._pattern_gen = 0
        # Battery through the divider: read_uv (calibrated, ESP32) where the
        # port has it, else read_u16 against the reference.
        self._adc = self._make_adc(pins)
        # A switched divider (pin "battery_en"): on only while measuring.
        self._battery_en = None
        if "battery_en" in pins:
            self._battery_en = Pin(pins["battery_en"], Pin.OUT, value=0)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        self._divider_settle_us = getattr(board, "DIVIDER_SETTLE_US", 1000)
        self._divider = board.BATTERY_DIVIDER
        self._vref_mv = getattr(board, "ADC_VREF_MV", 3300)
        self._rtc = self._make_rtc()
        # Monotonic ms: see ticks_ms.
        self._raw_ticks = time.ticks_ms()
        self._ms = 0
        self._wdt = None
        self.watchdog_timeout_ms = None
        self._cause = self._read_reset_cause()
        self.power = hal_mod.POWER_ADVERTISING
        self.power_ms = {}
        self._power_since = 0
        self._fs = None
        self._log = None
        self._serial = None
        # BLE (set up at the first ble_accept).
        self._aioble = None
        self._ble = None
        self._rx = None
        self._tx = None
        self._adv = adv_payload("", 0)
        self._advertising = False
        self._gap_name = None
        self._conn = None
        self.adv_interval_ms = getattr(board, "ADV_INTERVAL_MS", 1000)
        # Slow when idle, fast for a while after a door or button event.
        self.radio = AdvertisingPolicy(idle_ms=self.adv_interval_ms)
        self._radio_gen = 0

    # --- what differs between ports (board_zephyr.py overrides these) ----------
    def _input_pull(self):
        return machine.Pin.PULL_UP  # type: ignore[attr-defined]  # unix-stubs

    def _make_buzzer(self, pins):
        Pin = machine.Pin
        return machine.PWM(Pin(pins["buzzer"], Pin.OUT), freq=2000, duty_u16=0)  # type: ignore[attr-defined,call-arg]  # unix-stubs

    def _make_adc(self, pins):
        Pin = machine.Pin
        if self.port == "esp32":
            # 11 dB attenuation: the ESP32-C3 measures up to ~2.5 V (the pack
            # at 7 V is 2.33 V behind the 1:3 divider).
            return machine.ADC(Pin(pins["battery_adc"]), atten=machine.ADC.ATTN_11DB)  # type: ignore[attr-defined,call-arg]  # unix-stubs
        return machine.ADC(Pin(pins["battery_adc"]))  # type: ignore[attr-defined,call-arg]  # unix-stubs

    def _make_rtc(self):
        return machine.RTC()

    def _read_reset_cause(self):
        return machine.reset_cause()  # type: ignore[attr-defined,call-arg]  # unix-stubs

    def _config_mtu(self, aioble):
        aioble.config(mtu=PREFERRED_MTU)

    def _fs_mount_point(self):
        return getattr(self.board, "FS_MOUNT", "/")

    # --- time -------------------------------------------------------------
    def rtc_now(self):
        return lock_seconds_from_datetime(self._rtc.datetime())  # type: ignore[attr-defined,call-arg]  # unix-stubs

    def rtc_set(self, lock_seconds):
        self._rtc.datetime(datetime_from_lock_seconds(lock_seconds))  # type: ignore[attr-defined,call-arg]  # unix-stubs

    def ticks_ms(self):
        """Milliseconds since this HAL was made; never wraps.

        time.ticks_ms() wraps (at 2**30 ms, 12.4 days, on these ports) and the
        application compares ticks by plain subtraction, so the wrap is taken
        out here: each call adds ticks_diff(now, last) to a Python int. That is
        right as long as calls come less than 2**29 ms (6.2 days) apart: the
        application's watchdog loop calls it at every feed (at most a minute).
        After 12.4 days the value leaves the small-int range of a 32-bit port
        and each call allocates a little (a long int): correct, slightly slower.
        """
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._raw_ticks)
        self._raw_ticks = now
        return self._ms

    # --- actuator and sensors -----------------------------------------------
    def motor(self, direction):
        self._motor_gen += 1
        if direction:
            if self._nsleep is not None:
                self._nsleep.value(_ON)
            if direction > 0:
                self._in2.value(_OFF)
                self._in1.value(_ON)
                self.motor_direction = 1
            else:
                self._in1.value(_OFF)
                self._in2.value(_ON)
                self.motor_direction = -1
            return
        was_running = self.motor_direction != 0
        self.motor_direction = 0
        if not was_running:
            self._motor_rest(self._motor_gen)
            return
        # Brake (both outputs to ground) so the bolt stops at the end stop,
        # then let the driver sleep.
        self._in1.value(_ON)
        self._in2.value(_ON)
        if not _spawn(self._rest_after(self._motor_gen)):
            self._motor_rest(self._motor_gen)

    async def _rest_after(self, gen):
        await _sleep_ms(BRAKE_MS)
        self._motor_rest(gen)

    def _motor_rest(self, gen):
        if gen != self._motor_gen or self.motor_direction != 0:
            return  # the motor was driven again meanwhile
        self._in1.value(_OFF)
        self._in2.value(_OFF)
        if self._nsleep is not None:
            self._nsleep.value(_OFF)

    def _sense(self, name):
        """A switch, debounced: DEBOUNCE_SAMPLES agreeing samples change the
        state; a read during contact bounce keeps the previous state."""
        pin = self._inputs[name]
        v = pin.value()
        for _ in range(DEBOUNCE_SAMPLES - 1):
            time.sleep_us(DEBOUNCE_US)
            if pin.value() != v:
                v = self._stable[name]
                break
        if v != self._stable[name] and name in ("door_closed", "button"):
            self._radio_event()
        self._stable[name] = v
        if name in self._active_low:
            return v == 0
        return v == 1

    def _irq(self, pin):
        self._edge.set()  # (soft IRQ: nothing else here, no allocation)

    async def next_event(self):
        names = (("door_closed", hal_mod.EVENT_DOOR), ("button", hal_mod.EVENT_BUTTON))
        while not self._events:
            await self._edge.wait()
            await _sleep_ms(DEBOUNCE_MS)  # bounce over: read the settled level
            for name, kind in names:
                level = self._sense(name)
                if level != self._levels[name]:
                    self._levels[name] = level
                    self._events.append((kind, level))
        return self._events.pop(0)

    def bolt_retracted(self):
        return self._sense("bolt_retracted")

    def bolt_thrown(self):
        return self._sense("bolt_thrown")

    def door_closed(self):
        return self._sense("door_closed")

    def button_pressed(self):
        return self._sense("button")

    def indicate(self, what):
        """Start a pattern (non-blocking: it plays in its own task)."""
        self._pattern_gen += 1
        pattern = PATTERNS.get(what)
        if pattern is None:
            self.indication = "off"
            self._show(None, 0)
            return
        self.indication = what
        if not _spawn(self._play(pattern, self._pattern_gen)):
            first = pattern[0][0]
            self._show(first[1], first[2])

    async def _play(self, pattern, gen):
        steps, repeats = pattern
        try:
            for _ in range(repeats):
                for ms, colour, tone in steps:
                    if gen != self._pattern_gen:
                        return
                    self._show(colour, tone)
                    await _sleep_ms(ms)
        finally:
            if gen == self._pattern_gen:  # not replaced by a newer pattern
                self.indication = "off"
                self._show(None, 0)

    def _show(self, colour, tone):
        if self._np is not None:
            self._np[0] = colour or (0, 0, 0)
            self._np.write()
        elif self._led is not None:
            self._led.value(_ON if colour else _OFF)
        if tone:
            self._buzzer.freq(tone)
            self._buzzer.duty_u16(32768)
        else:
            self._buzzer.duty_u16(0)

    def battery_mv(self):
        en = self._battery_en
        if en is not None:
            en.value(_ON)  # the divider conducts only while measuring
            time.sleep_us(self._divider_settle_us)
        try:
            adc = self._adc
            read_uv = getattr(adc, "read_uv", None)
            total = 0
            for _ in range(ADC_SAMPLES):
                if read_uv is not None:
                    total += read_uv() // 1000
                else:
                    total += adc.read_u16() * self._vref_mv // 65535  # type: ignore[attr-defined,call-arg]  # unix-stubs
        finally:
            if en is not None:
                en.value(_OFF)
        return int(total // ADC_SAMPLES * self._divider)

    # --- supervision ---------------------------------------------------------
    def watchdog_start(self, timeout_ms):
        """Start the hardware watchdog. It cannot be stopped or reconfigured
        (machine.WDT): a second call only feeds it."""
        if self._wdt is None:
            if self.port == "rp2":
                timeout_ms = min(timeout_ms, RP2_WDT_MAX_MS)
            if self.watchdog_max_ms is not None:
                timeout_ms = min(timeout_ms, self.watchdog_max_ms)
            self._wdt = machine.WDT(timeout=timeout_ms)  # type: ignore[attr-defined,call-arg]  # unix-stubs
            self.watchdog_timeout_ms = timeout_ms
        self.watchdog_feed()

    def watchdog_feed(self):
        if self._wdt is not None:
            self._wdt.feed()
        self.ticks_ms()  # keeps the monotonic counter ahead of the wrap

    def reset_cause(self):
        """machine.reset_cause() of this boot as a firmware.hal RESET_*.

        Neither port reports a brownout through machine.reset_cause() (the
        ESP32 port folds it into another cause), so RESET_BROWNOUT is never
        returned. On rp2, machine.reset() reboots through the watchdog: a
        hal.reset() is reported as RESET_WATCHDOG at the next boot. HARD_RESET
        (the EN/RUN pin) counts as a power-on: the RTC cannot be trusted after it.
        """
        c = self._cause
        if c == getattr(machine, "WDT_RESET", None):
            return hal_mod.RESET_WATCHDOG
        if c == getattr(machine, "SOFT_RESET", None):
            return hal_mod.RESET_SOFT
        if c == getattr(machine, "PWRON_RESET", None) or c == getattr(machine, "HARD_RESET", None):
            return hal_mod.RESET_POWER_ON
        return hal_mod.RESET_UNKNOWN

    def reset(self):
        machine.reset()  # type: ignore[attr-defined,call-arg]  # unix-stubs

    def random_bytes(self, n):
        return os.urandom(n)

    def power_state(self, state):
        # Recorded only: the CPU stays awake in every state (see the top of
        # this file: no light sleep with BLE active on the stock ports).
        now = self.ticks_ms()
        self.power_ms[self.power] = self.power_ms.get(self.power, 0) + now - self._power_since
        self.power = state
        self._power_since = now

    # --- storage -------------------------------------------------------------
    def config_fs(self):
        """The littlefs filesystem mounted at "/", once it is checked to stay
        inside FS_REGION (so it cannot own the log's blocks)."""
        if self._fs is None:
            import vfs

            root = None
            at = self._fs_mount_point()
            for obj, point in vfs.mount():
                if point == at:
                    root = obj
            if root is None:
                raise OSError(19, "no filesystem mounted at " + at)
            if not isinstance(root, vfs.VfsLfs2):
                raise OSError(19, "the filesystem at %s is not littlefs" % at)
            st = root.statvfs("/")
            size = st[1] * st[2]
            if size > self.board.FS_REGION[1]:
                raise OSError(28, "the filesystem at / (%d bytes) is larger than FS_REGION "
                                  "(%d): it would overlap the event log" % (size, self.board.FS_REGION[1]))
            self._fs = Fs(root)
        return self._fs

    def log_device(self):
        """The raw block device of LOG_REGION (checked against the board file)."""
        if self._log is None:
            self._log = self._port_log()
            if self._log.ioctl(5, 0) != self.board.FLASH_BLOCK_SIZE:
                raise OSError(22, "the log region's block size is not FLASH_BLOCK_SIZE")
        return self._log

    def _port_log(self):
        if self.port == "esp32":
            return self._esp32_log()
        return self._rp2_log()

    def _esp32_log(self):
        import esp32  # type: ignore[import-not-found]  # (only the ESP32 stubs have it)

        label = getattr(self.board, "LOG_PARTITION", "eventlog")
        found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label=label)
        if not found:
            raise OSError(19, "no data partition '%s': flash the lock's partition table" % label)
        part = found[0]
        info = part.info()  # (type, subtype, addr, size, label, encrypted)
        start, length = self.board.LOG_REGION
        if info[2] != start or info[3] != length:
            raise OSError(22, "partition '%s' is at 0x%x+0x%x, LOG_REGION is 0x%x+0x%x"
                              % (label, info[2], info[3], start, length))
        return part

    def _rp2_log(self):
        import rp2  # type: ignore[import-not-found]  # (only the rp2 stubs have it)

        storage = _block_device_bytes(rp2.Flash())
        base = self.board.FLASH_SIZE - storage  # MICROPY_HW_FLASH_STORAGE_BASE (default)
        start, length = self.board.LOG_REGION
        fs_start, fs_len = self.board.FS_REGION
        if fs_start != base or fs_start + fs_len > start or start + length > base + storage:
            raise OSError(22, "FS_REGION/LOG_REGION do not split the port's flash storage "
                              "(0x%x+0x%x)" % (base, storage))
        return rp2.Flash(start=start - base, len=length)

    # --- links ---------------------------------------------------------------
    async def serial_link(self):
        """The USB serial port (the REPL's stream), with Ctrl-C off so a 0x03
        byte in a frame does not interrupt into the REPL."""
        if self._serial is None:
            if self._stdio is not None:
                reader, writer = self._stdio
                self._serial = SerialLink(reader, writer)
            else:
                import micropython

                micropython.kbd_intr(-1)
                stream = sys.stdin.buffer
                self._serial = SerialLink(asyncio.StreamReader(stream), sys.stdout.buffer, stream)
        return self._serial

    def _ble_setup(self):
        if self._aioble is not None:
            return self._aioble
        import aioble  # type: ignore[import-not-found]  # (micropython-lib; rp2 stubs only)
        import bluetooth  # type: ignore[import-not-found]  # (not in the unix stubs)

        core = getattr(aioble, "core", None)
        if core is not None:
            core.log_level = 0  # aioble prints errors to stdout: the serial link's stream
        self._config_mtu(aioble)
        service = aioble.Service(bluetooth.UUID(ble_proto.SERVICE_UUID))
        # RX: capture keeps every write's value in order; the buffer holds a
        # whole write at the largest MTU (the default is 20 bytes).
        rx = aioble.BufferedCharacteristic(service, bluetooth.UUID(ble_proto.RX_UUID), write=True,
                                           write_no_response=True, capture=True,
                                           max_len=PREFERRED_MTU - 3)
        tx = aioble.Characteristic(service, bluetooth.UUID(ble_proto.TX_UUID), notify=True)
        aioble.register_services(service)
        self._aioble = aioble
        self._ble = bluetooth.BLE()
        self._rx = rx
        self._tx = tx
        self._set_gap_name(aioble)
        return aioble

    def _set_gap_name(self, aioble):
        # The GAP device name (service 0x1800) follows the advertised name.
        name = _name_from_adv(self._adv[0])
        if name != self._gap_name:
            aioble.config(gap_name=name)
            self._gap_name = name

    async def ble_accept(self):
        """Advertise until one central connects; return the connection as a Link."""
        aioble = self._ble_setup()
        prev = self._conn
        if prev is not None and prev.is_connected():
            try:
                await prev.disconnected(timeout_ms=2000)
            except Exception:  # noqa: BLE001 - asyncio.TimeoutError: advertise anyway
                pass
        self._advertising = True
        try:
            conn = await aioble.advertise(self._adv_interval_us(), adv_data=self._adv[0],
                                          resp_data=self._adv[1], connectable=True)
        finally:
            self._advertising = False
        if conn is None:
            # aioble.advertise returns None when its task is cancelled (it
            # swallows the CancelledError): pass the cancellation on.
            raise asyncio.CancelledError()
        self._conn = conn
        return BleLink(self, conn, self._rx, self._tx, aioble.DeviceDisconnectedError)

    def ble_advertise(self, lock_id, status):
        """New name/status: stored, and put on the air at once if advertising."""
        adv = adv_payload(lock_id, status)
        if adv == self._adv:
            return
        self._adv = adv
        aioble = self._aioble
        ble = self._ble
        if aioble is None or ble is None:
            return  # BLE starts at the first ble_accept, with this payload
        self._set_gap_name(aioble)
        self._readvertise()

    # --- advertising interval (firmware/radio.py) ---------------------------------
    def _adv_interval_us(self):
        return self.radio.interval_ms(self.ticks_ms()) * 1000

    def _readvertise(self):
        # Put the current payload and interval on the air (only while advertising).
        ble = self._ble
        if self._advertising and ble is not None:
            ble.gap_advertise(self._adv_interval_us(), self._adv[0], resp_data=self._adv[1],
                              connectable=True)

    def _radio_event(self):
        # A door or button event: advertise fast for radio.FAST_WINDOW_MS, then
        # slow again (one timer per event; none while nothing happens).
        now = self.ticks_ms()
        was_fast = self.radio.fast_left_ms(now) > 0
        self.radio.event(now)
        self._radio_gen += 1
        if not was_fast:
            self._readvertise()
        _spawn(self._slow_after(self._radio_gen, self.radio.window_ms))

    async def _slow_after(self, gen, ms):
        await _sleep_ms(ms)
        if gen == self._radio_gen:  # no later event extended the window
            self._readvertise()


def _name_from_adv(adv_data):
    # The local name in our own advertising data.
    i = 0
    while i + 1 < len(adv_data):
        n = adv_data[i]
        if adv_data[i + 1] in (0x08, 0x09):
            return bytes(adv_data[i + 2:i + 1 + n]).decode()
        i += n + 1
    return ""
