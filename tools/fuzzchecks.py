"""What a fuzzing campaign (tools/fuzz.py) measures and checks of the lock,
and its report: the firmware's live heap before and after, the log records
the fuzz added, the lock's state (no restart, the bolt never moved), and at
the end GET_HELLO on both links and one valid opening."""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from protocol import events
from tools import issuer
from tools.client import Installer, access
from tools.fuzzframes import ISSUER, LOCK_ID
from tools.simproc import SimulatedLock

# The heap is compared as gc.mem_alloc() after gc.collect() (the live set). It
# may differ by what the lock legitimately keeps between visitors: the hold-off
# list (up to 8 addresses), the peer budget's counters (small ints that become
# boxed once they pass 2**62: never here), the last refusal's cti, a spent
# nonce, the revocation list a valid update installed (a few hundred bytes),
# and where a collection ran. 4 KB is about 2 % of the 192 KB heap: a leak of
# even a few bytes per frame would pass it within a few thousand frames.
HEAP_TOLERANCE = 4096
HEAP_SAMPLES = 3


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


class CampaignChecks:
    """The measurements and the verdict of a Campaign (a mixin of tools/fuzz.Campaign)."""

    # What it uses of the Campaign it is mixed into (and of its SiteSide).
    lock: SimulatedLock
    report: Report
    site_secret: bytes
    admin_key: bytes
    grants: list[issuer.Grant]

    if TYPE_CHECKING:
        def grant(self, sub: str, rng: random.Random | None = None) -> issuer.Grant: ...

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
