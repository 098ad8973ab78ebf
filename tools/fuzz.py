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

At the end it checks: no boot and no crash of the firmware; the bolt never
moved while fuzzing (motor starts unchanged: no open); no fuzzed frame earned
RESULT(ALLOW) or ADMIN_RESULT(ALLOW); both links still answer GET_HELLO; a
valid key opens, and the log holds exactly one OPENED record more; the log
grew by a few records only (the log budget, PROTOCOL.md 5b); and the heap
(gc.mem_alloc() after gc.collect(), reported by the firmware: control "heap")
is back where it was, within HEAP_TOLERANCE. It prints the count, the seed
(FUZZ_SEED, or random) and the rate.

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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from protocol import events, reasons
from protocol import messages as msg
from tools import issuer
from tools.client import Installer, access, read_hello
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

# The heap is compared as gc.mem_alloc() after gc.collect() (the live set). It
# may differ by what the lock legitimately keeps between visitors: the hold-off
# list (up to 8 addresses), the peer budget's counters (small ints that become
# boxed once they pass 2**62: never here), the last refusal's cti, a spent
# nonce, the revocation list a valid update installed (a few hundred bytes),
# and where a collection ran. 4 KB is about 2 % of the 192 KB heap: a leak of
# even a few bytes per frame would pass it within a few thousand frames.
HEAP_TOLERANCE = 4096
HEAP_SAMPLES = 3
PROGRESS_S = 10.0  # print progress this often
STALL_S = 60.0  # no frame sent for this long: a finding (stacks are printed)
SERIAL_BATCH = 40  # fuzz items between two GET_HELLO syncs on the serial port
BLE_READ_S = 0.25  # wait this long for the lock's answer and close on BLE


# --- the campaign ---------------------------------------------------------------------
@dataclass
class Report:
    seed: int
    frames: int = 0
    items: Counter = field(default_factory=Counter)
    per_link: Counter = field(default_factory=Counter)
    answers: Counter = field(default_factory=Counter)
    skipped_valid: int = 0
    desyncs: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    heap_before: dict[str, Any] = field(default_factory=dict)
    heap_after: dict[str, Any] = field(default_factory=dict)
    records_added: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


class Campaign(SiteSide):
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

    # measurements
    def heap_once(self) -> dict[str, int]:
        n = self.lock.control({"cmd": "heap"})["mem"]["n"]
        end = time.monotonic() + 10
        while time.monotonic() < end:
            mem = self.lock.control({"cmd": "state"})["mem"]
            if mem["n"] > n:
                return mem
            time.sleep(0.05)
        raise RuntimeError("the firmware reported no heap measurement")

    def heap(self, samples: int = HEAP_SAMPLES) -> dict[str, Any]:
        """The smallest live heap of a few measurements a second apart (what
        is live at a collection depends a little on where the tasks are)."""
        seen = [self.heap_once() for _ in range(samples)]
        best: dict[str, Any] = dict(min(seen, key=lambda m: m["alloc"]))
        best["samples"] = [m["alloc"] for m in seen]
        return best

    def log(self) -> list[Any]:
        with self.lock.serial_link() as link:
            return [events.decode(r) for r in Installer(link, timeout=15).pull_log(self.admin_key)]

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

    def _check(self, s0: dict, s1: dict, log0: list[Any], log1: list[Any]) -> None:
        r = self.report
        fail = r.failures.append
        if s1["boots"] != s0["boots"] or s1["crashes"] != s0["crashes"] or not s1["running"]:
            fail(f"the lock restarted: boots {s0['boots']} -> {s1['boots']}, "
                 f"crashes {s0['crashes']} -> {s1['crashes']}")
        if s1["bolt"]["starts"] != s0["bolt"]["starts"] or not s1["bolt"]["thrown"]:
            fail(f"the bolt moved while fuzzing: starts {s0['bolt']['starts']} -> "
                 f"{s1['bolt']['starts']}, thrown {s1['bolt']['thrown']}")
        last = log0[-1].seq
        added = [e for e in log1 if e.seq > last]
        fuzz_keys = {events.key_id_of(f"fuzz-{k}") for k in range(len(self.grants))}
        for e in added:
            what = e.name
            who = ("token" if e.key_id in fuzz_keys else
                   "update" if e.code in (events.TIME_SET, events.REVOCATION_UPDATED) else "peer")
            r.records_added[f"{what}/{who}"] += 1
        # An update carried by a request is applied once its own MAC verifies,
        # before the token is checked (PROTOCOL.md 5): the fuzz carries real ones.
        updates = (events.TIME_SET, events.REVOCATION_UPDATED)
        peer = [e for e in added if e.key_id not in fuzz_keys
                and e.code not in (events.LOG_READ, *updates)]
        token = [e for e in added if e.key_id in fuzz_keys]
        # Peers without a verified token: one record, plus the summary of the hour
        # before the next record (PROTOCOL.md 5b). Verified fuzz tokens: each one's
        # first refusal of a kind and the applied updates.
        if len(peer) > 3:
            fail(f"peers added {len(peer)} records (the budget allows 1 an hour, plus its summary)")
        if len(token) > 4 * len(self.grants):
            fail(f"the fuzz tokens added {len(token)} records")
        if r.heap_after["alloc"] - r.heap_before["alloc"] > HEAP_TOLERANCE:
            fail(f"heap grew: {r.heap_before} -> {r.heap_after}")

    def finish(self) -> None:
        """After the campaign: GET_HELLO on both links, and a valid key opens, once."""
        r = self.report
        lock = self.lock
        with lock.serial_link() as link:
            Installer(link, timeout=15).hello()
        before = [e for e in self.log() if e.code == events.OPENED]
        g = self.grant("staff-valid")
        g = issuer.issue_token(self.site_secret, LOCK_ID, iss=ISSUER, sub="staff-valid",
                               start=g.start, end=g.end, scope="open")
        with lock.ble_link("127.9.9.9") as link:
            out = access(link, g)
        if not out.opened:
            r.failures.append(f"a valid key did not open after the campaign: {out.reason_name}")
        after = [e for e in self.log() if e.code == events.OPENED]
        if len(after) - len(before) != 1:
            r.failures.append(f"{len(after) - len(before)} OPENED records for 1 valid opening")
        if lock.control({"cmd": "state"})["bolt"]["starts"] == 0:
            r.failures.append("the bolt never moved for the valid key")


def describe(r: Report) -> str:
    lines = [
        f"fuzz: {r.frames} frames (serial {r.per_link['serial']}, ble {r.per_link['ble']}) "
        f"in {r.seconds:.1f} s: {r.rate:.0f} frames/s; FUZZ_SEED={r.seed}",
        "fuzz: items " + ", ".join(f"{k} {v}" for k, v in sorted(r.items.items())),
        "fuzz: answers " + ", ".join(f"{k} {v}" for k, v in sorted(r.answers.items())),
        f"fuzz: valid requests not sent {r.skipped_valid}; serial resyncs {r.desyncs}",
        f"fuzz: heap alloc {r.heap_before.get('alloc')} -> {r.heap_after.get('alloc')} bytes "
        f"(free {r.heap_before.get('free')} -> {r.heap_after.get('free')}; samples "
        f"{r.heap_before.get('samples')} -> {r.heap_after.get('samples')}; "
        f"tolerance {HEAP_TOLERANCE})",
        "fuzz: log records added " + (", ".join(f"{k} {v}" for k, v in
                                               sorted(r.records_added.items())) or "none"),
    ]
    lines += [f"fuzz: FAILED: {f}" for f in r.failures]
    return "\n".join(lines)


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
