"""The simulator's virtual hardware (simulator/hardware.py), its power
accounting, and the board runner's resets (simulator/board.py).

Hardware models run on a ManualClock: no test waits for a bolt stroke.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from boards import esp32c3_devkit, pico_w
from boards import sim as sim_board
from firmware import hal as hal_mod
from simulator.energy_account import PowerAccount, project_life
from simulator.hal import BoardReset
from simulator.hardware import (
    RTC,
    Battery,
    Bolt,
    Button,
    Door,
    Hardware,
    ManualClock,
    Watchdog,
)

TRAVEL = 0.6


def approx(x: float) -> object:
    return pytest.approx(x, abs=1e-9)


# --- bolt and motor -------------------------------------------------------------
def test_bolt_travels_between_end_stops_in_travel_time() -> None:
    clock = ManualClock()
    bolt = Bolt(clock, TRAVEL, run_ma=150, stall_ma=600)
    assert bolt.thrown() and not bolt.retracted()
    bolt.drive(+1)  # unlock
    assert bolt.current_ma() == 150
    clock.advance(TRAVEL / 2)
    assert bolt.position == approx(0.5)
    assert not bolt.thrown() and not bolt.retracted() and bolt.moving()
    clock.advance(TRAVEL / 2)
    assert bolt.retracted() and bolt.position == 0.0
    assert not bolt.moving() and bolt.current_ma() == 600  # against the end stop
    clock.advance(0.1)
    bolt.drive(0)
    assert bolt.current_ma() == 0
    # 0.6 s running, 0.1 s stalled
    assert bolt.charge_mas() == approx(TRAVEL * 150 + 0.1 * 600)
    assert bolt.run_s == approx(TRAVEL) and bolt.stall_s == approx(0.1)
    bolt.drive(-1)  # lock again
    clock.advance(10)
    assert bolt.thrown() and bolt.position == 1.0
    assert bolt.starts == 2


def test_bolt_partial_stroke_and_reversal() -> None:
    clock = ManualClock()
    bolt = Bolt(clock, TRAVEL)
    bolt.drive(+1)
    clock.advance(0.15)
    bolt.drive(-1)
    clock.advance(0.05)
    assert bolt.position == approx(1 - 0.10 / TRAVEL)
    with pytest.raises(ValueError):
        bolt.drive(2)


def test_jam_stops_the_bolt_mid_travel() -> None:
    clock = ManualClock()
    bolt = Bolt(clock, TRAVEL, run_ma=150, stall_ma=600, position=0.0)
    bolt.drive(-1)  # throwing
    clock.advance(0.3)
    bolt.jam()  # stuck where it is now, half way
    clock.advance(1.0)
    assert bolt.position == approx(0.5)
    assert not bolt.thrown() and not bolt.retracted()
    assert bolt.jammed and not bolt.moving() and bolt.current_ma() == 600
    bolt.unjam()
    clock.advance(0.3)
    assert bolt.thrown()


def test_jam_at_a_position_blocks_both_directions() -> None:
    clock = ManualClock()
    bolt = Bolt(clock, TRAVEL)
    bolt.jam(at=0.25)
    bolt.drive(+1)  # from thrown (1.0) towards 0: stops at the obstacle
    clock.advance(2)
    assert bolt.position == approx(0.25) and not bolt.retracted()
    bolt.drive(-1)  # at the obstacle: cannot move either way
    clock.advance(2)
    assert bolt.position == approx(0.25)


# --- door -------------------------------------------------------------------------
def test_door_cannot_open_on_a_thrown_bolt_nor_close_on_one() -> None:
    clock = ManualClock()
    bolt = Bolt(clock, TRAVEL)
    door = Door(clock, bolt)
    assert door.closed()
    assert door.open() is False and door.closed()  # locked
    bolt.set_position(0.0)
    assert door.open() is True and not door.closed()
    bolt.set_position(1.0)  # thrown while the door is open
    assert door.close() is False and not door.closed()
    bolt.set_position(0.0)
    assert door.close() is True and door.closed()
    bolt.set_position(1.0)
    assert door.open(force=True) and not door.closed()  # a break-in
    assert [w for _, w in door.log] == ["open-blocked", "opened", "close-blocked", "closed",
                                        "forced-open"]


# --- button -------------------------------------------------------------------------
def test_button_press_hold_and_auto() -> None:
    clock = ManualClock()
    b = Button(clock)
    assert not b.pressed()
    b.press(0.5, delay=0.1)
    assert not b.pressed()
    clock.advance(0.1)
    assert b.pressed()
    clock.advance(0.49)
    assert b.pressed()
    clock.advance(0.02)
    assert not b.pressed()
    b.hold()
    clock.advance(100)
    assert b.pressed()
    b.release()
    assert not b.pressed()
    b.on_indicate("wait-button")  # not in auto mode: nobody presses
    clock.advance(1)
    assert not b.pressed()
    b.auto = True
    b.on_indicate("ok")
    clock.advance(0.3)
    assert not b.pressed()
    b.on_indicate("wait-button")
    clock.advance(b.auto_delay_s + 0.01)
    assert b.pressed()
    clock.advance(b.auto_press_s)
    assert not b.pressed()


def test_hardware_indicate_logs_and_drives_auto_button() -> None:
    clock = ManualClock()
    hw = Hardware(sim_board, clock, auto_button=True)
    hw.indicate("wait-button")
    hw.indicate("off")
    clock.advance(0.3)
    assert hw.button.pressed()
    assert hw.indicator.history() == ["wait-button", "off"]
    assert hw.indicator.state == "off"


# --- battery and power ------------------------------------------------------------
def test_battery_curve_and_levels() -> None:
    b = Battery(1000, ((0.0, 3000), (0.5, 3500), (1.0, 4000)), low_mv=3300, critical_mv=3100)
    assert b.mv() == 4000
    assert b.curve_mv(0.75) == 3750
    for level, check in (("ok", lambda v: v > 3300), ("low", lambda v: 3100 < v <= 3300),
                         ("critical", lambda v: v <= 3100)):
        b.set_level(level)
        assert check(b.mv()), level
    b.set_level(None)
    assert b.mv() == 4000
    with pytest.raises(ValueError):
        b.set_level("empty")


def test_battery_drains_by_power_state_and_motor() -> None:
    clock = ManualClock()
    hw = Hardware(sim_board, clock)
    cur = sim_board.CURRENT_MA
    hw.power_state(hal_mod.POWER_SLEEP)
    clock.advance(3600)
    hw.power_state(hal_mod.POWER_ADVERTISING)
    clock.advance(1800)
    hw.power_state(hal_mod.POWER_MOTOR)
    hw.bolt.drive(+1)
    clock.advance(1.0)  # 0.6 s running, 0.4 s stalled
    hw.bolt.drive(0)
    hw.power_state(hal_mod.POWER_CONNECTED)
    motor_mas = 0.6 * sim_board.MOTOR["run_ma"] + 0.4 * sim_board.MOTOR["stall_ma"]
    expected_mah = (cur["sleep"] * 3600 + cur["advertising"] * 1800 + cur["motor"] * 1.0
                    + motor_mas) / 3600
    assert hw.battery.consumed_mah == pytest.approx(expected_mah)
    s = hw.energy_summary()
    assert s["seconds"] == pytest.approx(5401.0)
    assert s["states"]["sleep"]["seconds"] == pytest.approx(3600)
    assert s["total_mah"] == pytest.approx(expected_mah)
    assert "projected battery life" in hw.energy_report()
    # A long stretch of advertising empties the pack: the voltage falls through
    # the low and critical thresholds.
    full = hw.battery.mv()
    hw.power_state(hal_mod.POWER_ADVERTISING)
    hours = sim_board.BATTERY["capacity_mah"] / cur["advertising"]
    clock.advance(0.96 * hours * 3600)
    assert hw.battery.mv() < full and hw.battery.mv() <= hw.battery.low_mv
    clock.advance(0.04 * hours * 3600)
    assert hw.battery.mv() <= hw.battery.critical_mv
    hw.battery.replace()
    assert hw.battery.mv() == sim_board.BATTERY["curve"][0][1]


def test_power_account_rejects_unknown_states() -> None:
    acct = PowerAccount(ManualClock().now, sim_board.CURRENT_MA)
    with pytest.raises(ValueError):
        acct.set("turbo")
    with pytest.raises(ValueError):
        PowerAccount(ManualClock().now, {"sleep": 1.0})
    assert project_life(0, 3000) == float("inf")
    assert project_life(125 / 1000, 3000) == pytest.approx(1000)


# --- RTC ----------------------------------------------------------------------------
def test_rtc_drift_set_and_power_loss() -> None:
    clock = ManualClock()
    rtc = RTC(clock, drift_ppm=100, lock_seconds=1_000_000)
    clock.advance(1_000_000)
    assert rtc.now() == 2_000_100  # 100 ppm fast over a million seconds
    rtc.set(5)
    clock.advance(10)
    assert rtc.now() == 15
    assert rtc.power_loss() is True
    assert rtc.now() == 0 and rtc.lost
    clock.advance(3)
    assert rtc.now() == 3  # counts up from zero
    slow = RTC(clock, drift_ppm=-50, lock_seconds=0)
    clock.advance(2_000_000)
    assert slow.now() == 1_999_900
    backed = RTC(clock, lock_seconds=77, keeps_time_on_power_loss=True)
    assert backed.power_loss() is False and backed.now() == 77


def test_hardware_snapshot_carries_the_rtc_across_a_restart() -> None:
    clock = ManualClock()
    hw = Hardware(sim_board, clock, rtc_drift_ppm=20, rtc_lock_seconds=1000)
    hw.bolt.set_position(0.0)
    hw.door.open()
    snap = json.loads(json.dumps(hw.snapshot()))
    snap["rtc"]["host_time"] -= 100  # the simulator was stopped for 100 s
    again = Hardware.from_snapshot(snap, sim_board, ManualClock())
    assert again.rtc.now() == 1100  # 100 s * (1 + 20e-6), truncated
    assert again.rtc.drift_ppm == 20
    assert again.bolt.retracted() and not again.door.closed()
    assert again.battery.consumed_mah == pytest.approx(hw.battery.consumed_mah)


# --- watchdog -----------------------------------------------------------------------
def test_watchdog_expires_unless_fed() -> None:
    clock = ManualClock()
    wd = Watchdog(clock)
    clock.advance(100)
    assert not wd.expired() and not wd.running  # not started: never fires
    wd.start(1000)
    clock.advance(0.9)
    assert not wd.expired()
    wd.feed()
    clock.advance(0.9)
    assert not wd.expired()
    clock.advance(0.2)
    assert wd.expired()


def test_hardware_reset_and_power_loss() -> None:
    clock = ManualClock()
    hw = Hardware(sim_board, clock, rtc_lock_seconds=500)
    hw.watchdog.start(1000)
    hw.bolt.drive(+1)
    hw.power_state(hal_mod.POWER_MOTOR)
    hw.reset()
    assert hw.bolt.direction == 0 and not hw.watchdog.running
    assert hw.rtc.now() == 500  # a reset keeps the RTC
    assert hw.power.state == hal_mod.POWER_CONNECTED
    assert hw.power_loss() is True  # the sim board has no backup cell
    assert hw.rtc.now() == 0


# --- board files --------------------------------------------------------------------
@pytest.mark.parametrize("board", [sim_board, esp32c3_devkit, pico_w])
def test_board_files_are_complete(board) -> None:
    for state in hal_mod.POWER_STATES:
        assert board.CURRENT_MA[state] > 0
    for pin in ("motor_in1", "motor_in2", "bolt_retracted", "bolt_thrown", "door_closed",
                "button", "led", "buzzer", "battery_adc"):
        assert pin in board.PINS
    size = board.FLASH_SIZE
    bs = board.FLASH_BLOCK_SIZE
    regions = [board.FS_REGION, board.LOG_REGION]
    for off, n in regions:
        assert off % bs == 0 and n % bs == 0 and off + n <= size
    (a, an), (b, bn) = sorted(regions)
    assert a + an <= b  # no overlap
    assert board.CAPABILITIES["ble"] is True
    assert board.BATTERY["critical_mv"] < board.BATTERY["low_mv"]
    Hardware(board, ManualClock())  # every figure the simulator needs is there


# --- the board runner: resets on the same flash --------------------------------------
class FakeApp:
    """A stand-in firmware: records each boot, optionally feeds the watchdog,
    and leaves a child task running (which a reset must cancel)."""

    def __init__(self, feed: bool = True, crash_on_boot: int | None = None) -> None:
        self.feed = feed
        self.crash_on_boot = crash_on_boot
        self.causes: list[int] = []
        self.hals: list = []
        self.children: list[asyncio.Task] = []
        self.booted = asyncio.Event()

    async def main(self, hal, stop_event=None) -> None:
        self.causes.append(hal.reset_cause())
        self.hals.append(hal)
        if self.crash_on_boot == len(self.causes):
            raise RuntimeError("firmware bug")
        fs = hal.config_fs()
        with fs.open("/boots", "wb") as f:
            f.write(bytes([len(self.causes)]))
        hal.watchdog_start(500)
        self.children.append(asyncio.create_task(asyncio.sleep(3600)))
        self.booted.set()
        while not stop_event.is_set():
            if self.feed:
                hal.watchdog_feed()
            await asyncio.sleep(0.01)


async def wait_for(cond, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        if loop.time() > end:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def run_board(tmp_path, app: FakeApp, scenario, clock=None, **kw) -> object:
    from simulator.board import SimBoard

    async def go():
        board = SimBoard(str(tmp_path / "state"), app=app.main, clock=clock,
                         serial=False, ble_port=None, **kw)
        await board.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(board.run(stop))
        try:
            await scenario(board)
        finally:
            stop.set()
            await asyncio.wait_for(runner, 5)
            await board.close()
        return board

    return asyncio.run(go())


def test_board_restarts_firmware_after_watchdog_soft_reset_and_power_cut(tmp_path) -> None:
    clock = ManualClock()
    app = FakeApp(feed=False)

    async def scenario(board) -> None:
        await wait_for(lambda: len(app.causes) == 1 and app.booted.is_set())
        assert not board.hw.watchdog.expired()
        clock.advance(0.6)  # not fed for longer than its 500 ms
        await wait_for(lambda: len(app.causes) == 2)
        assert app.children[0].cancelled()  # the old boot's tasks are gone
        with pytest.raises(BoardReset):
            app.hals[0].motor(1)  # the old HAL is dead
        await wait_for(lambda: len(app.children) == 2)
        with pytest.raises(BoardReset):
            app.hals[1].reset()
        await wait_for(lambda: len(app.causes) == 3)
        board.hw.rtc.set(12345)
        await wait_for(lambda: len(app.children) == 3)
        board.flash.cut_at(0)  # the next flash write loses power
        app.hals[2].config_fs().open("/x", "wb").close()

    # The last write above raises PowerCut in the test itself, like a firmware
    # task would see it; the board sees the power gone and reboots.
    async def guarded(board) -> None:
        try:
            await scenario(board)
        except BaseException as e:  # noqa: BLE001
            if type(e).__name__ != "PowerCut":
                raise
        await wait_for(lambda: len(app.causes) == 4)

    board = run_board(tmp_path, app, guarded, clock=clock)
    assert app.causes == [hal_mod.RESET_POWER_ON, hal_mod.RESET_WATCHDOG, hal_mod.RESET_SOFT,
                          hal_mod.RESET_POWER_ON]
    assert board.hw.rtc.lost  # power loss without a backup cell
    assert [c for c, _ in board.boots] == app.causes
    assert os.path.getsize(board.flash_path) == sim_board.FLASH_SIZE
    assert os.path.exists(board.hardware_path)


def test_flash_survives_a_restart_of_the_simulator(tmp_path) -> None:
    app = FakeApp()

    async def scenario(board) -> None:
        await wait_for(app.booted.is_set)

    run_board(tmp_path, app, scenario)
    app2 = FakeApp()

    async def check(board) -> None:
        await wait_for(app2.booted.is_set)
        # The first boot of this run found the file the last run wrote, and
        # wrote its own (1) over it: the same littlefs, mounted again.
        assert app2.hals[0].config_fs().open("/boots", "rb").read() == b"\x01"
        assert "boots" in app2.hals[0].config_fs().listdir("/")

    run_board(tmp_path, app2, check)
    assert app2.causes == [hal_mod.RESET_POWER_ON]


def test_crashed_firmware_halts_until_the_watchdog(tmp_path, capsys) -> None:
    clock = ManualClock()
    app = FakeApp(crash_on_boot=2, feed=False)

    async def scenario(board) -> None:
        await wait_for(app.booted.is_set)
        clock.advance(1)  # watchdog: boot 2 crashes at once
        await wait_for(lambda: len(app.causes) == 2)
        await wait_for(lambda: board.crashes == 1)
        await asyncio.sleep(0.1)
        assert len(app.causes) == 2  # halted: nothing runs
        board.hw.watchdog.start(100)  # (the watchdog boot 1 started keeps running on a board)
        clock.advance(1)
        await wait_for(lambda: len(app.causes) == 3)

    run_board(tmp_path, app, scenario, clock=clock)
    assert "firmware bug" in capsys.readouterr().err
    assert app.causes[1:] == [hal_mod.RESET_WATCHDOG, hal_mod.RESET_WATCHDOG]


def test_one_simulator_per_state_directory(tmp_path) -> None:
    from simulator.board import BoardError, SimBoard

    async def go() -> None:
        a = SimBoard(str(tmp_path / "s"), serial=False, ble_port=None)
        await a.start()
        try:
            b = SimBoard(str(tmp_path / "s"), serial=False, ble_port=None)
            with pytest.raises(BoardError, match="in use"):
                await b.start()
        finally:
            await a.close()

    asyncio.run(go())


def test_real_firmware_boots_on_the_simulated_board(tmp_path) -> None:
    """The real firmware.app.main on SimBoard, in process: it starts its
    watchdog, advertises, and comes back after a watchdog reset."""
    pytest.importorskip("firmware.app")
    from simulator.board import SimBoard

    clock = ManualClock()

    async def go() -> SimBoard:
        board = SimBoard(str(tmp_path / "fw"), clock=clock, auto_button=True)
        await board.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(board.run(stop))
        try:
            await wait_for(lambda: board.hw.watchdog.running and board.hw.advertised)
            assert board.hw.power.state == hal_mod.POWER_ADVERTISING
            timeout = board.hw.watchdog.timeout_s
            clock.advance(timeout + 1)  # longer than the watchdog waits, with no feed between
            await wait_for(lambda: len(board.boots) == 2)
            await wait_for(lambda: board.hw.watchdog.running)
        finally:
            stop.set()
            await asyncio.wait_for(runner, 10)
            await board.close()
        return board

    board = asyncio.run(go())
    assert [c for c, _ in board.boots] == [hal_mod.RESET_POWER_ON, hal_mod.RESET_WATCHDOG]
    assert board.hw.bolt.thrown() and board.hw.door.closed()


# --- SimHAL over the hardware ---------------------------------------------------------
def test_simhal_maps_the_hal_onto_the_hardware() -> None:
    from simulator.hal import SimHAL

    clock = ManualClock(100.0)
    hw = Hardware(sim_board, clock, rtc_lock_seconds=1000)
    resets: list[int] = []
    hal = SimHAL(hw, reset_cause=hal_mod.RESET_WATCHDOG, on_reset=resets.append)
    assert isinstance(hal, hal_mod.HAL) and hal.board_name == "sim"
    assert hal.reset_cause() == hal_mod.RESET_WATCHDOG
    assert hal.ticks_ms() == 0
    clock.advance(1.5)
    assert hal.ticks_ms() == 1500 and hal.rtc_now() == 1001
    hal.rtc_set(50)
    assert hw.rtc.now() == 50
    assert hal.battery_low_mv == sim_board.BATTERY["low_mv"]
    assert hal.battery_critical_mv == sim_board.BATTERY["critical_mv"]
    hw.battery.set_level("low")
    assert hal.battery_critical_mv < hal.battery_mv() <= hal.battery_low_mv
    assert hal.bolt_thrown() and hal.door_closed() and not hal.button_pressed()
    hal.power_state(hal_mod.POWER_MOTOR)
    hal.motor(1)
    clock.advance(sim_board.MOTOR["travel_s"])
    hal.motor(0)
    assert hal.bolt_retracted() and hw.power.state == hal_mod.POWER_MOTOR
    hal.indicate("ok")
    assert hw.indicator.state == "ok"
    hal.watchdog_start(1000)
    assert hw.watchdog.running
    hal.ble_advertise("lock-1", 0)
    assert hw.advertised == ("lock-1", 0)
    assert len(hal.random_bytes(16)) == 16 and hal.random_bytes(16) != hal.random_bytes(16)
    with pytest.raises(OSError):
        hal.config_fs()  # this HAL was given no flash
    with pytest.raises(BoardReset):
        hal.reset()
    assert resets == [hal_mod.RESET_SOFT]
    with pytest.raises(BoardReset):
        hal.motor(-1)  # the boot is over
