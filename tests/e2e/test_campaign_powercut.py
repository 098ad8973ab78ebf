"""The power-cut campaign of issue #12 in CI (tests/campaign_powercut.py): a
seeded sample of 300 cuts of the scripted day under CPython; `make powercut`
runs every operation in every mode. And the defects it found, kept as
regression tests."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import campaign_powercut as day
import pytest

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


# --- the same day under MicroPython: a seeded sample -----------------------------------
MPY_CUTS = int(os.environ.get("LOCK_MPY_DAY_CUTS", "20"))
SCRIPT = Path(__file__).resolve().parents[1] / "mpyscripts" / "powercut_day.py"


def _hexg(g) -> list[str]:
    return [g.token.hex(), g.pop_key.hex()]


class MpyDay:
    def __init__(self, tmp: Path) -> None:
        from mpybuild import LOCK_PACKAGES, PORT_PACKAGES, compile_tree

        self.tmp = tmp
        code = tmp / "code"
        compile_tree(code, LOCK_PACKAGES[:2] + PORT_PACKAGES)
        d = day.Day()
        self.day = d
        steps = []
        grants: dict[str, list[str]] = {}
        for s in day.steps(d):
            if s[0] in ("open", "refusal"):  # a grant by name (the heap is small)
                name = next(k for k, g in d.grants.items() if g is s[1])
                grants[name] = _hexg(s[1])
                steps.append([s[0], name] + list(s[2:]))
            elif s[0] == "revocation":
                steps.append([s[0], s[1].hex(), s[2]])
            else:
                steps.append(list(s))
        self.size = (day.FS_BLOCKS + day.LOG_BLOCKS) * 4096
        self.base = {"code": str(code), "lock_id": day.LOCK_ID, "site": day.SITE, "t0": day.T0,
                     "fs_blocks": day.FS_BLOCKS, "log_blocks": day.LOG_BLOCKS,
                     "size": self.size, "lock_secret": day.LOCK_SECRET.hex(), "steps": steps,
                     "grants": grants,
                     "check": _hexg(d.late), "recommission_at": day.RECOMMISSION_AT,
                     "check_at": day.CHECK_AT}

    def run(self, name: str, phase: str, flash: Path, cut: dict | None = None) -> tuple[str, dict]:
        import json
        import subprocess

        from test_on_micropython import MPY

        out = self.tmp / f"{name}.{phase}.out.json"
        job = dict(self.base, phase=phase, flash=str(flash), cut=cut, out=str(out))
        path = self.tmp / f"{name}.{phase}.job.json"
        path.write_text(json.dumps(job))
        proc = subprocess.run([MPY, "-X", "heapsize=1M", str(SCRIPT)],
                              env=dict(os.environ, LOCK_CUT_JOB=str(path)),
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{name} {phase}:\n{proc.stdout}{proc.stderr}"
        return proc.stdout, json.loads(out.read_text()) if out.exists() else {}


def _acked(got: dict) -> day.Acked:
    a = day.Acked()
    a.records = [bytes.fromhex(h) for h in got["records"]]
    a.config, a.rev, a.trusted_at = tuple(got["config"]), tuple(got["rev"]), \
        tuple(got["trusted_at"])
    a.step = got["step"]
    return a


def mpy_campaign(tmp: Path, cuts: int, seed: int = SEED, out=print) -> dict:
    """A seeded sample of `cuts` cuts of the day under MicroPython: one in each
    part of the day first (commissioning, openings, revocations, time, log
    pull, decommissioning), the rest anywhere, the modes dealt in turn."""
    import random
    import time
    from concurrent.futures import ThreadPoolExecutor

    from simulator.flash import CUT_MODES

    started = time.monotonic()
    r = MpyDay(tmp)
    fresh = tmp / "fresh.bin"
    fresh.write_bytes(b"\xff" * r.size)
    r.run("fresh", "mkfs", fresh)
    image = fresh.read_bytes()
    clean = tmp / "clean.bin"
    clean.write_bytes(image)
    stdout, acked = r.run("clean", "day", clean)
    assert "DONE" in stdout and acked["step"] == "decommission", stdout
    ops = acked["ops"]
    total = ops[-1][1]
    parts: dict[str, list[int]] = {}
    prev = 0
    for step, n in ops:
        parts.setdefault(step, []).extend(range(prev + 1, n + 1))
        prev = n
    rng = random.Random(seed)
    chosen: list[int] = []
    for step in ("commission", "open", "revocation", "time", "log pull", "decommission"):
        if len(chosen) < cuts:
            chosen.append(rng.choice(parts[step]))
    rest = [k for k in range(1, total + 1) if k not in chosen]
    chosen += rng.sample(rest, max(0, cuts - len(chosen)))
    modes = [CUT_MODES[(i + seed) % len(CUT_MODES)] for i in range(len(chosen))]

    def one(i: int) -> str:
        k, mode = chosen[i], modes[i]
        where = f"MicroPython, seed {seed}: cut at operation {k} of {total} ({mode})"
        flash = tmp / f"cut{i}.bin"
        flash.write_bytes(image)
        text, got = r.run(f"cut{i}", "day", flash, {"after": k - 1, "mode": mode,
                                                     "seed": seed * 1000 + i})
        assert f"CUT {k}" in text, (where, text)
        _, seen = r.run(f"cut{i}", "check", flash)
        seen["records"] = [bytes.fromhex(h) for h in seen["records"]]
        seen["after"] = [bytes.fromhex(h) for h in seen["after"]]
        a = _acked(got)
        day.check(a, seen, where + f" after step {a.step!r}")
        return a.step

    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(one, range(len(chosen))))
    took = time.monotonic() - started
    out(f"power cut (MicroPython): {len(done)} seeded cuts (seed {seed}) over {total} flash "
        f"operations of the day, all checked, {took:.1f} s; after steps: "
        + ", ".join(sorted(set(done))))
    return {"cuts": len(done), "ops": total, "seconds": took}


@pytest.mark.micropython
def test_power_cut_campaign_under_micropython(tmp_path: Path) -> None:
    from test_on_micropython import MPY, NOT_INSTALLED

    if MPY is None:
        pytest.skip(NOT_INSTALLED)
    assert mpy_campaign(tmp_path, MPY_CUTS)["cuts"] == MPY_CUTS
