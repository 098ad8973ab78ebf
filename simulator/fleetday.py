"""One simulated day of a fleet through the real firmware, fast: no sockets,
no waits, the locks one after another (so memory stays bounded).

    python -m simulator.fleetday [--locks 2300] [--openings 30000]
                                 [--refusals 0.05] [--seed 1] [--json]

Each lock is the real application (firmware.app.App and firmware.lock.Lock)
on an in-memory HAL: littlefs (littlefs-python) and the raw event log over
the simulator's counting NOR flash model, a manual clock, a bolt that moves at
once. It is commissioned, then its share of the day's openings arrives spread
over 24 hours, each as a key would send it (HELLO, then an OPEN with a token
and proof of possession, through App.open_request), a few refused (an
expired token, a wrong proof, another lock's token); after each opening the
door is relocked through the actuator. Each lock is dropped before the next
is made. Reports the wall time, openings per second, the peak resident
memory, the decisions (allowed/refused against what was meant) and what the
day wrote to flash per event.

Exit status: 0 with a report, 1 if any decision differed from what was meant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sys
import time
from typing import Any

import boards.sim as board
from firmware import actuator as actuator_mod
from firmware import app as app_mod
from firmware import hal as hal_mod
from firmware.lock import Session
from protocol import clock, cose, frames, keys, reasons
from protocol import messages as msg
from protocol import token as tok
from simulator import flash as flash_mod
from simulator.lfs import LittleFsFs

DAY_S = 86400
START = 1768464000  # 2026-01-15T08:00:00Z (POSIX): any fixed day
SITE_SECRET = bytes(range(32))  # a fixed test secret: nothing leaves this process
ISSUER = "fleet-day"
REFUSAL_KINDS = ("expired", "bad-proof", "wrong-lock")


class FleetHAL(hal_mod.HAL):
    """The lock's HAL in memory: counting flash, manual clock, instant bolt."""

    board_name = "fleet"

    def __init__(self, now: int, seed: int) -> None:
        self.board = board
        self.battery_low_mv = int(board.BATTERY["low_mv"])  # type: ignore[call-overload]
        self.battery_critical_mv = int(board.BATTERY["critical_mv"])  # type: ignore[call-overload]
        self.flash = flash_mod.FlashDevice(board.FLASH_SIZE, board.FLASH_BLOCK_SIZE)
        self._fs = LittleFsFs.mkfs(flash_mod.BlockDevice.region(self.flash, board.FS_REGION, "fs"))
        self._log = flash_mod.BlockDevice.region(self.flash, board.LOG_REGION, "log")
        self.rtc = now
        self.ms = 0
        self.retracted = False
        self._rng = random.Random(seed)

    def advance(self, seconds: int) -> None:
        self.rtc += seconds
        self.ms += seconds * 1000

    def rtc_now(self) -> int:
        return self.rtc

    def rtc_set(self, t: int) -> None:
        self.rtc = t

    def ticks_ms(self) -> int:
        return self.ms

    def motor(self, direction: int) -> None:
        if direction:
            self.retracted = direction > 0

    def bolt_retracted(self) -> bool:
        return self.retracted

    def bolt_thrown(self) -> bool:
        return not self.retracted

    def door_closed(self) -> bool:
        return True

    def button_pressed(self) -> bool:
        return False

    def battery_mv(self) -> int:
        return 5850

    def reset_cause(self) -> int:
        return hal_mod.RESET_POWER_ON

    def random_bytes(self, n: int) -> bytes:
        return self._rng.randbytes(n)

    def config_fs(self) -> Any:
        return self._fs

    def log_device(self) -> Any:
        return self._log


class _Link(hal_mod.Link):
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def send(self, data: bytes) -> None:
        self.sent.append(bytes(data))


_current: FleetHAL | None = None  # the lock being run (its clock is moved by the waits)


async def _fast_wait(ms: int) -> None:
    """Fast mode: a wait of the firmware moves the lock's clock and yields once."""
    if _current is not None:
        _current.ms += int(ms)
    await asyncio.sleep(0)


def _grant(secret: bytes, aud: str, now_unix: int, cti: bytes, kind: str
           ) -> tuple[bytes, bytes]:
    start, end = now_unix - 600, now_unix + 8 * 3600
    if kind == "expired":
        start, end = now_unix - 10 * 3600, now_unix - 2 * 3600
    payload = tok.encode_claims(ISSUER, "staff-%d" % (cti[0] % 50), aud, end, start, start,
                                cti, tok.SCOPE_OPEN)
    return cose.mac0_create(payload, keys.token_mac_key(secret)), keys.pop_key(secret, cti)


def run_lock(index: int, openings: int, refusal_rate: float, rng: random.Random) -> dict:
    lock_id = "fleet-%05d" % index
    secret = keys.lock_secret(SITE_SECRET, lock_id)
    global _current
    hal = FleetHAL(clock.from_unix(START), rng.getrandbits(32))
    _current = hal
    a = app_mod.App(hal)
    lock = a.lock
    lock.hello(Session("serial"))
    lock.commission({msg.COMMISSION_NONCE: b"", msg.COMMISSION_LOCK_ID: lock_id,
                     msg.COMMISSION_SECRET: secret, msg.COMMISSION_SUITE: tok.SUITE_HMAC,
                     msg.COMMISSION_TIME: START, msg.COMMISSION_ISSUER: ISSUER,
                     msg.COMMISSION_DOOR: "apartment"})
    c0 = dict(hal.flash.total.as_dict())
    seq0 = lock.log.next_seq
    out = {"allowed": 0, "refused": 0, "mismatched": 0}
    loop = asyncio.new_event_loop()
    try:
        gap = DAY_S // (openings + 1)
        for _ in range(openings):
            hal.advance(gap)
            kind = rng.choice(REFUSAL_KINDS) if rng.random() < refusal_rate else "valid"
            now_unix = clock.to_unix(hal.rtc)
            cti = rng.randbytes(16)
            if kind == "wrong-lock":  # another lock's token, with its own key
                other = "fleet-other"
                token, pop = _grant(keys.lock_secret(SITE_SECRET, other), other, now_unix, cti,
                                    kind)
            else:
                token, pop = _grant(secret, lock_id, now_unix, cti, kind)
            if kind == "bad-proof":
                pop = bytes(32)
            session = Session("ble")
            _, hello = msg.decode(lock.hello(session))
            nonce = hello[msg.HELLO_NONCE]
            fields = {msg.OPEN_NONCE: nonce, msg.OPEN_TOKEN: token,
                      msg.OPEN_ACTION: tok.SCOPE_OPEN,
                      msg.OPEN_PROOF: msg.open_proof(pop, nonce, lock_id, "open", token)}
            link = _Link()
            loop.run_until_complete(a.open_request(session, fields, link))
            (payload,) = frames.Decoder().feed(b"".join(link.sent))
            mtype, f = msg.decode(payload)
            outcome = f[msg.ERROR_REASON] if mtype == msg.ERROR else f[msg.RESULT_OUTCOME]
            allowed = outcome == reasons.ALLOW
            out["allowed" if allowed else "refused"] += 1
            if allowed != (kind == "valid"):
                out["mismatched"] += 1
            if allowed:  # the door closes behind the visitor: relock
                loop.run_until_complete(a.actuator._stop_supervisor())
                loop.run_until_complete(a.actuator.relock())
    finally:
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        a.actuator.after_run = None  # App <-> actuator: freed now, not at the next collection
    c1 = hal.flash.total.as_dict()
    out["events"] = lock.log.next_seq - seq0
    out["bytes_written"] = c1["bytes_written"] - c0["bytes_written"]
    out["erases"] = c1["erases"] - c0["erases"]
    return out


def _peak_rss_kib() -> int:
    """This process's peak resident memory: VmHWM (reset at exec, unlike
    ru_maxrss, which a child can inherit from the process that started it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def run_day(locks: int, openings: int, refusal_rate: float = 0.05, seed: int = 1) -> dict:
    if locks <= 0 or openings < 0 or not 0 <= refusal_rate <= 1:
        raise ValueError("locks must be positive, openings and the refusal rate in range")
    rng = random.Random(seed)
    saved = (app_mod.sleep_ms, actuator_mod.sleep_ms)
    app_mod.sleep_ms = actuator_mod.sleep_ms = _fast_wait  # fast mode: no real waits
    total = {"allowed": 0, "refused": 0, "mismatched": 0, "events": 0, "bytes_written": 0,
             "erases": 0}
    base, extra = divmod(openings, locks)
    t0 = time.perf_counter()
    try:
        for i in range(locks):
            r = run_lock(i, base + (1 if i < extra else 0), refusal_rate, rng)
            for k in total:
                total[k] += r[k]
    finally:
        app_mod.sleep_ms, actuator_mod.sleep_ms = saved
    wall = time.perf_counter() - t0
    peak_kb = _peak_rss_kib()
    n = total["allowed"] + total["refused"]
    return {
        "locks": locks, "openings": n, "refusal_rate": refusal_rate, "seed": seed,
        "fleet_day_s": wall, "fleet_openings_per_s": n / wall if wall else 0.0,
        "peak_rss_bytes": peak_kb * 1024,
        "allowed": total["allowed"], "refused": total["refused"],
        "mismatched": total["mismatched"], "events": total["events"],
        "flash_bytes_per_event": total["bytes_written"] / total["events"] if total["events"] else 0.0,
        "flash_erases_per_1000_events": (1000.0 * total["erases"] / total["events"]
                                         if total["events"] else 0.0),
    }


def wear(openings: int = 1000, seed: int = 2) -> dict:
    """Flash written per event over one lock's `openings` (long enough for the
    event log to go round blocks and erase them): the same code as a day."""
    rng = random.Random(seed)
    saved = (app_mod.sleep_ms, actuator_mod.sleep_ms)
    app_mod.sleep_ms = actuator_mod.sleep_ms = _fast_wait
    try:
        r = run_lock(0, openings, 0.05, rng)
    finally:
        app_mod.sleep_ms, actuator_mod.sleep_ms = saved
    ev = r["events"]
    return {"openings": openings, "events": ev,
            "flash_bytes_per_event": r["bytes_written"] / ev if ev else 0.0,
            "flash_erases_per_1000_events": 1000.0 * r["erases"] / ev if ev else 0.0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m simulator.fleetday", description=__doc__.split("\n")[0])
    p.add_argument("--locks", type=int, default=2300)
    p.add_argument("--openings", type=int, default=30000)
    p.add_argument("--refusals", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--wear-openings", type=int, default=0, metavar="N",
                   help="then one lock with N openings, for flash written per event")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        r = run_day(args.locks, args.openings, args.refusals, args.seed)
        if args.wear_openings > 0:
            r["wear"] = wear(args.wear_openings)
    except ValueError as e:
        print(f"python -m simulator.fleetday: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r))
    else:
        for k, v in r.items():
            print(f"{k:<30} {v:.3f}" if isinstance(v, float) else f"{k:<30} {v}")
    return 1 if r["mismatched"] else 0


if __name__ == "__main__":
    sys.exit(main())
