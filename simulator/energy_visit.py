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
from typing import Any

from firmware import hal as hal_mod
from firmware.hal import POWER_ADVERTISING, POWER_CONNECTED, POWER_MOTOR, POWER_SLEEP, POWER_STATES
from protocol import cose, frames, keys, keyside, reasons
from protocol import messages as msg
from protocol import token as tok
from simulator import flash as flash_mod
from simulator.hal import SimHAL
from simulator.hardware import Hardware, ManualClock
from simulator.lfs import LittleFsFs
from simulator.vtime import Stalled, VirtualLoop

# --- the visit script: the key and the person at the door (ESTIMATES) --------
BLE_INTERVAL_S = 0.030  # one GATT write/notification per connection interval
BLE_CHUNK = 244  # bytes per GATT write/notification (ATT_MTU 247 - 3)
SERIAL_LATENCY_S = 0.001
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

    def __init__(self, notify_bytes: int = BLE_CHUNK) -> None:
        self._incoming: asyncio.Queue = asyncio.Queue()
        self.advertisement: tuple | None = None
        self.connections = 0
        self.notify_bytes = notify_bytes

    def connect(self) -> _MemLink:
        lock_end, key_end = _MemLink.pair(BLE_INTERVAL_S, BLE_CHUNK)
        lock_end.chunk = self.notify_bytes  # the lock's notifications (the board's ATT MTU - 3)
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
        await self.send_payload(msg.encode(mtype, fields))

    async def send_payload(self, payload: bytes) -> None:
        await self.link.send(frames.encode(payload))

    async def recv_payload(self, timeout: float = 120.0) -> bytes:
        while not self._pending:
            data = await asyncio.wait_for(self.link.recv(), timeout)
            if not data:
                raise EnergyError("the lock closed the link")
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    async def recv(self, expect: tuple[int, ...], timeout: float = 120.0
                   ) -> tuple[int, dict]:
        return msg.decode(await self.recv_payload(timeout), expect)


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
    await tool.send(msg.COMMISSION, {
        msg.COMMISSION_NONCE: hello[msg.HELLO_NONCE], msg.COMMISSION_LOCK_ID: LOCK_ID,
        msg.COMMISSION_SECRET: SECRET, msg.COMMISSION_SUITE: tok.SUITE_HMAC,
        msg.COMMISSION_TIME: COMMISSION_TIME, msg.COMMISSION_ISSUER: ISSUER,
        msg.COMMISSION_DOOR: "apartment"})
    mtype, f = await tool.recv((msg.PRESS_BUTTON, msg.ADMIN_RESULT, msg.ERROR))
    if mtype == msg.PRESS_BUTTON:  # the virtual installer presses it (auto button)
        mtype, f = await tool.recv((msg.ADMIN_RESULT, msg.ERROR))
    outcome = f[msg.ERROR_REASON] if mtype == msg.ERROR else f[msg.ADMIN_RESULT_OUTCOME]
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
    run0, stall0 = hw.bolt.run_s, hw.bolt.stall_s
    charge0 = hw.bolt.charge_mas()
    mark = len(timeline)
    key = _Peer(ble.connect())
    _, hello = await key.recv((msg.HELLO,))
    if hello[msg.HELLO_LOCK_ID] != LOCK_ID:
        raise EnergyError("the lock did not announce the commissioned id")
    token, pop = _grant(bytes(16))
    nonce = hello[msg.HELLO_NONCE]
    await key.send_payload(keyside.open_request(token, pop, LOCK_ID, nonce, tok.SCOPE_OPEN))
    outcome, authenticated, *_ = keyside.read_answer(await key.recv_payload(), nonce, pop,
                                                     LOCK_ID)
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
    from firmware import app  # the real application

    hw = Hardware(board, clock, auto_button=True)
    hw.scheduler = lambda t: loop.call_at(t, hw.check_edges)  # a press due later
    timeline: list[tuple[float, str]] = []
    accounted = hw.power_state

    def traced(state: str) -> None:
        timeline.append((clock.now(), state))
        accounted(state)

    hw.power_state = traced  # type: ignore[method-assign]
    flash = flash_mod.FlashDevice(board.FLASH_SIZE, board.FLASH_BLOCK_SIZE)
    fs = LittleFsFs.mkfs(_region(flash, board.FS_REGION, "fs"))
    log_dev = _region(flash, board.LOG_REGION, "log")
    ble = _MemBle(getattr(board, "BLE_NOTIFY_BYTES", BLE_CHUNK))
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
    loop = VirtualLoop(clock)
    try:
        return loop.run_until_complete(_scenario(board, loop, clock))
    except Stalled as e:
        raise EnergyError(str(e)) from None
    finally:
        loop.close()
