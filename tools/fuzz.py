"""Fuzz the lock: random and mutated frames into the real firmware under
MicroPython, over the serial port and BLE at once (issue #12).

    python -m tools.fuzz mpy [--frames N] [--seed S]

starts `python -m simulator --mpy` (96wK heap, as the e2e tests), commissions
it, and sends N fuzzed frames: mutations of valid frames built with
protocol/messages.py and protocol/frames.py (GET_HELLO, OPEN with a real token
and proof for the live nonce or a spent one, carrying real and mutated time and
revocation updates, ADMIN under the real admin key, COMMISSION, HELLO, ERROR,
RESULT), by bit flips, byte overwrites, truncations, splices of two messages,
CBOR heads that lie about their length, deep nesting, huge announced lengths,
indefinite lengths, tags and floats, oversized payloads with a valid CRC, damaged
COBS, and garbage between valid frames. One thread drives the serial port (a
batch of frames, then a GET_HELLO and every answer read), one BLE (a central
per item, from rotating 127.0.N.M addresses, hold-off shortened to 1 ms).

At the end it checks (tools/fuzzchecks.py): no boot and no crash of the
firmware; the bolt never moved while fuzzing (motor starts unchanged: no
open); no fuzzed frame earned RESULT(ALLOW) or ADMIN_RESULT(ALLOW); both links
still answer GET_HELLO; a valid key opens, and the log holds exactly one
OPENED record more; the log grew by a few records only (the log budget,
PROTOCOL.md 5b); and the heap (gc.mem_alloc() after gc.collect(), reported by
the firmware: control "heap") is back where it was, within HEAP_TOLERANCE. It
prints the count, the seed (FUZZ_SEED, or random) and the rate.

A stream that would decode (here, with the same protocol code) to a request
equal in every field the lock checks to a valid one for the live nonce is
not sent: it is not a fuzzed frame but a valid request.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from protocol import messages as msg
from protocol import reasons
from tools.client import Installer, read_hello
from tools.fuzzchecks import (  # noqa: F401 (imported from here)
    HEAP_SAMPLES,
    HEAP_TOLERANCE,
    CampaignChecks,
    Report,
    describe,
)
from tools.fuzzframes import (
    ISSUER,
    LOCK_ID,
    Mutator,
    SiteSide,
    frame_of,
    requests_in,
    same_request,
)
from tools.simproc import SimulatedLock
from tools.transport import LinkClosed, LinkTimeout, TransportError

PROGRESS_S = 10.0  # print progress this often
STALL_S = 60.0  # no frame sent for this long: a finding (stacks are printed)
SERIAL_BATCH = 40  # fuzz items between two GET_HELLO syncs on the serial port
BLE_READ_S = 0.25  # wait this long for the lock's answer and close on BLE


# --- the campaign ---------------------------------------------------------------------
class Campaign(CampaignChecks, SiteSide):
    def __init__(self, lock: SimulatedLock, seed: int, out: Callable[[str], None] = print) -> None:
        self.lock = lock
        self.rng = random.Random(seed)
        super().__init__(self.rng)
        self.report = Report(seed)
        self.out = out
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0

    def commission(self) -> None:
        with self.lock.serial_link() as link:
            Installer(link).commission(lock_id=LOCK_ID, secret=self.secret, suite="hmac",
                                       issuer=ISSUER, time=int(time.time()))

    def item(self, mut: Mutator, nonce: bytes, serial: bool, spent: list[bytes]
             ) -> tuple[bytes, str, int]:
        """(bytes, kind, frames in it) of one fuzz item, never a valid request."""
        while True:
            rng = mut.rng  # this thread's own: the same FUZZ_SEED, the same items
            structured = False
            if rng.random() < 0.7:
                valid, structured = self.live_request(rng, nonce, serial)
            else:
                valid = mut.pick()
            if structured and rng.random() < 0.5:
                data, kind = frame_of(valid), "structured"  # as built: it cannot open
            else:
                data, kind = mut.stream(valid, spent)
            good = None  # the valid request a mutation might leave intact
            if not structured and valid[:1] and valid[0] >> 5 == 5:
                good = msg.decode(valid)
            found = requests_in(data)
            if good is not None and any(same_request(m, good) for m in found):
                with self._lock:
                    self.report.skipped_valid += 1
                continue
            # frames sent: the non-empty runs ended by a zero (empty frames are ignored)
            n = sum(1 for part in data.split(b"\x00")[:-1] if part)
            return data, kind, max(1, n)

    def _count(self, link: str, kind: str, n: int) -> bool:
        with self._lock:
            self.report.items[kind] += 1
            self.report.per_link[link] += n
            self.report.frames += n
            self._sent += n
            return self._sent < self._target

    def _fail(self, text: str) -> None:
        with self._lock:
            if len(self.report.failures) < 20:
                self.report.failures.append(text)
        self._stop.set()

    def _answer(self, link: str, payload: bytes) -> int:
        """Tally one answer of the lock and check it; its message type."""
        try:
            mtype, f = msg.decode(payload)
        except msg.MessageError:
            self._fail(f"{link}: the lock sent a malformed message {payload[:40].hex()}")
            return -1
        name = {msg.HELLO: "HELLO", msg.ERROR: "ERROR", msg.RESULT: "RESULT",
                msg.ADMIN_RESULT: "ADMIN_RESULT", msg.PRESS_BUTTON: "PRESS_BUTTON"}.get(mtype, "?")
        if mtype == msg.ERROR:
            name += " " + reasons.name(f[1])
        with self._lock:
            self.report.answers[f"{link} {name}"] += 1
        if mtype in (msg.RESULT, msg.ADMIN_RESULT) and f[2] == reasons.ALLOW:
            self._fail(f"{link}: a fuzzed frame was allowed: {payload[:60].hex()}")
        if mtype == msg.PRESS_BUTTON:
            self._fail(f"{link}: a fuzzed frame made the lock ask for the button")
        return mtype

    # the links
    def serial_thread(self, seed: int) -> None:
        rng = random.Random(seed)
        mut = Mutator(rng, self.corpus(rng))
        spent: list[bytes] = [msg.encode(msg.GET_HELLO, {})]
        try:
            with self.lock.serial_link() as link:
                nonce = Installer(link, timeout=15).hello().nonce
                while not self._stop.is_set():
                    batch = []
                    hellos = 0
                    more = True
                    for _ in range(SERIAL_BATCH):
                        data, kind, n = self.item(mut, nonce, True, spent)
                        batch.append(data)
                        hellos += sum(1 for m in requests_in(data) if m[0] == msg.GET_HELLO)
                        more = self._count("serial", kind, n)
                        if not more:
                            break
                    link.raw_write(b"".join(batch) + frame_of(msg.encode(msg.GET_HELLO, {})))
                    got = 0
                    while got <= hellos:
                        try:
                            payload = link.recv(20)
                        except LinkTimeout:
                            with self._lock:
                                self.report.desyncs += 1
                            link.raw_write(b"\x00" + frame_of(msg.encode(msg.GET_HELLO, {})))
                            payload = link.recv(20)
                            got = hellos
                        if self._answer("serial", payload) == msg.HELLO:
                            got += 1
                            nonce = msg.decode(payload)[1][2]
                    spent = spent[-8:] + [b for b in batch if len(b) < 300][:1]
                    spent = [p for p in spent if p[-1:] != b"\x00"] or spent[:1]
                    if not more:
                        return
        except (TransportError, OSError, msg.MessageError) as e:
            self._fail(f"serial: {type(e).__name__}: {e}")

    def ble_thread(self, seed: int) -> None:
        rng = random.Random(seed)
        mut = Mutator(rng, self.corpus(rng))
        spent: list[bytes] = [msg.encode(msg.GET_HELLO, {})]
        i = 0
        while not self._stop.is_set():
            i += 1
            device = f"127.0.{1 + i // 200 % 200}.{1 + i % 200}"
            try:
                link = self.lock.ble_link(device)
            except TransportError as e:
                self._fail(f"ble: cannot connect: {e}")
                return
            try:
                hello = read_hello(link, 5)
                data, kind, n = self.item(mut, hello.nonce, False, spent)
                more = self._count("ble", kind, n)
                link.raw_write(data)
                end = time.monotonic() + BLE_READ_S
                while time.monotonic() < end:
                    try:
                        self._answer("ble", link.recv(max(0.01, end - time.monotonic())))
                    except (LinkTimeout, LinkClosed):
                        break
                if not more:
                    return
            except (LinkClosed, LinkTimeout):
                pass  # the lock dropped us: as it should after garbage
            except TransportError as e:
                self._fail(f"ble: {type(e).__name__}: {e}")
                return
            finally:
                link.close()

    def run(self, n: int, warmup: int = 200) -> Report:
        r = self.report
        lock = self.lock
        lock.control({"cmd": "timings", "set": {"hold_off_ms": 1}})
        self.commission()
        self.grants = [self.grant(f"fuzz-{k}") for k in range(3)]
        self._phase(warmup, measure=False)  # first-use allocations, one of each record
        with self._lock:
            r.frames = 0
            r.items.clear()
            r.per_link.clear()
            r.answers.clear()
        time.sleep(0.3)
        before_log = self.log()
        state0 = lock.control({"cmd": "state"})
        r.heap_before = self.heap()
        t0 = time.monotonic()
        self._phase(n, measure=True)
        r.seconds = time.monotonic() - t0
        time.sleep(0.5)  # the last central leaves
        r.heap_after = self.heap()
        state1 = lock.control({"cmd": "state"})
        after_log = self.log()
        self._check(state0, state1, before_log, after_log)
        return r

    def _phase(self, n: int, measure: bool) -> None:
        self._sent = 0
        self._target = n
        self._stop.clear()
        seeds = (self.rng.randrange(2**32), self.rng.randrange(2**32))
        threads = [threading.Thread(target=self.serial_thread, args=(seeds[0],), daemon=True),
                   threading.Thread(target=self.ble_thread, args=(seeds[1],), daemon=True)]
        for t in threads:
            t.start()
        t0 = last_t = time.monotonic()
        last_n = 0
        while any(t.is_alive() for t in threads):
            threads[0].join(PROGRESS_S if threads[0].is_alive() else None)
            if not threads[0].is_alive():
                threads[1].join(PROGRESS_S)
            now = time.monotonic()
            n = self._sent
            if now - last_t >= PROGRESS_S and measure:
                with self._lock:
                    per = dict(self.report.per_link)
                self.out(f"fuzz: {n} frames, {n / (now - t0):.0f}/s (serial {per.get('serial', 0)},"
                         f" ble {per.get('ble', 0)}), resyncs {self.report.desyncs}")
            if n == last_n and now - last_t >= STALL_S:
                faulthandler.dump_traceback(all_threads=True)
                self._fail(f"no progress for {STALL_S} s at {n} frames")
                for t in threads:
                    t.join(30)
                return
            if n != last_n or now - last_t >= PROGRESS_S:
                last_n, last_t = n, now


def seed_from_env() -> int:
    text = os.environ.get("FUZZ_SEED", "").strip()
    return int(text, 0) if text else random.SystemRandom().randrange(2**32)


def run_mpy(n: int, seed: int, state: Path, heap: str = "96wK",
            out: Callable[[str], None] = print) -> Report:
    out(f"fuzz: {n} frames into the firmware under MicroPython, FUZZ_SEED={seed}")
    with SimulatedLock(state, extra_args=["--mpy", "--heap", heap]) as lock:
        c = Campaign(lock, seed, out)
        c.run(n)
        if not c.report.failures:
            c.finish()
        out(describe(c.report))
        return c.report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.fuzz", description=__doc__.split("\n")[0])
    p.add_argument("what", choices=("mpy",))
    p.add_argument("--frames", type=int, default=100_000)
    p.add_argument("--seed", type=lambda s: int(s, 0), default=None)
    p.add_argument("--heap", default="96wK")
    args = p.parse_args(argv)
    seed = args.seed if args.seed is not None else seed_from_env()
    with tempfile.TemporaryDirectory(prefix="lock-fuzz-") as tmp:
        r = run_mpy(args.frames, seed, Path(tmp) / "lock", args.heap)
    return 1 if r.failures else 0


if __name__ == "__main__":
    sys.exit(main())
