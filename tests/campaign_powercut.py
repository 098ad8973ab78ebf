"""Power-cut campaign (issue #12): a power cut at every flash operation of a
scripted day, in every cut mode of the flash model.

The day: commissioning, 200 openings, two revocation updates, two time updates
(installer syncs), a full log pull (the serial admin op "log", page by page:
one LOG_READ record), a decommissioning. firmware.lock.Lock runs on the
simulator's NOR flash model (simulator/flash.py) with real littlefs for its
configuration and the raw ring for its log, through tests/firmware/test_powercut_lock.py's
FlashHAL. After each cut the lock boots on the flash the cut left and must show:
no committed record lost or altered, no corrupt record accepted, configuration,
revocation list and trusted time old or new (never a mix), every log chain
verifies, and the lock still opens (commissioned again if the cut left it free).

    python tests/campaign_powercut.py            # every operation x every mode
    python tests/campaign_powercut.py --sample 300 --seed 12

tests/e2e/test_campaign_powercut.py runs a seeded sample of 300 in CI.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakehal import FakeHAL  # noqa: E402
from firmware import hal as hal_mod  # noqa: E402
from firmware.lock import Lock, Session  # noqa: E402
from protocol import clock, events, keys, reasons  # noqa: E402
from protocol import messages as msg  # noqa: E402
from simulator.flash import CUT_MODES, BlockDevice, FlashDevice, PowerCut  # noqa: E402
from simulator.lfs import LittleFsFs  # noqa: E402
from tools import issuer  # noqa: E402

SECRET = bytes(range(32))
LOCK_ID = "DAY-1"
SITE = "day-site"
T0 = 1_800_000_000  # POSIX
FS_BLOCKS, LOG_BLOCKS = 24, 6  # the log keeps 512 records: the whole day
OPENINGS = 200
STAFF = ["s%d" % i for i in range(8)]
REVOKED = ("x1", "x2")  # blocked by the two revocation updates
STEP_S = 60  # real seconds between openings
LOCK_SECRET = keys.lock_secret(SECRET, LOCK_ID)
LOG_KEY = keys.log_key(LOCK_SECRET)


class FlashHAL(FakeHAL):
    def __init__(self, root: Path, flash: FlashDevice, now: int) -> None:
        super().__init__(root, now)
        self.flash = flash
        self.fs_dev = BlockDevice(flash, 0, FS_BLOCKS, "fs")
        self.log_dev = BlockDevice(flash, FS_BLOCKS, LOG_BLOCKS, "log")  # type: ignore[assignment]

    def config_fs(self):  # type: ignore[override]
        return LittleFsFs(self.fs_dev)


def new_flash() -> FlashDevice:
    return FlashDevice((FS_BLOCKS + LOG_BLOCKS) * 4096, strict=True)


class Day:
    """The day's tokens and updates, made once (the issuer's side)."""

    def __init__(self) -> None:
        def grant(sub: str, at: int) -> issuer.Grant:
            return issuer.issue_token(SECRET, LOCK_ID, iss=SITE, sub=sub, start=at - 600,
                                      end=at + 8 * 3600, iat=at - 900)
        self.grants = {s: grant(s, T0) for s in STAFF + list(REVOKED)}
        self.late = grant("s0", T0 + 6 * 3600)  # for the check after a cut
        self.rev = [issuer.revocation_update(SECRET, LOCK_ID, 1, T0 + 60, 0, {"x1": T0 + 60}, {}),
                    issuer.revocation_update(SECRET, LOCK_ID, 2, T0 + 7200, 0,
                                             {"x1": T0 + 60, "x2": T0 + 7200}, {})]
        self.syncs = [T0 + 3600, T0 + 3 * 3600]


def commission_fields(at: int) -> dict:
    return {1: b"", 2: LOCK_ID, 3: LOCK_SECRET, 4: "hmac", 5: at, 6: SITE, 7: "apartment"}


def attempt(lock: Lock, g: issuer.Grant) -> int:
    session = Session("ble")
    _, hello = msg.decode(lock.hello(session))
    proof = msg.open_proof(g.pop_key, hello[2], LOCK_ID, "open", g.token)
    reason, claims, _ = lock.check_request(session, {1: hello[2], 2: g.token, 3: "open",
                                                     4: proof})
    if reason == reasons.ALLOW:
        lock.record(events.OPENED, 0, events.key_id_of(claims.sub))
    return reason


class Acked:
    """What the lock has acknowledged (a cut must never undo it) and what the
    operation under way may leave instead ("old or new")."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.config: tuple = (None,)  # lock ids the config may hold after a cut
        self.rev: tuple = (0,)  # revocation versions it may hold
        self.trusted_at: tuple = (None,)  # trusted times it may hold (None: any)
        self.step = "start"
        self.ops: list[tuple[str, int]] = []  # (step, flash ops when it ended)


def pull_log(lock: Lock) -> list[bytes]:
    """The installer's full log pull: admin "log" page by page, one bound."""
    out: list[bytes] = []
    start, bound = 1, None
    while True:
        args = {1: start} if bound is None else {1: start, 2: bound}
        outcome, data = lock.admin("log", args)
        assert outcome == reasons.ALLOW
        bound = data[2]
        out += data[1]
        if not data[1] or int.from_bytes(data[1][-1][:4], "big") >= bound:
            return out
        start = int.from_bytes(data[1][-1][:4], "big") + 1


def steps(day: Day) -> list[tuple]:
    """The day, step by step (the same list drives the MicroPython run)."""
    out: list[tuple] = [("commission", T0)]
    opened = 0
    for part in range(2):
        for _ in range(OPENINGS // 2):
            out.append(("open", day.grants[STAFF[opened % len(STAFF)]], STEP_S // 2))
            opened += 1
        out.append(("revocation", day.rev[part], part + 1))
        out.append(("refusal", day.grants[REVOKED[part]]))
        out.append(("time", day.syncs[part]))
    return out + [("pull",), ("decommission",)]


def scenario(hal: FlashHAL, acked: Acked, day: Day) -> Lock:
    lock = Lock(hal)
    flash = hal.flash

    def ack(step: str, **now) -> None:
        # The step returned: what it wrote is committed, and it is the state.
        last = int.from_bytes(acked.records[-1][:4], "big") if acked.records else 0
        acked.records += [bytes(r) for r in lock.log.read(from_seq=last + 1)]
        for k, v in now.items():
            setattr(acked, k, (v,))
        acked.step = step
        acked.ops.append((step, flash.ops))

    ack("boot")
    for step in steps(day):
        what = step[0]
        if what == "commission":
            acked.config = (None, LOCK_ID)
            lock.commission(commission_fields(step[1]))
            ack("commission", config=LOCK_ID, trusted_at=clock.from_unix(step[1]))
        elif what == "open":
            hal.advance(step[2])
            assert attempt(lock, step[1]) == reasons.ALLOW
            ack("open")
        elif what == "revocation":
            acked.rev = (step[2] - 1, step[2])
            assert lock.apply_revocation(step[1]) == reasons.ALLOW
            ack("revocation", rev=step[2])
        elif what == "refusal":
            assert attempt(lock, step[1]) == reasons.REVOKED
            ack("refusal")
        elif what == "time":
            t = step[1]
            hal.rtc = clock.from_unix(t)  # the RTC keeps true time here
            acked.trusted_at = (acked.trusted_at[0], clock.from_unix(t))
            outcome, data = lock.admin("sync", {1: t})
            assert outcome == reasons.ALLOW and data[1] == reasons.ALLOW
            ack("time", trusted_at=clock.from_unix(t))
        elif what == "pull":
            pulled = pull_log(lock)
            assert lock.config is not None
            mine = [bytes(r) for r in lock.log.read(from_seq=lock.config.commissioned_seq)]
            assert pulled == mine and events.decode(mine[-1]).code == events.LOG_READ
            ack("log pull")
        elif what == "decommission":
            acked.config = (LOCK_ID, None)
            answer = lock.decommission(b"\x00" * msg.NONCE_LEN)
            assert msg.decode(answer)[1][2] == reasons.ALLOW
            ack("decommission", config=None, rev=0, trusted_at=None)
    return lock


def segments(records: list[bytes]) -> list[tuple[bytes, bytes | None, list[bytes]]]:
    """The log split into chains: (log key, anchor mac, records). An identity's
    chain starts at its COMMISSIONED (from GENESIS) and ends at its
    DECOMMISSIONED; an uncommissioned lock chains on under the all-zero key."""
    out: list[tuple[bytes, bytes | None, list[bytes]]] = []
    first = events.decode(records[0])
    key = LOG_KEY if first.code != events.BOOT or first.seq != 1 else bytes(32)
    cur: list[bytes] = []
    anchor = events.GENESIS_MAC if first.seq == 1 else None
    for r in records:
        e = events.decode(r)
        if e.code == events.COMMISSIONED:
            out.append((key, anchor, cur))
            key, anchor, cur = LOG_KEY, events.GENESIS_MAC, []
        cur.append(r)
        if e.code == events.DECOMMISSIONED:
            out.append((key, anchor, cur))
            key, anchor, cur = bytes(32), e.mac, []
    out.append((key, anchor, cur))
    return [s for s in out if s[2]]


def check_after_cut(flash: FlashDevice, root: Path, acked: Acked, day: Day, where: str) -> None:
    flash.reboot()
    hal = FlashHAL(root, flash, 0)
    hal.reboot(hal_mod.RESET_POWER_ON, rtc_lost=True)
    lock = Lock(hal)  # the boot itself must survive whatever the cut left
    seen = {"records": [bytes(r) for r in lock.log.read()],
            "lock_id": lock.config.lock_id if lock.config is not None else None,
            "rev_version": lock.revocations.version, "rev_staff": list(lock.revocations.staff),
            "trusted_at": lock.clock.trusted_at}
    if lock.config is None:
        lock.commission(commission_fields(RECOMMISSION_AT))
    hal.rtc = max(hal.rtc, CHECK_AT)
    seen["attempt"] = attempt(lock, day.late)
    seen["after"] = [bytes(r) for r in lock.log.read()]
    check(acked, seen, where)


RECOMMISSION_AT = T0 + 5 * 3600  # POSIX: a cut left the lock free, it is commissioned again
CHECK_AT = clock.from_unix(T0 + 6 * 3600)  # lock time of the check's opening (at least)


def check(acked: Acked, seen: dict, where: str) -> None:
    """What the boot after a cut showed (`seen`, from either interpreter)."""
    records = seen["records"]
    by_seq = {int.from_bytes(r[:4], "big"): r for r in records}
    for r in acked.records:  # no committed record lost, none altered
        assert by_seq.get(int.from_bytes(r[:4], "big")) == r, where
    seqs = [int.from_bytes(r[:4], "big") for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), where  # no hole
    for r in records:  # no corrupt record accepted
        events.decode(r)
    assert seen["lock_id"] in acked.config, (where, seen["lock_id"])
    if seen["lock_id"] is not None:  # configuration, list and time: old or new
        assert seen["rev_version"] in acked.rev, (where, seen["rev_version"])
        if seen["rev_version"] >= 1:
            assert "x1" in seen["rev_staff"], where
        if seen["rev_version"] == 2:
            assert "x2" in seen["rev_staff"], where
        if None not in acked.trusted_at:
            assert seen["trusted_at"] in acked.trusted_at, (where, seen["trusted_at"])
    # Every chain verifies: each identity's from its COMMISSIONED to its
    # DECOMMISSIONED, an uncommissioned lock's under the all-zero key.
    for key, anchor, seg in segments(seen["after"]):
        report = events.verify_chain(seg, key, anchor_mac=anchor)
        assert report.ok, (where, report)
    assert seen["attempt"] == reasons.ALLOW, where  # the lock still opens


def clean_run(root: Path, day: Day) -> tuple[bytes, Acked, int]:
    flash = new_flash()
    LittleFsFs.mkfs(BlockDevice(flash, 0, FS_BLOCKS, "fs"))
    image = flash.snapshot()
    flash.ops = 0
    acked = Acked()
    scenario(FlashHAL(root, flash, clock.from_unix(T0)), acked, day)
    return image, acked, flash.ops


def cut_once(image: bytes, root: Path, day: Day, n: int, mode: str, seed: int) -> str:
    """Cut the power at operation n (0-based) in `mode`; boot and check.
    Returns the step the cut fell in."""
    flash = new_flash()
    flash.restore(image)
    acked = Acked()
    flash.cut_at(n, mode, seed=seed)
    where = f"cut at operation {n} ({mode}, seed {seed})"
    try:
        scenario(FlashHAL(root, flash, clock.from_unix(T0)), acked, day)
    except PowerCut:
        pass
    else:
        raise AssertionError(where + ": the scenario ended before the cut")
    where += f" after step {acked.step!r}"
    check_after_cut(flash, root, acked, day, where)
    return acked.step


def campaign(sample: int | None = None, seed: int = 12, out=print) -> dict:
    """Every operation x every mode, or a seeded sample of `sample` cuts."""
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="cutday-"))
    day = Day()
    image, acked, total = clean_run(root, day)
    steps = {s for s, _ in acked.ops}
    assert {"commission", "open", "revocation", "time", "log pull", "decommission"} <= steps
    points = [(n, m) for n in range(total) for m in CUT_MODES]
    if sample is not None and sample < len(points):
        points = random.Random(seed).sample(points, sample)
    by_step: dict[str, int] = {}
    for i, (n, mode) in enumerate(points):
        step = cut_once(image, root, day, n, mode, seed * 100003 + i)
        by_step[step] = by_step.get(step, 0) + 1
    took = time.monotonic() - started
    out(f"power cut (CPython): {len(points)} cuts over {total} flash operations x "
        f"{len(CUT_MODES)} modes ({'seed %d sample' % seed if sample else 'all'}), "
        f"all checked, {took:.1f} s")
    out("  cuts after step: " + ", ".join(f"{k} {v}" for k, v in sorted(by_step.items())))
    return {"cuts": len(points), "ops": total, "seconds": took, "by_step": by_step}


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sample", type=int, default=None)
    ap.add_argument("--seed", type=int, default=12)
    a = ap.parse_args()
    campaign(a.sample, a.seed)
