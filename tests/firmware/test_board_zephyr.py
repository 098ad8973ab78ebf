"""firmware/board_zephyr.py (the nRF52840 under MicroPython's Zephyr port)
against fakes written from the port's source (tests/fakes/zephyr_port.py,
tests/fakes/zephyr.py): there are no stubs for the Zephyr port on PyPI, so
no type check against them is possible. No hardware: sleeping while
advertising, GATT services at run time, pin IRQs and every current are NOT
verified here (docs/ENERGY.md lists them)."""

from __future__ import annotations

import asyncio
import sys

import fakes
import pytest

import boards.nrf52840_zephyr as board
from firmware import hal as hal_mod
from firmware import radio
from protocol import ble as ble_proto
from protocol import frames
from protocol import messages as msg


class Rig:
    def __init__(self) -> None:
        self.fk = fakes.install("zephyr")
        self.bz, self.bm = fakes.board_zephyr(self.fk)
        self.m = self.fk.machine
        self.fk.zephyr.set_partitions([("storage", *board.FS_REGION),
                                       ("eventlog", *board.LOG_REGION)])
        # Idle: door closed and bolt thrown (idle-open contacts: pins high).
        self.level("door_closed", 1)
        self.level("bolt_thrown", 1)
        self.level("bolt_retracted", 1)
        self.level("button", 1)
        self.adc_mv(5850)

    def hal(self, **kw):
        return self.bz.ZephyrHAL(board, **kw)

    def pin(self, name: str):
        return self.m.pin(board.PINS[name])

    def level(self, name: str, level: int | None) -> None:
        self.pin(name).set_level(level)

    def adc_mv(self, pack_mv: int) -> None:
        self.m.set_adc_uv(board.PINS["battery_adc"], pack_mv * 1000 // board.BATTERY_DIVIDER)

    def lock_layout(self) -> None:
        z, vfs = self.fk.zephyr, self.fk.vfs
        dev = z.FlashArea(*z.FlashArea.areas["storage"])
        vfs.VfsLfs2.mkfs(dev)
        vfs.mount(vfs.VfsLfs2(dev), board.FS_MOUNT)


@pytest.fixture
def rig():
    r = Rig()
    try:
        yield r
    finally:
        fakes.uninstall()
    assert "machine" not in sys.modules


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_the_board_file_has_what_the_hal_and_the_report_read() -> None:
    for name in ("motor_in1", "motor_in2", "motor_sleep", "bolt_retracted", "bolt_thrown",
                 "door_closed", "button", "led", "buzzer", "battery_adc", "battery_en"):
        assert name in board.PINS, name
    fs_start, fs_len = board.FS_REGION
    log_start, log_len = board.LOG_REGION
    assert board.FIRMWARE_REGION[1] <= fs_start and fs_start + fs_len <= log_start
    assert log_start + log_len <= board.FLASH_SIZE
    assert log_len // board.FLASH_BLOCK_SIZE >= 3
    assert board.CAPABILITIES["can_deep_sleep_between_adverts"] is True
    assert board.STATIC_MA["closed_switch_pullups"] == 0.0  # idle-open contacts
    # The connection parameters of the build are the ones firmware/radio.py chose.
    cfg = board.ZEPHYR_CONFIG
    assert int(cfg["CONFIG_BT_PERIPHERAL_PREF_MIN_INT"]) * 1.25 == radio.CONN_INTERVAL_MIN_MS
    assert int(cfg["CONFIG_BT_PERIPHERAL_PREF_MAX_INT"]) * 1.25 == radio.CONN_INTERVAL_MAX_MS
    assert int(cfg["CONFIG_BT_PERIPHERAL_PREF_TIMEOUT"]) * 10 == radio.CONN_SUPERVISION_TIMEOUT_MS
    assert radio.CONN_SUPERVISION_TIMEOUT_MS > 2 * radio.CONN_INTERVAL_MAX_MS * (1 + radio.CONN_LATENCY)


def test_switches_have_no_internal_pull_and_the_boards_polarity(rig) -> None:
    hal = rig.hal()
    for name in ("bolt_retracted", "bolt_thrown", "door_closed", "button"):
        p = rig.pin(name)
        assert (p.mode, p.pull) == (rig.m.Pin.IN, None), name  # external 1 MOhm
    # Idle-open contacts: door closed and bolt thrown read high.
    assert hal.door_closed() and hal.bolt_thrown()
    assert not hal.bolt_retracted() and not hal.button_pressed()
    rig.level("door_closed", 0)  # the reed closes: the door is open
    rig.level("bolt_thrown", 0)
    rig.level("bolt_retracted", 0)
    rig.level("button", 0)
    assert not hal.door_closed() and not hal.bolt_thrown()
    assert hal.bolt_retracted() and hal.button_pressed()


def test_battery_divider_is_on_only_while_measuring(rig) -> None:
    hal = rig.hal()
    en = rig.pin("battery_en")
    assert en.mode == rig.m.Pin.OUT and en.out == 0
    slept = rig.fk.faketime.slept_us
    for pack_mv in (7000, 5850, 5000, 4400):
        rig.adc_mv(pack_mv)
        assert abs(hal.battery_mv() - pack_mv) <= 2 * board.BATTERY_DIVIDER
        assert en.out == 0  # off again after the reading
    assert en.history == [0] + [1, 0] * 4
    assert rig.fk.faketime.slept_us - slept >= 4 * board.DIVIDER_SETTLE_US


def test_port_specific_objects(rig) -> None:
    hal = rig.hal()
    assert hal._buzzer.pin == board.PINS["buzzer"]  # a (pwm, channel) tuple, not a Pin
    assert hal._adc.gpio == board.PINS["battery_adc"]
    assert not hasattr(rig.m, "RTC")
    # machine.reset_cause() would print on the console (the installer's link).
    assert hal.reset_cause() == hal_mod.RESET_UNKNOWN
    assert rig.fk.zephyr_port.printed == []


def test_time_is_kept_from_the_uptime(rig) -> None:
    hal = rig.hal()
    assert 0 <= hal.rtc_now() < 5  # 2020-01-01 after a reset: the lock's lower bound takes over
    hal.rtc_set(200_000_000)
    assert 200_000_000 <= hal.rtc_now() <= 200_000_001
    rig.fk.faketime.offset += 90_000
    assert 200_000_090 <= hal.rtc_now() <= 200_000_091


def test_flash_areas_by_label_and_checked_sizes(rig) -> None:
    rig.lock_layout()
    hal = rig.hal()
    fs = hal.config_fs()
    assert fs is hal.config_fs()
    log = hal.log_device()
    assert log.ioctl(4, 0) * log.ioctl(5, 0) == board.LOG_REGION[1]
    # A devicetree whose eventlog partition does not match the board file is refused.
    fakes.uninstall()
    r2 = Rig()
    r2.fk.zephyr.set_partitions([("storage", *board.FS_REGION),
                                 ("eventlog", board.LOG_REGION[0], 0x8000)])
    with pytest.raises(OSError):
        r2.hal().log_device()
    r2.fk.zephyr.set_partitions([("storage", *board.FS_REGION)])
    with pytest.raises(OSError):
        r2.hal().log_device()


def test_advertising_slow_when_idle_fast_after_a_door_event(rig) -> None:
    hal = rig.hal()
    hal.radio.window_ms = 200  # a short fast window for the test
    bt = rig.fk.bluetooth

    async def scenario():
        task = asyncio.create_task(hal.ble_accept())
        await asyncio.sleep(0.02)
        st = bt.state()
        assert st.advertising and st.adv_interval_us == radio.IDLE_INTERVAL_MS * 1000
        rig.level("door_closed", 0)  # the door opens
        hal.door_closed()
        assert st.adv_interval_us == radio.FAST_INTERVAL_MS * 1000
        await asyncio.sleep(0.35)
        assert st.adv_interval_us == radio.IDLE_INTERVAL_MS * 1000  # the window ended
        hal.door_closed()  # no change: no event
        assert st.adv_interval_us == radio.IDLE_INTERVAL_MS * 1000
        bt.Central().connect()
        link = await task
        link.close()

    run(scenario())
    assert hal.radio.events == 1


def test_ble_without_mtu_config_notifies_at_the_default_mtu(rig) -> None:
    hal = rig.hal()
    payload = bytes(range(200))
    frame = frames.encode(payload)

    async def scenario():
        task = asyncio.create_task(hal.ble_accept())  # config(mtu=) would raise here
        await asyncio.sleep(0.02)
        central = rig.fk.bluetooth.Central().connect()
        link = await task
        big = frame[:ble_proto.DEFAULT_ATT_MTU - 3]
        central.write(ble_proto.RX_UUID, big)
        assert await link.recv() == big
        await link.send(frame)
        sizes = [len(p) for _, p in central.notifications]
        assert max(sizes) <= ble_proto.DEFAULT_ATT_MTU - 3
        assert list(frames.Decoder().feed(central.received(ble_proto.TX_UUID))) == [payload]
        central.disconnect()

    run(scenario())


def test_app_boots_on_the_zephyr_fakes_and_answers_a_ble_hello(rig) -> None:
    from firmware import app as app_mod

    rig.lock_layout()

    class Stdio:
        async def read(self, n: int) -> bytes:
            await asyncio.sleep(3600)
            return b""

        def write(self, b: bytes) -> int:
            return len(b)

    stdio = Stdio()
    hal = rig.hal(stdio=(stdio, stdio))
    bt = rig.fk.bluetooth

    async def scenario():
        stop = asyncio.Event()
        main = asyncio.create_task(app_mod.main(hal, stop))
        for _ in range(400):
            await asyncio.sleep(0.01)
            if bt.state().advertising:
                break
        central = bt.Central().connect()
        decoder = frames.Decoder()
        got = []
        for _ in range(300):
            await asyncio.sleep(0.01)
            got += [msg.decode(p) for p in decoder.feed(central.received(ble_proto.TX_UUID))]
            central.notifications.clear()
            if got:
                break
        assert got and got[0][0] == msg.HELLO
        central.disconnect()
        stop.set()
        return await main

    app = run(scenario())
    assert app.lock.log.next_seq > 1
    assert rig.fk.zephyr.FLASH.bad_programs == 0
    assert rig.fk.zephyr_port.printed == []
