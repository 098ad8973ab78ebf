"""A lock in memory: the real firmware (firmware.app on simulator.hal.SimHAL
and the virtual hardware) in the caller's asyncio loop, with in-memory serial
and BLE links instead of a pty and a socket.

Run in a virtual-time loop (simulator/vtime.py) every wait is exact and takes
no wall-clock time: the energy measurement (simulator/energy_visit.py) visits
it, and tests (tests/firmware/test_windows_vtime.py) time the firmware's
windows with it to the millisecond. The exchanges are the protocol's own
I/O-free cores (protocol.keyside, protocol.adminside); only the bytes' path
differs from a real board.
"""

from __future__ import annotations

import asyncio
from types import ModuleType
from typing import Any

from firmware import hal as hal_mod
from protocol import adminside, frames, keys, keyside, reasons
from protocol import messages as msg
from protocol import token as tok
from simulator import flash as flash_mod
from simulator.hal import SimHAL
from simulator.hardware import Hardware, ManualClock
from simulator.lfs import LittleFsFs

BLE_INTERVAL_S = 0.030  # one GATT write/notification per connection interval
BLE_CHUNK = 244  # bytes per GATT write/notification (ATT_MTU 247 - 3)
SERIAL_LATENCY_S = 0.001
ANSWER_TIMEOUT_S = 120.0  # the longest a peer waits for the lock's next message


class MemLockError(Exception):
    """The lock in memory did not do what its user asked (one-line message)."""


class LinkGone(MemLockError):
    """The lock closed the link."""


# --- in-memory links (BLE and serial) -----------------------------------------

class MemLink(hal_mod.Link):
    """One end of a duplex byte pipe. What one end sends reaches the other
    in chunks of `chunk` bytes, one per `latency` seconds, in order."""

    def __init__(self, latency: float, chunk: int, central: str = "") -> None:
        self.latency = latency
        self.chunk = chunk
        self.central = central
        self.peer: MemLink | None = None
        self.closed = False
        self.peer_gone = False
        self._inbox: asyncio.Queue = asyncio.Queue()
        self._free_at = 0.0

    @staticmethod
    def pair(latency: float, chunk: int) -> tuple[MemLink, MemLink]:
        a, b = MemLink(latency, chunk), MemLink(latency, chunk)
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


class MemBle:
    """Stands in for simulator.endpoints.BleServer (what SimHAL uses of it)."""

    def __init__(self, notify_bytes: int = BLE_CHUNK) -> None:
        self._incoming: asyncio.Queue = asyncio.Queue()
        self.advertisement: tuple | None = None
        self.connections = 0
        self.notify_bytes = notify_bytes

    def connect(self, central: str = "") -> MemLink:
        """A central connects; its end of the link. `central` is its device
        address, which the lock holds off after a failure ("" unknown)."""
        lock_end, key_end = MemLink.pair(BLE_INTERVAL_S, BLE_CHUNK)
        lock_end.chunk = self.notify_bytes  # the lock's notifications (the board's ATT MTU - 3)
        lock_end.central = central
        self._incoming.put_nowait(lock_end)
        return key_end

    async def accept(self) -> MemLink:
        link = await self._incoming.get()
        self.connections += 1
        return link

    def advertise(self, lock_id: Any, status: Any) -> None:
        self.advertisement = (lock_id, status)

    def drop_active(self) -> None:
        pass


class MemSerial:
    """Stands in for simulator.endpoints.PtyEndpoint."""

    def __init__(self) -> None:
        self._lock_end, self.host_end = MemLink.pair(SERIAL_LATENCY_S, 4096)

    def link(self) -> MemLink:
        return self._lock_end


class Peer:
    """Messages over a link, as a key or the installer's tool sends them."""

    def __init__(self, link: MemLink) -> None:
        self.link = link
        self._decoder = frames.Decoder()
        self._pending: list[bytes] = []

    async def send(self, mtype: int, fields: dict) -> None:
        await self.send_payload(msg.encode(mtype, fields))

    async def send_payload(self, payload: bytes) -> None:
        await self.link.send(frames.encode(payload))

    async def recv_payload(self, timeout: float = ANSWER_TIMEOUT_S) -> bytes:
        while not self._pending:
            data = await asyncio.wait_for(self.link.recv(), timeout)
            if not data:
                raise LinkGone("the lock closed the link")
            self._pending.extend(self._decoder.feed(data))
        return self._pending.pop(0)

    async def recv(self, expect: tuple[int, ...], timeout: float = ANSWER_TIMEOUT_S
                   ) -> tuple[int, dict]:
        return msg.decode(await self.recv_payload(timeout), expect)

    async def closed(self, timeout: float = ANSWER_TIMEOUT_S) -> None:
        """Read (and drop) whatever comes until the lock closes the link."""
        while True:
            data = await asyncio.wait_for(self.link.recv(), timeout)
            if not data:
                return

    def close(self) -> None:
        self.link.close()


# --- the lock -------------------------------------------------------------------

class MemLock:
    """The firmware on `board`'s virtual hardware, a new flash, in-memory links.

    Everything is built here; `start()` boots the firmware in the running loop
    and `stop()` ends it. `timings` overrides the firmware's waits by name
    (firmware.hal.timing), as LOCK_SIM_TIMINGS does for the simulator."""

    def __init__(self, board: ModuleType, clock: ManualClock, loop: asyncio.AbstractEventLoop,
                 timings: dict[str, int] | None = None, auto_button: bool = True) -> None:
        hw = Hardware(board, clock, auto_button=auto_button)
        hw.scheduler = lambda t: loop.call_at(t, hw.check_edges)  # a press due later
        self.hw = hw
        self.clock = clock
        self.flash = flash_mod.FlashDevice(board.FLASH_SIZE, board.FLASH_BLOCK_SIZE)
        fs = LittleFsFs.mkfs(flash_mod.BlockDevice.region(self.flash, board.FS_REGION, "fs"))
        log_dev = flash_mod.BlockDevice.region(self.flash, board.LOG_REGION, "log")
        self.ble = MemBle(getattr(board, "BLE_NOTIFY_BYTES", BLE_CHUNK))
        self.serial = MemSerial()
        self.timings: dict[str, int] = dict(timings or {})
        self.hal = SimHAL(hw, reset_cause=hal_mod.RESET_POWER_ON, config_fs=lambda: fs,
                          log_device=lambda: log_dev, serial=self.serial,  # type: ignore[arg-type]
                          ble=self.ble, timings=self.timings)  # type: ignore[arg-type]
        self.installer = Peer(self.serial.host_end)
        self.lock_id = ""
        self.secret = b""
        self.main: asyncio.Future | None = None
        self._stop = asyncio.Event()

    async def start(self, settle_s: float = 5.0) -> None:
        from firmware import app  # the real application

        self.main = asyncio.ensure_future(app.main(self.hal, self._stop))
        await asyncio.sleep(settle_s)
        self.check()

    def check(self) -> None:
        """Raise if the firmware has stopped or crashed."""
        main = self.main
        if main is None or not main.done():
            return
        if not main.cancelled() and main.exception() is not None:
            raise MemLockError(f"the firmware crashed: {main.exception()!r}")
        raise MemLockError("the firmware stopped")

    async def stop(self) -> None:
        """End the firmware; raise if it had crashed."""
        self._stop.set()
        main = self.main
        if main is None:
            return
        try:
            await asyncio.wait_for(main, 10.0)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - reported below if it matters
            pass
        if main.done() and not main.cancelled() and main.exception() is not None:
            raise MemLockError(f"the firmware crashed: {main.exception()!r}")

    def set_timings(self, **waits: int) -> None:
        """Change the firmware's waits now (the control channel's "timings")."""
        self.timings.update(waits)
        self.hal.post_event(hal_mod.EVENT_TIMINGS, True)

    # --- the installer's serial exchanges ---------------------------------------
    async def _admin_answer(self) -> dict:
        mtype, f = await self.installer.recv((msg.PRESS_BUTTON, msg.ADMIN_RESULT, msg.ERROR))
        if mtype == msg.PRESS_BUTTON:  # the virtual installer presses it (auto button)
            mtype, f = await self.installer.recv((msg.ADMIN_RESULT, msg.ERROR))
        if mtype == msg.ERROR:
            raise MemLockError(f"the lock refused: {reasons.name(f[msg.ERROR_REASON])}")
        return f

    async def hello(self) -> tuple:
        await self.installer.send(msg.GET_HELLO, {})
        return keyside.hello_fields(await self.installer.recv_payload())

    async def commission(self, lock_id: str, secret: bytes, issuer: str, time: int,
                         suite: str = tok.SUITE_HMAC, door: str = "apartment") -> dict:
        nonce = (await self.hello())[1]
        await self.installer.send_payload(adminside.commission_request(
            nonce, lock_id, secret, suite, time, issuer, door))
        f = await self._admin_answer()
        outcome = f[msg.ADMIN_RESULT_OUTCOME]
        if outcome != reasons.ALLOW:
            raise MemLockError(f"commissioning was refused: {reasons.name(outcome)}")
        if not adminside.result_authentic(f, keys.admin_key(secret), nonce, lock_id):
            raise MemLockError("the commissioning's answer is not authenticated")
        self.lock_id, self.secret = lock_id, secret
        return dict(f[msg.ADMIN_RESULT_DATA])

    async def admin(self, op: str, args: dict | None = None) -> dict:
        """An admin operation under the commissioned lock's admin key."""
        admin_key = keys.admin_key(self.secret)
        nonce = (await self.hello())[1]
        await self.installer.send_payload(adminside.admin_request(admin_key, nonce,
                                                                  self.lock_id, op, args))
        f = await self._admin_answer()
        if not adminside.result_authentic(f, admin_key, nonce, self.lock_id):
            raise MemLockError("the lock's answer is not authenticated")
        outcome = f[msg.ADMIN_RESULT_OUTCOME]
        if outcome != reasons.ALLOW:
            raise MemLockError(f"the lock refused {op}: {reasons.name(outcome)}")
        return dict(f[msg.ADMIN_RESULT_DATA])

    async def pull_log(self, from_seq: int = 1) -> list[bytes]:
        """The whole log from `from_seq`, page by page, over serial."""
        pages = adminside.LogPages(from_seq)
        while not pages.done:
            data = await self.admin("log", pages.args())
            pages.take(data[msg.LOG_RECORDS], data[msg.LOG_BOUND])
        return pages.records

    # --- a key over BLE ------------------------------------------------------------
    def connect(self, central: str = "") -> Peer:
        """A central connects over BLE (the lock sends its HELLO at once)."""
        return Peer(self.ble.connect(central))

    async def request(self, key: Peer, token: bytes, pop_key: bytes,
                      action: str = tok.SCOPE_OPEN, log_from: int | None = None
                      ) -> tuple[int, bool, Any]:
        """One request over a connected key's link, after the lock's HELLO:
        (outcome, authenticated, seq)."""
        lock_id, nonce, *_ = keyside.hello_fields(await key.recv_payload())
        if lock_id != self.lock_id:
            raise MemLockError("the lock did not announce the commissioned id")
        await key.send_payload(keyside.open_request(token, pop_key, self.lock_id, nonce,
                                                    action, None, log_from))
        outcome, authenticated, seq, *_ = keyside.read_answer(
            await key.recv_payload(), nonce, pop_key, self.lock_id)
        return outcome, authenticated, seq
