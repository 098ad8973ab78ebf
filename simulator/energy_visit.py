"""Step 1 of the energy report (simulator/energy.py): measure one visit.

The real firmware (firmware.app on simulator.hal.SimHAL and the virtual
hardware) runs in VIRTUAL time: an asyncio loop whose clock jumps to the next
timer instead of waiting, so minutes of firmware time take a fraction of a
second. The lock is commissioned over an in-memory serial link, left idle,
visited once over an in-memory BLE link (connect, hello, open request, unlock,
door opened and closed, relock, disconnect) and left idle again. measure()
returns the seconds per power state the firmware accounted, what the hardware
saw, the motor's charge and the timer wake-ups; simulator/energy.py prices them.
"""

from __future__ import annotations

import asyncio
from types import ModuleType

from firmware.hal import POWER_ADVERTISING, POWER_CONNECTED, POWER_MOTOR, POWER_SLEEP, POWER_STATES
from protocol import cose, keys, reasons
from protocol import messages as msg
from protocol import token as tok
from simulator.hardware import Hardware, ManualClock
from simulator.memlock import MemLock, MemLockError
from simulator.vtime import Stalled, VirtualLoop

# --- the visit script: the key and the person at the door (ESTIMATES) --------
DISCONNECT_AFTER_S = 0.1  # the key drops the link this long after the answer
DOOR_OPEN_AFTER_S = 3.0  # the person opens the door this long after the answer
DOOR_HELD_OPEN_S = 5.0  # ... and closes it behind them this long after
BOOT_SETTLE_S = 5.0
IDLE_BEFORE_S = 120.0  # idle measured after commissioning, before any visit
IDLE_AFTER_S = 3600.0  # idle measured after the visit: one idle hour (wakeups_per_hour)
RELOCK_WAIT_S = 120.0  # give up waiting for the relock after this long

COMMISSION_TIME = 1768464000  # 2026-01-15T08:00:00Z (POSIX): any fixed time
LOCK_ID = "energy-lock"
ISSUER = "energy-report"
SECRET = bytes(range(32))  # a fixed test secret: nothing leaves this process


class EnergyError(Exception):
    """The measurement could not be made (one-line message)."""


def mix_of(seconds: dict[str, float]) -> dict[str, float]:
    total = sum(seconds.values())
    return {s: (seconds.get(s, 0.0) / total if total else 0.0) for s in POWER_STATES}


# --- the measurement ------------------------------------------------------------

def _diff(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {s: after[s] - before[s] for s in POWER_STATES}


def _motor_s(hw: Hardware) -> float:
    return hw.bolt.run_s + hw.bolt.stall_s


def _grant(cti: bytes) -> tuple[bytes, bytes]:
    now = COMMISSION_TIME
    payload = tok.encode_claims(ISSUER, "staff-energy", LOCK_ID, now + 8 * 3600, now - 600,
                                now - 600, cti, tok.SCOPE_OPEN)
    token = cose.mac0_create(payload, keys.token_mac_key(SECRET))
    return token, keys.pop_key(SECRET, cti)


async def _visit(lock: MemLock, timeline: list) -> dict:
    """One visit; the seconds per state the firmware accounted, and what the
    hardware saw."""
    hw, ble, clock = lock.hw, lock.ble, lock.clock
    t0 = clock.now()
    fw0 = hw.power.seconds()
    motor0 = _motor_s(hw)
    run0, stall0 = hw.bolt.run_s, hw.bolt.stall_s
    charge0 = hw.bolt.charge_mas()
    mark = len(timeline)
    key = lock.connect()
    token, pop = _grant(bytes(16))
    outcome, authenticated, _seq = await lock.request(key, token, pop)
    if outcome != reasons.ALLOW or not authenticated:
        raise EnergyError(f"the lock refused the visit: {reasons.name(outcome)}")
    t_answer = clock.now()
    retracted = hw.bolt.retracted()
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
    # "Door opened": the end of the first motor run of the visit (the unlock
    # stroke stops when the firmware sees the bolt withdrawn).
    states = timeline[mark:]
    t_open = t_answer
    for i, (_t, state) in enumerate(states):
        if state == POWER_MOTOR:
            t_open = states[i + 1][0] if i + 1 < len(states) else t_answer
            break
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
        # Both strokes of the visit (unlock and relock): moving, and driven
        # against the end stop until the firmware saw it and stopped.
        "motor_run_s": hw.bolt.run_s - run0,
        "motor_stall_s": hw.bolt.stall_s - stall0,
        # From the key's connection to the lock's answer (sent once the bolt
        # is withdrawn): the exchange part of the time to open.
        "connect_to_answer_s": t_answer - t0,
        "connect_to_open_s": t_open - t0,
        "retracted_at_answer": retracted,
        "notify_bytes": ble.notify_bytes,
        "link_open_s": link_s,
        "door": {"opened_after_answer_s": DOOR_OPEN_AFTER_S, "held_open_s": DOOR_HELD_OPEN_S},
        "power_states": [[round(t - t0, 3), s] for t, s in timeline[mark:]],
    }


async def _idle(hw: Hardware, loop: VirtualLoop, clock: ManualClock, seconds: float) -> dict:
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
            "wakeups_per_hour": fires * 3600.0 / elapsed if elapsed else 0.0,
            "wake_instants": instants,
            "wake_instants_per_s": instants / elapsed if elapsed else 0.0}


async def _scenario(board: ModuleType, loop: VirtualLoop, clock: ManualClock) -> dict:
    lock = MemLock(board, clock, loop)
    hw = lock.hw
    timeline: list[tuple[float, str]] = []
    accounted = hw.power_state

    def traced(state: str) -> None:
        timeline.append((clock.now(), state))
        accounted(state)

    hw.power_state = traced  # type: ignore[method-assign]
    try:
        await lock.start(BOOT_SETTLE_S)
        await asyncio.wait_for(lock.commission(LOCK_ID, SECRET, ISSUER, COMMISSION_TIME), 120.0)
        await asyncio.sleep(BOOT_SETTLE_S)
        before = await _idle(hw, loop, clock, IDLE_BEFORE_S)
        visit = await _visit(lock, timeline)
        after = await _idle(hw, loop, clock, IDLE_AFTER_S)
    finally:
        await lock.stop()
    return {"idle_before_visit": before, "visit": visit, "idle_after_visit": after}


def measure(board: ModuleType) -> dict:
    """Run the firmware on `board` for one visit and idle spells (virtual time)."""
    clock = ManualClock()
    loop = VirtualLoop(clock)
    try:
        return loop.run_until_complete(_scenario(board, loop, clock))
    except (Stalled, MemLockError) as e:
        raise EnergyError(str(e)) from None
    finally:
        loop.close()
