"""Energy report: expected battery life from what the firmware really does.

    python -m simulator energy --board NAME|all [--opens-per-day N] [--days D]
                               [--battery-mah MAH] [--json]

How the figure is made, so it can be checked:

1. Measure. The real firmware (firmware.app on simulator.hal.SimHAL and the
   virtual hardware) runs in VIRTUAL time: an asyncio loop whose clock jumps
   to the next timer instead of waiting, so minutes of firmware time take a
   fraction of a second. The lock is commissioned over its serial port, left
   idle, visited once over BLE (connect, hello, open request, unlock, door
   opened and closed, relock, disconnect) and left idle again. The seconds
   per power state come from the board's power account (the states the
   firmware sets with hal.power_state), the motor's charge from the bolt
   model, and the number of times the firmware's timers wake the CPU from
   the loop itself. What the hardware saw (link open, motor driven) is
   recorded alongside, as a check on the firmware's own accounting.
2. Extrapolate. A day is N measured visits plus idle at the measured idle
   mix: one visit and some idle minutes are simulated, not a whole day.
3. Price. Each state at the board's current (boards/*.py CURRENT_MA), plus
   the motor's own charge, plus the always-on drains (STATIC_MA), against
   the pack's capacity derated for the usable fraction, cold and
   self-discharge (BATTERY, BATTERY_DERATING).

Two variants per board: "today" (the CPU stays awake while advertising, as
MicroPython's stock BLE runs) and a clearly labelled WHAT-IF in which the
port sleeps between advertising events (SLEEP_BETWEEN_ADVERTS), priced with
the wake-ups the firmware's timers actually cause.

Exit status: 0 with a report, 2 for bad arguments (one line on stderr),
1 if the measurement itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import math
import pkgutil
import selectors
import sys
from types import ModuleType
from typing import Any

import boards
from firmware import hal as hal_mod
from firmware.hal import POWER_ADVERTISING, POWER_CONNECTED, POWER_MOTOR, POWER_SLEEP, POWER_STATES
from protocol import cose, frames, keys, reasons
from protocol import messages as msg
from protocol import token as tok
from simulator import flash as flash_mod
from simulator.hal import SimHAL
from simulator.hardware import Hardware, ManualClock

PROG = "python -m simulator energy"
DAY_S = 86400.0
DEFAULT_OPENS = 6  # home care: morning, lunch, evening, night patrol, two extra
DEFAULT_DAYS = 365  # the municipal requirement: a year per battery
MAX_OPENS = 1000

# --- the visit script: the key and the person at the door (ESTIMATES) --------
BLE_INTERVAL_S = 0.030  # one GATT write/notification per connection interval
BLE_CHUNK = 244  # bytes per GATT write/notification (ATT_MTU 247 - 3)
SERIAL_LATENCY_S = 0.001
DISCONNECT_AFTER_S = 0.1  # the key drops the link this long after the answer
DOOR_OPEN_AFTER_S = 3.0  # the person opens the door this long after the answer
DOOR_HELD_OPEN_S = 5.0  # ... and closes it behind them this long after
BOOT_SETTLE_S = 5.0
IDLE_BEFORE_S = 120.0  # idle measured after commissioning, before any visit
IDLE_AFTER_S = 600.0  # idle measured after the visit (10 battery checks)
RELOCK_WAIT_S = 120.0  # give up waiting for the relock after this long

COMMISSION_TIME = 1768464000  # 2026-01-15T08:00:00Z (POSIX): any fixed time
LOCK_ID = "energy-lock"
ISSUER = "energy-report"
SECRET = bytes(range(32))  # a fixed test secret: nothing leaves this process

VARIANT_TODAY = "today"
VARIANT_WHAT_IF = "what_if_sleep_between_adverts"
VARIANT_TITLES = {
    VARIANT_TODAY: "today (as the firmware runs)",
    VARIANT_WHAT_IF: "WHAT-IF: port sleeps between adverts",
}


class EnergyError(Exception):
    """The measurement could not be made (one-line message)."""


class UsageError(Exception):
    """Bad arguments (one-line message, exit status 2)."""


class DayOverflow(ValueError):
    """More visits than fit in a day."""


# --- arithmetic (pure functions; tests check them against hand sums) ---------

def day_seconds(visit_s: dict[str, float], idle_mix: dict[str, float],
                opens_per_day: float) -> dict[str, float]:
    """Seconds per state in a day: `opens_per_day` visits of `visit_s`
    seconds per state, and the rest of the day shared out by `idle_mix`
    (fractions summing to 1)."""
    busy = opens_per_day * sum(visit_s.values())
    if busy > DAY_S:
        raise DayOverflow(f"{opens_per_day:g} visits of {sum(visit_s.values()):.1f} s "
                         f"do not fit in a day")
    idle = DAY_S - busy
    total_mix = sum(idle_mix.values())
    if total_mix <= 0:
        raise ValueError("the idle mix is empty")
    return {s: opens_per_day * visit_s.get(s, 0.0) + idle * idle_mix.get(s, 0.0) / total_mix
            for s in POWER_STATES}


def charge_per_day(state_s: dict[str, float], currents_ma: dict[str, float],
                   motor_mas_per_open: float, opens_per_day: float,
                   static_ma: dict[str, float]) -> dict[str, Any]:
    """mAh per day: per state, the motor winding, the always-on drains, total."""
    states = {s: state_s.get(s, 0.0) * currents_ma[s] / 3600.0 for s in POWER_STATES}
    motor = motor_mas_per_open * opens_per_day / 3600.0
    static = {k: v * 24.0 for k, v in static_ma.items()}
    total = sum(states.values()) + motor + sum(static.values())
    return {"states": states, "motor_winding": motor, "static": static, "total": total,
            "average_ma": total / 24.0}


def usable_fraction(curve, low_mv: float) -> float:
    """Fraction of the capacity drawn before the pack falls to `low_mv`
    (the battery-change warning), read off a (fraction remaining, mV) curve."""
    pts = sorted((float(f), float(mv)) for f, mv in curve)
    for (f0, v0), (f1, v1) in zip(pts, pts[1:], strict=False):
        if v0 <= low_mv <= v1:
            remaining = f0 if v1 == v0 else f0 + (f1 - f0) * (low_mv - v0) / (v1 - v0)
            return 1.0 - remaining
    return 1.0 if low_mv < pts[0][1] else 0.0


def effective_capacity(capacity_mah: float, usable: float, cold: float) -> float:
    return capacity_mah * usable * cold


def self_discharge_per_day(capacity_mah: float, per_year: float) -> float:
    return capacity_mah * per_year / 365.0


def life_days(effective_mah: float, daily_mah: float, self_discharge_mah_day: float) -> float:
    drain = daily_mah + self_discharge_mah_day
    return math.inf if drain <= 0 else effective_mah / drain


def year_budget_ma(effective_mah: float, self_discharge_mah_day: float,
                   days: float = 365.0) -> float:
    """The average current (mA) that makes the battery last `days`."""
    return max(0.0, (effective_mah / days - self_discharge_mah_day) / 24.0)


def sleep_between_adverts_ma(floor_ma: float, adv_interval_ms: float, adv_event_mas: float,
                             wakeups_per_s: float, wake_mas: float) -> dict[str, float]:
    """Average idle current if the CPU slept between advertising events."""
    adverts = adv_event_mas * 1000.0 / adv_interval_ms
    wakes = wake_mas * wakeups_per_s
    return {"floor": floor_ma, "advertising_events": adverts, "firmware_wakeups": wakes,
            "total": floor_ma + adverts + wakes}


def mix_of(seconds: dict[str, float]) -> dict[str, float]:
    total = sum(seconds.values())
    return {s: (seconds.get(s, 0.0) / total if total else 0.0) for s in POWER_STATES}


# --- virtual time ---------------------------------------------------------------

class _Stalled(Exception):
    pass


class _VirtualSelector(selectors.BaseSelector):
    """Real file descriptors are polled without blocking; when nothing is
    ready the clock jumps to the next timer instead of waiting for it. Each
    jump is one wake-up of the CPU by a timer."""

    def __init__(self, clock: ManualClock) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock
        self.wakeups = 0

    def register(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj):  # type: ignore[no-untyped-def]
        return self._real.unregister(fileobj)

    def modify(self, fileobj, events, data=None):  # type: ignore[no-untyped-def]
        return self._real.modify(fileobj, events, data)

    def get_map(self):  # type: ignore[no-untyped-def]
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout=None):  # type: ignore[no-untyped-def]
        ready = self._real.select(0)
        if ready:
            return ready
        if timeout is None:
            raise _Stalled("nothing is scheduled: the simulation would wait forever")
        if timeout > 0:
            self._clock.advance(timeout)
            self.wakeups += 1
        return []


class _VirtualLoop(asyncio.SelectorEventLoop):
    def __init__(self, clock: ManualClock) -> None:
        self._vclock = clock
        self.vselector = _VirtualSelector(clock)
        super().__init__(self.vselector)

    def time(self) -> float:
        return self._vclock.now()

    def call_at(self, when, callback, *args, context=None):  # type: ignore[override, no-untyped-def]
        """Count every timer that fires (a cancelled one never wakes the CPU)."""
        def fired(*a):  # type: ignore[no-untyped-def]
            self.timer_fires += 1
            return callback(*a)
        return super().call_at(when, fired, *args, context=context)

    timer_fires = 0


# --- in-memory links (BLE and serial) -----------------------------------------

class _MemLink(hal_mod.Link):
    """One end of a duplex byte pipe. What one end sends reaches the other
    in chunks of `chunk` bytes, one per `latency` seconds, in order."""

    def __init__(self, latency: float, chunk: int) -> None:
        self.latency = latency
        self.chunk = chunk
        self.peer: _MemLink | None = None
        self.closed = False
        self.peer_gone = False
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._free_at = 0.0

    @staticmethod
    def pair(latency: float, chunk: int) -> tuple[_MemLink, _MemLink]:
        a, b = _MemLink(latency, chunk), _MemLink(latency, chunk)
        a.peer, b.peer = b, a
        return a, b

    def _schedule(self, item: bytes) -> None:
        loop = asyncio.get_running_loop()
        self._free_at = max(loop.time(), self._free_at) + self.latency
        assert self.peer is not None
        loop.call_at(self._free_at, self.peer._inbox.put_nowait, item)

    async def recv(self) -> bytes:
        if self.closed or self.peer_gone:
            return b""
        data = await self._inbox.get()
        if not data:
            self.peer_gone = True
        return data

    async def send(self, data: bytes) -> None:
        if self.closed or self.peer_gone:
            raise ConnectionResetError("the other end has gone")
        data = bytes(data)
        for i in range(0, len(data), self.chunk):
            self._schedule(data[i:i + self.chunk])

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._schedule(b"")


class _MemBle:
    """Stands in for simulator.endpoints.BleServer (what SimHAL uses of it)."""

    def __init__(self) -> None:
        self._incoming: asyncio.Queue = asyncio.Queue()
        self.advertisement: tuple | None = None
        self.connections = 0

    def connect(self) -> _MemLink:
        lock_end, key_end = _MemLink.pair(BLE_INTERVAL_S, BLE_CHUNK)
        self._incoming.put_nowait(lock_end)
        return key_end

    async def accept(self) -> _MemLink:
        link = await self._incoming.get()
        self.connections += 1
        return link

    def advertise(self, lock_id: Any, status: Any) -> None:
        self.advertisement = (lock_id, status)

    def drop_active(self) -> None:
        pass


class _MemSerial:
    """Stands in for simulator.endpoints.PtyEndpoint."""

    def __init__(self) -> None:
        self._lock_end, self.host_end = _MemLink.pair(SERIAL_LATENCY_S, 4096)

    def link(self) -> _MemLink:
        return self._lock_end


class _Peer:
    """Messages over a link, as a key or the installer's tool sends them."""

    def __init__(self, link: _MemLink) -> None:
        self.link = link
        self._decoder = frames.Decoder()
        self._pending: list[bytes] = []

    async def send(self, mtype: int, fields: dict) -> None:
        await self.link.send(frames.encode(msg.encode(mtype, fields)))

    async def recv(self, expect: tuple[int, ...], timeout: float = 120.0
                   ) -> tuple[int, dict]:
        while not self._pending:
            data = await asyncio.wait_for(self.link.recv(), timeout)
            if not data:
                raise EnergyError("the lock closed the link")
            self._pending.extend(self._decoder.feed(data))
        return msg.decode(self._pending.pop(0), expect)


# --- the measurement ------------------------------------------------------------

def _region(flash: flash_mod.FlashDevice, region: tuple[int, int], name: str
            ) -> flash_mod.BlockDevice:
    off, size = region
    bs = flash.erase_size
    return flash_mod.BlockDevice(flash, off // bs, size // bs, name=name)


def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {s: after[s] - before[s] for s in POWER_STATES}


def _motor_s(hw: Hardware) -> float:
    return hw.bolt.run_s + hw.bolt.stall_s


async def _commission(serial: _MemSerial) -> None:
    tool = _Peer(serial.host_end)
    await tool.send(msg.GET_HELLO, {})
    _, hello = await tool.recv((msg.HELLO,))
    await tool.send(msg.COMMISSION, {1: hello[2], 2: LOCK_ID, 3: SECRET, 4: tok.SUITE_HMAC,
                                     5: COMMISSION_TIME, 6: ISSUER, 7: "apartment"})
    mtype, f = await tool.recv((msg.PRESS_BUTTON, msg.ADMIN_RESULT, msg.ERROR))
    if mtype == msg.PRESS_BUTTON:  # the virtual installer presses it (auto button)
        mtype, f = await tool.recv((msg.ADMIN_RESULT, msg.ERROR))
    outcome = f[1] if mtype == msg.ERROR else f[2]
    if outcome != reasons.ALLOW:
        raise EnergyError(f"commissioning was refused: {reasons.name(outcome)}")


def _grant(cti: bytes) -> tuple[bytes, bytes]:
    now = COMMISSION_TIME
    payload = tok.encode_claims(ISSUER, "staff-energy", LOCK_ID, now + 8 * 3600, now - 600,
                                now - 600, cti, tok.SCOPE_OPEN)
    token = cose.mac0_create(payload, keys.token_mac_key(SECRET))
    return token, keys.pop_key(SECRET, cti)


async def _visit(hw: Hardware, ble: _MemBle, clock: ManualClock, timeline: list) -> dict:
    """One visit; the seconds per state the firmware accounted, and what the
    hardware saw."""
    t0 = clock.now()
    fw0 = hw.power.seconds()
    motor0 = _motor_s(hw)
    charge0 = hw.bolt.charge_mas()
    mark = len(timeline)
    key = _Peer(ble.connect())
    _, hello = await key.recv((msg.HELLO,))
    if hello[1] != LOCK_ID:
        raise EnergyError("the lock did not announce the commissioned id")
    token, pop = _grant(bytes(16))
    nonce = hello[2]
    await key.send(msg.OPEN, {1: nonce, 2: token, 3: tok.SCOPE_OPEN,
                              4: msg.open_proof(pop, nonce, LOCK_ID, tok.SCOPE_OPEN, token)})
    mtype, res = await key.recv((msg.RESULT, msg.ERROR))
    outcome = res[1] if mtype == msg.ERROR else res[2]
    if outcome != reasons.ALLOW:
        raise EnergyError(f"the lock refused the visit: {reasons.name(outcome)}")
    t_answer = clock.now()
    await key.recv((msg.HELLO,))  # the lock is ready for another request
    await asyncio.sleep(max(0.0, t_answer + DISCONNECT_AFTER_S - clock.now()))
    key.link.close()
    t_close = clock.now()
    motor_close = _motor_s(hw)
    await asyncio.sleep(max(0.0, t_answer + DOOR_OPEN_AFTER_S - clock.now()))
    if not hw.door.open():
        raise EnergyError("the door could not be opened after the unlock")
    await asyncio.sleep(DOOR_HELD_OPEN_S)
    if not hw.door.close():
        raise EnergyError("the door could not be closed")
    t_closed = clock.now()
    while not (hw.bolt.thrown() and hw.bolt.direction == 0
               and hw.power.state != POWER_MOTOR):
        if clock.now() - t_closed > RELOCK_WAIT_S:
            raise EnergyError("the lock did not relock after the door closed")
        await asyncio.sleep(0.01)
    t_end = clock.now()
    fw = _diff(hw.power.seconds(), fw0)
    total = t_end - t0
    motor_total = _motor_s(hw) - motor0
    motor_in_link = motor_close - motor0
    link_s = t_close - t0
    observed = {POWER_SLEEP: 0.0, POWER_MOTOR: motor_total,
                POWER_CONNECTED: link_s - motor_in_link,
                POWER_ADVERTISING: total - link_s - (motor_total - motor_in_link)}
    return {
        "seconds": total,
        "firmware_states_s": fw,
        "observed_states_s": observed,
        "motor_winding_mas": hw.bolt.charge_mas() - charge0,
        "link_open_s": link_s,
        "door": {"opened_after_answer_s": DOOR_OPEN_AFTER_S, "held_open_s": DOOR_HELD_OPEN_S},
        "power_states": [[round(t - t0, 3), s] for t, s in timeline[mark:]],
    }


async def _idle(hw: Hardware, loop: _VirtualLoop, clock: ManualClock, seconds: float) -> dict:
    fw0 = hw.power.seconds()
    motor0 = _motor_s(hw)
    w0 = loop.vselector.wakeups
    f0 = loop.timer_fires
    t0 = clock.now()
    await asyncio.sleep(seconds)
    elapsed = clock.now() - t0
    fw = _diff(hw.power.seconds(), fw0)
    # The report's own sleep() is one timer of its own: not the firmware's.
    instants = max(0, loop.vselector.wakeups - w0 - 1)
    fires = max(0, loop.timer_fires - f0 - 1)
    if _motor_s(hw) - motor0 > 0:
        raise EnergyError("the motor ran while the lock was idle")
    return {"seconds": elapsed, "firmware_states_s": fw, "firmware_mix": mix_of(fw),
            "observed_mix": mix_of({POWER_ADVERTISING: elapsed}),
            # Each timer that fires counts as a wake-up of its own: on a board the
            # firmware's timers drift apart; in virtual time some fall together
            # (`wake_instants` counts those once).
            "wakeups": fires, "wakeups_per_s": fires / elapsed if elapsed else 0.0,
            "wake_instants": instants,
            "wake_instants_per_s": instants / elapsed if elapsed else 0.0}


async def _scenario(board: ModuleType, loop: _VirtualLoop, clock: ManualClock) -> dict:
    from firmware import app  # the real application

    hw = Hardware(board, clock, auto_button=True)
    timeline: list[tuple[float, str]] = []
    accounted = hw.power_state

    def traced(state: str) -> None:
        timeline.append((clock.now(), state))
        accounted(state)

    hw.power_state = traced  # type: ignore[method-assign]
    flash = flash_mod.FlashDevice(board.FLASH_SIZE, board.FLASH_BLOCK_SIZE)
    fs = flash_mod.LittleFsFs.mkfs(_region(flash, board.FS_REGION, "fs"))
    log_dev = _region(flash, board.LOG_REGION, "log")
    ble = _MemBle()
    serial = _MemSerial()
    hal = SimHAL(hw, reset_cause=hal_mod.RESET_POWER_ON, config_fs=lambda: fs,
                 log_device=lambda: log_dev, serial=serial, ble=ble)  # type: ignore[arg-type]
    stop = asyncio.Event()
    main = asyncio.ensure_future(app.main(hal, stop))
    try:
        await asyncio.sleep(BOOT_SETTLE_S)
        if main.done():
            main.result()
            raise EnergyError("the firmware stopped at boot")
        await asyncio.wait_for(_commission(serial), 120.0)
        await asyncio.sleep(BOOT_SETTLE_S)
        before = await _idle(hw, loop, clock, IDLE_BEFORE_S)
        visit = await _visit(hw, ble, clock, timeline)
        after = await _idle(hw, loop, clock, IDLE_AFTER_S)
    finally:
        stop.set()
        try:
            await asyncio.wait_for(main, 10.0)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - reported below if it matters
            pass
    if main.done() and not main.cancelled() and main.exception() is not None:
        raise EnergyError(f"the firmware crashed: {main.exception()!r}")
    return {"idle_before_visit": before, "visit": visit, "idle_after_visit": after}


def measure(board: ModuleType) -> dict:
    """Run the firmware on `board` for one visit and idle spells (virtual time)."""
    clock = ManualClock()
    loop = _VirtualLoop(clock)
    try:
        return loop.run_until_complete(_scenario(board, loop, clock))
    except _Stalled as e:
        raise EnergyError(str(e)) from None
    finally:
        loop.close()


# --- the report -----------------------------------------------------------------

def board_names() -> list[str]:
    """Every board module that carries currents (sim first)."""
    names = []
    for info in pkgutil.iter_modules(boards.__path__):
        # manifest.py is a freeze script run by the port's build, not a module.
        if info.ispkg or info.name == "manifest":
            continue
        mod = importlib.import_module(f"boards.{info.name}")
        if hasattr(mod, "CURRENT_MA") and hasattr(mod, "BATTERY"):
            names.append(info.name)
    return sorted(names, key=lambda n: (n != "sim", n))


def load_board(name: str) -> ModuleType:
    if name not in board_names():
        raise UsageError(f"unknown board {name!r} (known: {', '.join(board_names())}, all)")
    return importlib.import_module(f"boards.{name}")


def _variant(state_s: dict[str, float], currents: dict[str, float], motor_mas: float,
             opens: float, static: dict[str, float], eff_mah: float, sd_day: float,
             days: float) -> dict:
    charge = charge_per_day(state_s, currents, motor_mas, opens, static)
    life = life_days(eff_mah, charge["total"], sd_day)
    return {
        "currents_ma": {s: currents[s] for s in POWER_STATES},
        "hours_per_day": {s: state_s[s] / 3600.0 for s in POWER_STATES},
        "mah_per_day": charge["states"],
        "motor_winding_mah_per_day": charge["motor_winding"],
        "static_mah_per_day": charge["static"],
        "total_mah_per_day": charge["total"],
        "average_ma": charge["average_ma"],
        "life_days": life,
        "life_years": life / 365.0,
        "lasts_period": life >= days,
        "packs_for_period": days / life if life > 0 else math.inf,
    }


def report_board(board: ModuleType, opens: float, days: float,
                 battery_mah: float | None = None, measured: dict | None = None) -> dict:
    m = measured if measured is not None else measure(board)
    visit, after, before = m["visit"], m["idle_after_visit"], m["idle_before_visit"]
    idle = after if opens > 0 else before
    batt = board.BATTERY
    derate = getattr(board, "BATTERY_DERATING", {"cold": 1.0, "self_discharge_per_year": 0.0})
    static = dict(getattr(board, "STATIC_MA", {}))
    what = getattr(board, "SLEEP_BETWEEN_ADVERTS", None)
    capacity = float(battery_mah if battery_mah is not None else batt["capacity_mah"])
    usable = usable_fraction(batt["curve"], batt["low_mv"])
    eff = effective_capacity(capacity, usable, derate["cold"])
    sd_day = self_discharge_per_day(capacity, derate["self_discharge_per_year"])
    currents = dict(board.CURRENT_MA)

    today_s = day_seconds(visit["firmware_states_s"], idle["firmware_mix"], opens)
    variants = {VARIANT_TODAY: _variant(today_s, currents, visit["motor_winding_mas"], opens,
                                        static, eff, sd_day, days)}
    idle_parts = None
    if what is not None:
        idle_parts = sleep_between_adverts_ma(what["floor_ma"], what["adv_interval_ms"],
                                              what["adv_event_mas"], idle["wakeups_per_s"],
                                              what["wake_mas"])
        wi_currents = dict(currents, **{POWER_ADVERTISING: idle_parts["total"]})
        wi_s = day_seconds(visit["observed_states_s"], idle["observed_mix"], opens)
        variants[VARIANT_WHAT_IF] = _variant(wi_s, wi_currents, visit["motor_winding_mas"],
                                             opens, static, eff, sd_day, days)
        variants[VARIANT_WHAT_IF]["idle_current_parts_ma"] = idle_parts

    out = {
        "board": board.NAME,
        "description": getattr(board, "DESCRIPTION", ""),
        "opens_per_day": opens,
        "days": days,
        "measured": m,
        "battery": {
            "chemistry": batt.get("chemistry", ""),
            "capacity_mah": capacity,
            "usable_fraction": usable,
            "low_mv": batt["low_mv"],
            "cold_factor": derate["cold"],
            "effective_mah": eff,
            "self_discharge_per_year": derate["self_discharge_per_year"],
            "self_discharge_mah_per_day": sd_day,
            "one_year_budget_ma": year_budget_ma(eff, sd_day),
            "period_budget_ma": year_budget_ma(eff, sd_day, days),
        },
        "variants": variants,
    }
    out["assumptions"] = _assumptions(board, out, idle_parts)
    out["findings"] = _findings(board, out)
    return out


def _fmt_days(d: float) -> str:
    if math.isinf(d):
        return "unlimited"
    return f"{d:,.1f} days ({d / 365.0:.2f} years)"


def _assumptions(board: ModuleType, r: dict, idle_parts: dict | None) -> list[str]:
    name = board.NAME
    m = r["measured"]
    b = r["battery"]
    caps = getattr(board, "CAPABILITIES", {})
    visit = m["visit"]
    idle = m["idle_after_visit"] if r["opens_per_day"] > 0 else m["idle_before_visit"]
    a = [
        "Time per power state is MEASURED: the real firmware (firmware.app on SimHAL and the "
        "virtual hardware) runs in virtual time for one visit and idle spells; a day is "
        f"{r['opens_per_day']:g} such visits plus idle at the measured idle mix "
        f"({idle['seconds']:.0f} s measured "
        f"{'after a visit' if r['opens_per_day'] > 0 else 'before any visit'}), "
        "extrapolated, not a whole simulated day.",
        f"One visit ({visit['seconds']:.1f} s, measured): BLE connect, hello, open request, "
        f"unlock, the key disconnects {DISCONNECT_AFTER_S:g} s after the answer, the door is "
        f"opened {DOOR_OPEN_AFTER_S:g} s after the answer and closed {DOOR_HELD_OPEN_S:g} s "
        "later, the firmware relocks. The key's and the person's timings are ESTIMATES; "
        f"BLE carries one {BLE_CHUNK}-byte write or notification per "
        f"{BLE_INTERVAL_S * 1000:.0f} ms connection interval (ESTIMATE: a negotiated "
        "ATT_MTU of 247; at the default 23 a request takes ~20 writes, about half a second "
        "more connected time per visit).",
        "Each open is one BLE session. Staff leaving by the thumb-turn do not count; if they "
        "lock with the app when they leave, count two opens per visit.",
        "The lock's own computing time is not in the measurement (virtual time stands still "
        "while Python runs): on a board, checking the token adds some tens to hundreds of ms "
        "of connected time per visit (more with the Ed25519 suite): negligible next to idle.",
        f"Currents: boards/{name}.py CURRENT_MA (datasheet rows or ESTIMATES, as marked there): "
        + ", ".join(f"{s} {board.CURRENT_MA[s]:g} mA" for s in POWER_STATES)
        + "; the motor winding as MOTOR (run "
        f"{board.MOTOR['run_ma']:g} mA, stall {board.MOTOR['stall_ma']:g} mA, ESTIMATE), "
        f"{visit['motor_winding_mas'] / 3600.0:.4f} mAh per visit measured.",
        "Pack current = board current (a linear regulator; its quiescent current is not "
        "counted). A buck converter would cut the board's share by roughly "
        "3.3 V / (pack V x efficiency).",
    ]
    static = getattr(board, "STATIC_MA", {})
    if static:
        a.append("Always-on drains (boards/%s.py STATIC_MA, ESTIMATES): " % name
                 + ", ".join(f"{k.replace('_', ' ')} {v:g} mA" for k, v in static.items())
                 + ".")
    a.append(
        f"Battery: {b['chemistry']} {b['capacity_mah']:.0f} mAh (boards/{name}.py, "
        f"ESTIMATE) x usable {b['usable_fraction']:.2f} (to the battery-change warning at "
        f"{b['low_mv']} mV, read off the board's discharge curve) x cold "
        f"{b['cold_factor']:.2f} (ESTIMATE) = {b['effective_mah']:.0f} mAh; self-discharge "
        f"{100 * b['self_discharge_per_year']:g} %/year (ESTIMATE) = "
        f"{b['self_discharge_mah_per_day']:.3f} mAh/day.")
    if not caps.get("can_deep_sleep_between_adverts", False):
        a.append(f"Today: the CPU stays awake while advertising (boards/{name}.py "
                 "CAPABILITIES can_deep_sleep_between_adverts = False: MicroPython's stock "
                 "bluetooth module does not sleep between advertising events), so idle is "
                 f"priced at the '{POWER_ADVERTISING}' current.")
    what = getattr(board, "SLEEP_BETWEEN_ADVERTS", None)
    if what is not None and idle_parts is not None:
        a.append(
            "WHAT-IF (not how the firmware runs today): the port sleeps between advertising "
            f"events. Idle = floor {what['floor_ma']:g} mA + one advertising event every "
            f"{what['adv_interval_ms']:g} ms at {what['adv_event_mas']:g} mA*s "
            f"({idle_parts['advertising_events']:.3f} mA) + {idle['wakeups_per_s']:.2f} "
            "firmware wake-ups/s (measured: every firing of the firmware's timers counted "
            f"on its own; {idle['wake_instants_per_s']:.2f}/s if the timers that fall "
            f"together in virtual time share a wake-up) at {what['wake_mas']:g} "
            f"mA*s ({idle_parts['firmware_wakeups']:.3f} mA) = {idle_parts['total']:.3f} mA "
            f"(boards/{name}.py SLEEP_BETWEEN_ADVERTS, ESTIMATES). The visit keeps today's "
            "connected and motor currents; time per state is as the hardware saw it "
            "(link open, motor driven).")
    extra = getattr(board, "DEVKIT_EXTRA_MA", None)
    if extra:
        today = r["variants"][VARIANT_TODAY]
        d = life_days(b["effective_mah"], today["total_mah_per_day"] + extra * 24.0,
                      b["self_discharge_mah_per_day"])
        a.append(f"Not counted: the development board's own power LED and regulator "
                 f"(DEVKIT_EXTRA_MA {extra:g} mA, ESTIMATE): a product board has neither. "
                 f"The dev board as built, today: {_fmt_days(d)}.")
    return a


def _findings(board: ModuleType, r: dict) -> list[str]:
    m = r["measured"]
    f = []
    after = m["idle_after_visit"]
    stuck = after["firmware_mix"].get(POWER_CONNECTED, 0.0)
    if stuck > 0.01:
        f.append(
            f"The firmware reports '{POWER_CONNECTED}' for {100 * stuck:.0f} % of the idle time "
            "after a visit although no BLE link is open: the power state it sets after the "
            "relock motor run is 'connected', and it stays so until the next connection. "
            "'Today' prices that idle time as the firmware reports it; the what-if uses what "
            "the hardware saw.")
    fw_sleep = (m["visit"]["firmware_states_s"][POWER_SLEEP]
                + after["firmware_states_s"][POWER_SLEEP]
                + m["idle_before_visit"]["firmware_states_s"][POWER_SLEEP])
    if fw_sleep == 0:
        f.append(f"The firmware never enters the '{POWER_SLEEP}' state: idle is always "
                 "advertising.")
    wi = r["variants"].get(VARIANT_WHAT_IF)
    budget = r["battery"]["one_year_budget_ma"]
    today = r["variants"][VARIANT_TODAY]
    f.append(f"One year needs an average of at most {budget:.3f} mA; today the lock draws "
             f"{today['average_ma']:.3f} mA ({today['average_ma'] / budget:.0f}x too much).")
    if wi is not None:
        parts = wi["idle_current_parts_ma"]
        static = sum(getattr(board, "STATIC_MA", {}).values())
        verdict = "reaches" if wi["life_days"] >= 365 else "does not reach"
        f.append(
            f"Even sleeping between advertisements the lock {verdict} a year "
            f"({wi['average_ma']:.3f} mA): sleep floor {parts['floor']:.3f} mA, advertising "
            f"events {parts['advertising_events']:.3f} mA, firmware timer wake-ups "
            f"{parts['firmware_wakeups']:.3f} mA ({after['wakeups_per_s']:.2f}/s), always-on "
            f"drains {static:.3f} mA. Wake-ups would go with interrupts instead of polling "
            "timers; the drains with switched dividers and high-value pull-ups.")
    return f


def render(results: list[dict]) -> str:
    lines: list[str] = []
    for r in results:
        m = r["measured"]
        visit = m["visit"]
        after = m["idle_after_visit"]
        fw = visit["firmware_states_s"]
        lines.append(f"{r['board']}: {r['description']}")
        lines.append(
            f"  measured visit {visit['seconds']:.2f} s: "
            + ", ".join(f"{s} {fw[s]:.2f} s" for s in POWER_STATES if fw[s] > 0)
            + f"; motor winding {visit['motor_winding_mas'] / 3600.0:.4f} mAh")
        for label, idle in (("idle before any visit", m["idle_before_visit"]),
                            ("idle after the visit", after)):
            lines.append(
                f"  measured {label} ({idle['seconds']:.0f} s): "
                + ", ".join(f"{s} {100 * v:.0f} %" for s, v in idle["firmware_mix"].items()
                            if v)
                + f"; the firmware's timers fire {idle['wakeups_per_s']:.2f} times/s")
        lines.append(f"  {r['opens_per_day']:g} opens/day")
        keys_ = list(r["variants"])
        head = f"  {'':<24}" + "".join(f"{VARIANT_TITLES[k]:>40}" for k in keys_)
        lines.append(head)
        lines.append(f"  {'state':<24}" + "".join(
            f"{'mA':>12}{'h/day':>12}{'mAh/day':>16}" for _ in keys_))
        for s in POWER_STATES:
            row = f"  {s:<24}"
            for k in keys_:
                v = r["variants"][k]
                row += (f"{v['currents_ma'][s]:>12.3f}{v['hours_per_day'][s]:>12.3f}"
                        f"{v['mah_per_day'][s]:>16.3f}")
            lines.append(row)
        row = f"  {'motor winding':<24}"
        for k in keys_:
            row += f"{'':>12}{'':>12}{r['variants'][k]['motor_winding_mah_per_day']:>16.3f}"
        lines.append(row)
        for name in r["variants"][VARIANT_TODAY]["static_mah_per_day"]:
            row = f"  {name.replace('_', ' '):<24}"
            for k in keys_:
                v = r["variants"][k]["static_mah_per_day"][name]
                row += f"{v / 24.0:>12.3f}{24.0:>12.3f}{v:>16.3f}"
            lines.append(row)
        row = f"  {'total':<24}"
        for k in keys_:
            v = r["variants"][k]
            row += f"{v['average_ma']:>12.3f}{24.0:>12.3f}{v['total_mah_per_day']:>16.3f}"
        lines.append(row)
        b = r["battery"]
        lines.append(f"  battery {b['capacity_mah']:.0f} mAh -> {b['effective_mah']:.0f} mAh "
                     f"effective, self-discharge {b['self_discharge_mah_per_day']:.3f} mAh/day")
        row = f"  {'expected life':<24}"
        for k in keys_:
            row += f"{_fmt_days(r['variants'][k]['life_days']):>40}"
        lines.append(row)
        row = f"  {'packs for %g days' % r['days']:<24}"  # battery packs used
        for k in keys_:
            v = r["variants"][k]
            row += f"{v['packs_for_period']:>40.1f}"
        lines.append(row)
        lines.append("  assumptions:")
        for i, text in enumerate(r["assumptions"], 1):
            lines.append(f"    {i}. {text}")
        lines.append("  findings:")
        for text in r["findings"]:
            lines.append(f"    - {text}")
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and (math.isinf(obj) or math.isnan(obj)):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


# --- command line ---------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _positive(kind: type, allow_zero: bool = False):  # type: ignore[no-untyped-def]
    def parse(text: str):  # type: ignore[no-untyped-def]
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if math.isnan(v) or math.isinf(v) or v < 0 or (v == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"must be {'zero or more' if allow_zero else 'positive'}, not {text!r}")
        return v
    return parse


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = _Parser(prog=PROG, description="Expected battery life of a lock, from the time the "
                "real firmware spends in each power state and the board's currents.")
    p.add_argument("--board", required=True, metavar="NAME",
                   help=f"a board in boards/ ({', '.join(board_names())}) or 'all'")
    p.add_argument("--opens-per-day", type=_positive(float, allow_zero=True),
                   default=DEFAULT_OPENS, metavar="N",
                   help="door openings a day (default %(default)s)")
    p.add_argument("--days", type=_positive(float), default=DEFAULT_DAYS,
                   metavar="D", help="period to check the battery against (default "
                   "%(default)s)")
    p.add_argument("--battery-mah", type=_positive(float), default=None,
                   metavar="MAH", help="pack capacity before derating (default: the board's)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    if args.opens_per_day > MAX_OPENS:
        raise UsageError(f"--opens-per-day must be at most {MAX_OPENS}")
    if args.board != "all":
        load_board(args.board)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
    except UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return int(e.code or 0)
    names = board_names() if args.board == "all" else [args.board]
    results = []
    try:
        for name in names:
            results.append(report_board(load_board(name), args.opens_per_day, args.days,
                                        args.battery_mah))
    except EnergyError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except DayOverflow as e:  # an argument that does not fit the measured visit
        print(f"{PROG}: error: --opens-per-day: {e}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(_json_safe({"boards": results}), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
