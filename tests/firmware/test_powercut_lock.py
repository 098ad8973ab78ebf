"""Power cut at every flash write of the lock's own operations.

The lock (firmware.lock.Lock) runs on the simulator's NOR flash model with
real littlefs (littlefs-python) for its configuration and the raw ring buffer
for its log. A scenario commissions it, opens the door, takes a revocation
update and a time update and logs refusals. The power is cut at every single
program/erase operation of that scenario, in turn in each cut mode (write lost,
torn, bits half-set, erase interrupted); the lock then boots on the same flash
and must show: no acknowledged event lost, no corrupt record accepted, its
configuration and revocation list old or new (never a mix), and it still works.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from fakehal import FakeHAL
from firmware import hal as hal_mod
from firmware.lock import Lock, Session
from protocol import clock, events, keys, reasons
from protocol import messages as msg
from simulator.flash import CUT_MODES, BlockDevice, FlashDevice, PowerCut
from simulator.lfs import LittleFsFs
from tools import issuer

SECRET = bytes(range(32))
LOCK_ID = "PC-1"
SITE = "cut-site"
T0 = 1_800_000_000
FS_BLOCKS, LOG_BLOCKS = 24, 4


class FlashHAL(FakeHAL):
    def __init__(self, root: Path, flash: FlashDevice, now: int) -> None:
        super().__init__(root, now)
        self.flash = flash
        self.fs_dev = BlockDevice(flash, 0, FS_BLOCKS, "fs")
        self.log_dev = BlockDevice(flash, FS_BLOCKS, LOG_BLOCKS, "log")  # type: ignore[assignment]

    def config_fs(self):  # type: ignore[override]
        return LittleFsFs(self.fs_dev)


def fresh_flash() -> FlashDevice:
    flash = FlashDevice((FS_BLOCKS + LOG_BLOCKS) * 4096, strict=True)
    LittleFsFs.mkfs(BlockDevice(flash, 0, FS_BLOCKS, "fs"))
    return flash


def attempt(lock: Lock, grant: issuer.Grant) -> int:
    session = Session("ble")
    _, hello = msg.decode(lock.hello(session))
    proof = msg.open_proof(grant.pop_key, hello[2], LOCK_ID, "open", grant.token)
    reason, claims, _ = lock.check_request(session, {1: hello[2], 2: grant.token, 3: "open",
                                                     4: proof})
    if reason == reasons.ALLOW:
        lock.record(events.OPENED, 0, events.key_id_of(claims.sub))
    return reason


def grant(sub: str, now: int) -> issuer.Grant:
    return issuer.issue_token(SECRET, LOCK_ID, iss=SITE, sub=sub, start=now - 600,
                              end=now + 3600, iat=now - 900)


class Acked:
    """What the lock has acknowledged so far (what a cut must never undo)."""

    def __init__(self) -> None:
        self.records: list[bytes] = []
        self.commissioned = False
        self.rev_version = 0
        self.step = ""


def scenario(hal: FlashHAL, acked: Acked) -> Lock:
    lock = Lock(hal)

    def ack(step: str) -> None:
        acked.records = [bytes(r) for r in lock.log.read()]
        acked.step = step

    ack("boot")
    lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(SECRET, LOCK_ID), 4: "hmac",
                     5: T0, 6: SITE, 7: "apartment"})
    acked.commissioned = True
    ack("commission")
    assert attempt(lock, grant("s1", T0)) == reasons.ALLOW
    ack("open")
    update = issuer.revocation_update(SECRET, LOCK_ID, 1, T0, 0, {"s2": T0 + 1}, {})
    assert lock.apply_revocation(update) == reasons.ALLOW
    acked.rev_version = 1
    ack("revocation")
    outcome, _ = lock.admin("sync", {1: T0 + 30})
    assert outcome == reasons.ALLOW
    ack("time")
    for _ in range(6):
        assert attempt(lock, grant("s2", T0)) == reasons.REVOKED
        ack("refusal")
    return lock


def check_after_cut(flash: FlashDevice, root: Path, acked: Acked) -> None:
    flash.reboot()
    hal = FlashHAL(root, flash, clock.from_unix(T0) + 60)
    hal.reboot(hal_mod.RESET_POWER_ON, rtc_lost=True)
    lock = Lock(hal)  # the boot itself must survive whatever the cut left
    records = [bytes(r) for r in lock.log.read()]
    by_seq = {int.from_bytes(r[:4], "big"): r for r in records}
    for r in acked.records:  # no acknowledged event lost, none altered
        assert by_seq.get(int.from_bytes(r[:4], "big")) == r, acked.step
    for r in records:  # no corrupt record accepted
        events.decode(r)
    if acked.commissioned:
        assert lock.config is not None and lock.config.lock_id == LOCK_ID, acked.step
    # Old or new, never a mix: the version is one the issuer made.
    assert lock.revocations.version in (acked.rev_version, acked.rev_version + 1)
    if lock.revocations.version == 1:
        assert "s2" in lock.revocations.staff
    if lock.config is None:  # the commissioning was cut: it can be done again
        lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(SECRET, LOCK_ID),
                         4: "hmac", 5: T0 + 60, 6: SITE, 7: "apartment"})
    # The lock still works, and its log chain still verifies.
    assert attempt(lock, grant("s1", T0 + 60)) == reasons.ALLOW
    records = [bytes(r) for r in lock.log.read()]
    decoded = [events.decode(r) for r in records]
    start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
    report = events.verify_chain(records[start:], keys.log_key(keys.lock_secret(SECRET, LOCK_ID)),
                                 anchor_mac=events.GENESIS_MAC)
    assert report.ok, (acked.step, report)


def test_power_cut_at_every_write_of_the_lock() -> None:
    root = Path(tempfile.mkdtemp(prefix="cutlock-"))
    start = fresh_flash()
    snapshot = start.snapshot()
    start.ops = 0
    clean = scenario(FlashHAL(root, start, clock.from_unix(T0)), Acked())
    total = start.ops
    assert clean.log.count >= 10 and total > 20
    tried = 0
    for n in range(total):
        for mode in CUT_MODES:
            flash = FlashDevice((FS_BLOCKS + LOG_BLOCKS) * 4096, strict=True)
            flash.restore(snapshot)
            acked = Acked()
            flash.cut_at(n, mode, seed=n)
            with pytest.raises(PowerCut):
                scenario(FlashHAL(root, flash, clock.from_unix(T0)), acked)
            check_after_cut(flash, root, acked)
            tried += 1
    print(f"power cut at {total} flash operations x {len(CUT_MODES)} modes = {tried} cuts")
    assert tried == total * len(CUT_MODES)


# --- factory reset ------------------------------------------------------------------
class ErasingFlashHAL(FlashHAL):
    """A board that can erase its whole configuration region (as the real ones)."""

    def erase_config_storage(self) -> None:  # type: ignore[override]
        for b in range(FS_BLOCKS):
            self.fs_dev.ioctl(6, b)

    def config_fs(self):  # type: ignore[override]
        try:
            return LittleFsFs(self.fs_dev)
        except OSError:
            size = FS_BLOCKS * 4096
            if bytes(self.flash.data[0:size]).count(0xFF) != size:
                raise  # damaged, not erased: the firmware's to handle
            return LittleFsFs.mkfs(self.fs_dev)


def reset_scenario(hal: FlashHAL, acked: Acked) -> Lock:
    lock = Lock(hal)
    lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(SECRET, LOCK_ID), 4: "hmac",
                     5: T0, 6: SITE, 7: "apartment"})
    for i in range(3):
        assert attempt(lock, grant(f"s{i}", T0)) == reasons.ALLOW
    acked.records = [bytes(r) for r in lock.log.read()]
    acked.step = "before the reset"
    lock.factory_reset()
    acked.step = "reset"
    return lock


def test_power_cut_at_every_write_of_a_factory_reset() -> None:
    """Cut anywhere in a factory reset, the lock boots either still itself with
    every record, or reset: no record of the old identity left, the numbering
    going on from the reset's own seq, and it can be commissioned again."""
    root = Path(tempfile.mkdtemp(prefix="cutreset-"))
    start = fresh_flash()
    snapshot = start.snapshot()
    start.ops = 0
    probe = Acked()
    hal = ErasingFlashHAL(root, start, clock.from_unix(T0))
    lock = Lock(hal)
    before = start.ops
    del lock
    start.restore(snapshot)
    start.ops = 0
    reset_scenario(ErasingFlashHAL(root, start, clock.from_unix(T0)), probe)
    total = start.ops
    reset_seq = events.decode(probe.records[-1]).seq + 1
    assert total > before
    tried = outcomes = 0
    for n in range(total):
        for mode in CUT_MODES:
            flash = FlashDevice((FS_BLOCKS + LOG_BLOCKS) * 4096, strict=True)
            flash.restore(snapshot)
            acked = Acked()
            flash.cut_at(n, mode, seed=n)
            try:
                reset_scenario(ErasingFlashHAL(root, flash, clock.from_unix(T0)), acked)
                continue  # the cut fell after the last operation of this run
            except PowerCut:
                pass
            flash.reboot()
            hal = ErasingFlashHAL(root, flash, clock.from_unix(T0) + 60)
            hal.reboot(hal_mod.RESET_POWER_ON, rtc_lost=True)
            lock = Lock(hal)
            tried += 1
            if acked.step != "before the reset":
                continue  # cut before the reset began: the other test's ground
            records = [bytes(r) for r in lock.log.read()]
            assert lock.log.next_seq >= reset_seq, (n, mode)  # the numbering never restarts
            if lock.config is not None:  # the reset did not take: nothing lost
                held = set(records)
                assert all(r in held for r in acked.records), (n, mode)
            else:
                outcomes += 1
                assert all(events.decode(r).seq >= reset_seq for r in records), (n, mode)
                assert lock.previous_identity() == (2, reset_seq), (n, mode)
                lock.commission({1: b"", 2: LOCK_ID, 3: keys.lock_secret(SECRET, LOCK_ID),
                                 4: "hmac", 5: T0 + 60, 6: SITE, 7: "apartment"})
            assert attempt(lock, grant("after", T0 + 60)) == reasons.ALLOW, (n, mode)
    print(f"factory reset: cut at {total} operations x {len(CUT_MODES)} modes, "
          f"{tried} cut runs, {outcomes} came back reset")
    assert outcomes > 0
