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
import binascii
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

from protocol import events, frames, keys, reasons
from protocol import messages as msg
from tools import issuer
from tools.client import Installer, access, read_hello
from tools.simproc import SimulatedLock
from tools.transport import LinkClosed, LinkTimeout, TransportError

LOCK_ID = "lock-fuzz"
ISSUER = "fuzz-site"
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


# --- building frames --------------------------------------------------------------
def frame_of(payload: bytes) -> bytes:
    """A frame around any payload (also one too long for frames.encode)."""
    crc = binascii.crc32(payload) & 0xFFFFFFFF
    return frames.cobs_encode(payload + crc.to_bytes(4, "little")) + b"\x00"


INTERESTING = (0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1f, 0x20, 0x38, 0x3b, 0x40, 0x58,
               0x5b, 0x5f, 0x60, 0x7b, 0x7f, 0x80, 0x9b, 0x9f, 0xa0, 0xbb, 0xbf, 0xc0, 0xd8,
               0xdb, 0xf4, 0xf5, 0xf6, 0xf7, 0xf9, 0xfa, 0xfb, 0xff)


class Mutator:
    """Random and mutated payloads and byte streams from a corpus of valid payloads."""

    def __init__(self, rng: random.Random, corpus: list[bytes]) -> None:
        self.rng = rng
        self.corpus = corpus

    def pick(self) -> bytes:
        return self.rng.choice(self.corpus)

    # payload mutations (framed with a valid CRC: they reach the message decoder)
    def bitflip(self, p: bytes) -> bytes:
        b = bytearray(p or b"\x00")
        for _ in range(self.rng.randint(1, 8)):
            i = self.rng.randrange(len(b) * 8)
            b[i // 8] ^= 1 << (i % 8)
        return bytes(b)

    def overwrite(self, p: bytes) -> bytes:
        b = bytearray(p or b"\x00")
        for _ in range(self.rng.randint(1, 4)):
            b[self.rng.randrange(len(b))] = self.rng.choice(INTERESTING)
        return bytes(b)

    def truncate(self, p: bytes) -> bytes:
        return p[:self.rng.randrange(len(p))] if p else p

    def splice(self, p: bytes) -> bytes:
        q = self.pick()
        return p[:self.rng.randint(0, len(p))] + q[self.rng.randint(0, len(q)):]

    def insert(self, p: bytes) -> bytes:
        i = self.rng.randint(0, len(p))
        q = self.pick()
        j = self.rng.randint(0, len(q))
        return p[:i] + q[j:j + self.rng.randint(1, 40)] + p[i:]

    def length_lie(self, p: bytes) -> bytes:
        """A string/array/map head that announces far more than is there."""
        b = bytearray(p or b"\xa1\x00\x05")
        heads = [i for i, v in enumerate(b) if v >> 5 in (2, 3, 4, 5)] or [0]
        i = self.rng.choice(heads)
        major = b[i] & 0xE0
        lie = self.rng.choice([bytes([major | 0x1b]) + b"\xff" * 8,
                               bytes([major | 0x1a]) + b"\x7f\xff\xff\xff",
                               bytes([major | 0x19]) + b"\xff\xff",
                               bytes([major | 0x18, 0xff]),
                               bytes([major | self.rng.randint(0x1c, 0x1f)])])
        return bytes(b[:i]) + lie + bytes(b[i + 1:])

    def deep(self, p: bytes) -> bytes:
        k = self.rng.choice((8, 17, 33, 64, 200, 500, 1000))
        kind = self.rng.randrange(4)
        if kind == 0:
            return b"\x81" * k + b"\x00"
        if kind == 1:
            return b"\xa1\x00" * (k // 2) + b"\x00"
        if kind == 2:
            return b"\xc6" * k + b"\x00"  # tags in tags
        return b"\xa2\x00\x02\x02" + b"\x81" * k + b"\x40"  # OPEN with a deep token

    def huge(self, p: bytes) -> bytes:
        return self.rng.choice([
            b"\x5b" + b"\xff" * 8, b"\x9b" + b"\xff" * 8, b"\xbb\x00\x00\x00\x01\x00\x00\x00\x00",
            b"\xa5\x00\x02\x02\x5a\xff\xff\xff\xff", b"\xa2\x00\x07\x03\xba\xff\xff\xff\xff",
            b"\xa1\x00\x1b" + b"\xff" * 8, b"\xa1\x3b" + b"\xff" * 8 + b"\x00",
            b"\x7a\x00\x0f\xff\xff" + b"a" * 20])

    def weird(self, p: bytes) -> bytes:
        """Things CBOR has and these messages never use."""
        return self.rng.choice([
            b"\xa1\x00\xfb\x40\x14\x00\x00\x00\x00\x00\x00", b"\xbf\x00\x05\xff",
            b"\xa1\x00\xf9\x45\x00", b"\xa2\x00\x05\xf7\xf6", b"\xa1\x00\xc1\x05",
            b"\xa1\x00\xf8\x20", b"\x9f\x00\xff", b"\xa1\x00\x5f\x41\x00\xff",
            b"\xa1\x00\x7f\x61a\xff", b"\xa1\x00\x05\x00", b"\xa2\x00\x05\x00\x05",
            b"\xa1\x00\x25", b"\xa1\x00\x3b\x7f\xff\xff\xff\xff\xff\xff\xff",
            b"\xa1\x00\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xa1\x40\x05", b"\xa1\xf4\x05",
            b"\xa2\x00\x02\x02\x62\xc3\x28",  # invalid UTF-8 where text is expected
        ]) + (p[3:] if self.rng.random() < 0.3 else b"")

    def random_payload(self, p: bytes) -> bytes:
        return self.rng.randbytes(self.rng.choice((0, 1, 2, 3, 8, 32, 200, 1024)))

    def oversized(self, p: bytes) -> bytes:
        return b"\xa1\x00\x05" + b"\x00" * self.rng.randint(1022, 1100)

    PAYLOAD_OPS = ("bitflip", "bitflip", "bitflip", "overwrite", "overwrite", "truncate",
                   "splice", "insert", "length_lie", "deep", "huge", "weird", "random_payload",
                   "oversized")

    def mutate_payload(self, p: bytes) -> bytes:
        out = p
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            out = getattr(self, self.rng.choice(self.PAYLOAD_OPS))(out)
        return out

    # stream mutations (the frame itself)
    def stream(self, valid: bytes, spent: list[bytes]) -> tuple[bytes, str]:
        """One fuzz item: bytes to write, and the kind of mutation (for the tally).
        `valid` is a valid payload (often for the live nonce); `spent` more."""
        r = self.rng.random()
        if r < 0.60:
            return frame_of(self.mutate_payload(valid)), "payload"
        f = frame_of(valid)
        if r < 0.70:  # damage the frame: the CRC or the COBS breaks
            b = bytearray(f[:-1])
            for _ in range(self.rng.randint(1, 4)):
                i = self.rng.randrange(len(b) * 8)
                b[i // 8] ^= 1 << (i % 8)
            return bytes(b) + b"\x00", "frame-bits"
        if r < 0.76:  # a frame cut short, glued to the next
            return f[:self.rng.randrange(1, len(f))] + frame_of(self.pick()), "frame-cut"
        if r < 0.82:  # garbage between valid (spent) frames
            parts = []
            for _ in range(self.rng.randint(2, 6)):
                parts.append(self.rng.randbytes(self.rng.randint(1, 60)))
                parts.append(frame_of(self.rng.choice(spent)))
            return b"".join(parts), "interleave"
        if r < 0.86:  # a frame longer than MAX_FRAME, no zero in it
            n = self.rng.randint(frames.MAX_FRAME - 2, frames.MAX_FRAME + 600)
            return bytes(self.rng.randint(1, 255) for _ in range(n)) + b"\x00", "oversize"
        if r < 0.90:  # raw random bytes
            return self.rng.randbytes(self.rng.randint(1, 300)) + b"\x00", "random"
        if r < 0.93:  # empty frames and zeros around a mutated frame
            return (b"\x00" * self.rng.randint(1, 8) + frame_of(self.mutate_payload(valid))
                    + b"\x00" * self.rng.randint(0, 3)), "zeros"
        if r < 0.97:  # two frames spliced at the byte level
            g = frame_of(self.pick())
            return f[:self.rng.randrange(len(f))] + g[self.rng.randrange(len(g)):], "frame-splice"
        return b"\x00" + frame_of(self.mutate_payload(self.pick())), "payload"


# --- what counts as a valid request --------------------------------------------------
# The fields that make a request what it is. OPEN's proof covers nonce, token
# and action, not OPEN_ARGS (PROTOCOL.md 5): a valid request with other
# arguments is still valid (a log read of another page), so it is not sent.
CHECKED = {msg.OPEN: (1, 2, 3, 4), msg.ADMIN: (1, 2, 3, 4), msg.COMMISSION: tuple(range(1, 9))}


def requests_in(stream: bytes) -> list[tuple[int, dict[int, Any]]]:
    """The messages the lock's decoder and message parser find in `stream`."""
    out = []
    for payload in frames.Decoder().feed(stream):
        try:
            out.append(msg.decode(payload))
        except msg.MessageError:
            pass
    return out


def same_request(a: tuple[int, dict[int, Any]], b: tuple[int, dict[int, Any]]) -> bool:
    if a[0] != b[0] or a[0] not in CHECKED:
        return False
    return all(a[1].get(k) == b[1].get(k) for k in CHECKED[a[0]])


ODD_ACTIONS = ("", "admin", "opeN", "open ", " open", "log\x00", "x" * 16, "öppna", "OPEN",
               "status", "decommission")
ODD_VALUES: tuple[Any, ...] = (-1, 0, 2**64 - 1, -(2**63), True, False, "1", b"", [], {}, [1, 2], {1: {1: 1}},
              2**31, 2**30)


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


class Campaign:
    def __init__(self, lock: SimulatedLock, seed: int, out: Callable[[str], None] = print) -> None:
        self.lock = lock
        self.rng = random.Random(seed)
        self.report = Report(seed)
        self.out = out
        self.site_secret = self.rng.randbytes(32)
        self.secret = keys.lock_secret(self.site_secret, LOCK_ID)
        self.admin_key = keys.admin_key(self.secret)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sent = 0
        self.grants: list[issuer.Grant] = []

    # the site's side
    def grant(self, sub: str, rng: random.Random | None = None) -> issuer.Grant:
        now = int(time.time())
        return issuer.issue_token(self.site_secret, LOCK_ID, iss=ISSUER, sub=sub,
                                  start=now - 600, end=now + 3600,
                                  scope=(rng or self.rng).choice(("open", "open log", "log")))

    def commission(self) -> None:
        with self.lock.serial_link() as link:
            Installer(link).commission(lock_id=LOCK_ID, secret=self.secret, suite="hmac",
                                       issuer=ISSUER, time=int(time.time()))

    def updates(self) -> list[bytes]:
        now = int(time.time())
        return [issuer.time_update(self.site_secret, LOCK_ID, now),
                issuer.revocation_update(self.site_secret, LOCK_ID, 1, now, 0, {}, {}),
                issuer.time_update(self.site_secret, "lock-other", now)]

    def corpus(self, rng: random.Random) -> list[bytes]:
        g = self.grant("fuzz-corpus", rng)
        nonce = rng.randbytes(16)
        proof = msg.open_proof(g.pop_key, nonce, LOCK_ID, "open", g.token)
        args: dict[int, Any] = {1: 1}
        return [
            msg.encode(msg.GET_HELLO, {}),
            msg.encode(msg.OPEN, {1: nonce, 2: g.token, 3: "open", 4: proof}),
            msg.encode(msg.OPEN, {1: nonce, 2: g.token, 3: "log", 4: proof, 5: self.updates(),
                                  6: {1: 1, 2: 5}}),
            msg.encode(msg.ADMIN, {1: nonce, 2: "log", 3: args,
                                   4: msg.admin_mac(self.admin_key, nonce, LOCK_ID, "log", args)}),
            msg.encode(msg.COMMISSION, {1: nonce, 2: "lock-x", 3: bytes(32), 4: "ed25519",
                                        5: int(time.time()), 6: ISSUER, 7: "door", 8: bytes(32)}),
            msg.encode(msg.HELLO, {1: LOCK_ID, 2: nonce, 3: int(time.time()), 4: 0, 5: 0, 6: True,
                                   7: 1, 8: "hmac", 9: {4: 1, 5: 2}}),
            msg.encode(msg.ERROR, {1: reasons.REPLAY, 2: nonce}),
            msg.encode(msg.RESULT, {1: nonce, 2: 0, 3: int(time.time()), 4: 3, 5: {1: 0},
                                    6: bytes(32)}),
            g.token, *self.updates(),
        ]

    def live_request(self, rng: random.Random, nonce: bytes, serial: bool) -> tuple[bytes, bool]:
        """A valid request for the live nonce, to be mutated, and whether it is
        one that cannot be allowed whatever happens to it (an unknown action)."""
        if serial and rng.random() < 0.4:
            op, args = rng.choice((("log", {1: 1}), ("status", {}), ("sync", {})))
            return msg.encode(msg.ADMIN, {1: nonce, 2: op, 3: args, 4: msg.admin_mac(
                self.admin_key, nonce, LOCK_ID, op, args)}), False
        g = rng.choice(self.grants)
        action = rng.choice(("open", "log"))
        if rng.random() < 0.15:
            # Structure-aware: a real proof over an action no lock knows, with odd
            # arguments: past the token and the proof, into the refusals.
            action = rng.choice(ODD_ACTIONS)
            odd = rng.choice(ODD_VALUES)
            args = {rng.choice((1, 2, 3, -1, 99)): odd}  # under the proof, as a key sends it
            odd_open: dict[int, Any] = {
                1: nonce, 2: g.token, 3: action,
                4: msg.open_proof(g.pop_key, nonce, LOCK_ID, action, g.token, args), 6: args}
            return msg.encode(msg.OPEN, odd_open), True
        fields: dict[int, Any] = {1: nonce, 2: g.token, 3: action,
                                  4: msg.open_proof(g.pop_key, nonce, LOCK_ID, action, g.token)}
        if rng.random() < 0.3:
            fields[5] = rng.sample(self.updates(), rng.randint(1, 3))
        if action == "log":
            fields[6] = {1: rng.randint(0, 3)}
        return msg.encode(msg.OPEN, fields), False

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
