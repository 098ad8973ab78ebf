"""The power-cut campaign of issue #12 in CI (tests/campaign_powercut.py): a
seeded sample of 300 cuts of the scripted day under CPython; `make powercut`
runs every operation in every mode. And the defects it found, kept as
regression tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import campaign_powercut as day

from firmware import hal as hal_mod
from firmware.lock import END_DECOMMISSIONED, Lock
from protocol import clock, events, reasons
from protocol import messages as msg
from simulator.flash import BlockDevice, PowerCut
from simulator.lfs import LittleFsFs

CI_CUTS = 300
SEED = int(os.environ.get("LOCK_POWERCUT_SEED", "12"))


def test_power_cut_campaign_seeded_sample() -> None:
    result = day.campaign(sample=CI_CUTS, seed=SEED)
    assert result["cuts"] == CI_CUTS
    # The sample reaches every part of the day.
    assert {"open", "revocation", "time", "log pull"} <= set(result["by_step"])


def test_cut_after_the_decommissioned_record_finishes_the_decommissioning() -> None:
    """Found by the campaign: a cut after DECOMMISSIONED was written but before
    the configuration was deleted left the lock commissioned with a log that
    said its identity had ended (a mix of old and new), and went on logging
    under that identity after it. The boot now finishes the decommissioning."""
    root = Path(tempfile.mkdtemp(prefix="decom-"))
    flash = day.new_flash()
    LittleFsFs.mkfs(BlockDevice(flash, 0, day.FS_BLOCKS, "fs"))
    hal = day.FlashHAL(root, flash, clock.from_unix(day.T0))
    lock = Lock(hal)
    lock.commission(day.commission_fields(day.T0))
    assert day.attempt(lock, day.Day().grants["s1"]) == reasons.ALLOW
    seq = lock.log.next_seq
    flash.cut_at(1, "lost")  # the record is written; the next operation is cut
    try:
        lock.decommission(b"\x00" * msg.NONCE_LEN)
        raise AssertionError("no cut")
    except PowerCut:
        pass
    flash.reboot()
    hal = day.FlashHAL(root, flash, clock.from_unix(day.T0) + 60)
    hal.reboot(hal_mod.RESET_POWER_ON, rtc_lost=True)
    lock = Lock(hal)
    recs = [events.decode(bytes(r)) for r in lock.log.read()]
    assert [e.code for e in recs if e.seq >= seq][:1] == [events.DECOMMISSIONED]
    assert lock.config is None  # the identity ended, as its log says
    assert lock.previous_identity() == (END_DECOMMISSIONED, seq + 1)
    assert lock.revocations.version == 0
    # Nothing after the identity's last record is logged under its key.
    for key, anchor, seg in day.segments([bytes(r) for r in lock.log.read()]):
        assert events.verify_chain(seg, key, anchor_mac=anchor).ok
    lock.commission(day.commission_fields(day.T0 + 120))
    assert day.attempt(lock, day.Day().grants["s2"]) == reasons.ALLOW
