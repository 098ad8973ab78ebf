"""Power cuts under MicroPython: the lock's operations (tests/firmware/test_powercut_lock.py's
scenario: commissioning, an opening, a revocation update, a time update, log
appends) run by the real MicroPython interpreter (unix port) on the
MicroPython HAL's flash (the one flash model, simulator/mpy/flash.py, over a flash file,
with MicroPython's own littlefs, vfs.VfsLfs2, on its first blocks and the raw
event log after them). The power is cut at a seeded sample of 20 of the
scenario's program/erase operations (up to 3 in each part of it: the boot,
commissioning, the opening, the revocation, the time update, the appends; in the cut modes of
simulator/mpy/flash.py: write lost, torn, bits half-set, erase interrupted); the
interpreter dies with the flash as the cut left it, a new interpreter boots the
lock on it, and the same checks as under CPython follow: no acknowledged event
lost, no corrupt record accepted, configuration and revocation list old or new,
and the lock still works (its log chain verifies).

LOCK_MPY_POWERCUT_SEED picks another sample (the seed is printed on failure);
LOCK_MPY_POWERCUT_ALL=1 cuts at every operation in every mode instead.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from test_on_micropython import MPY, NOT_INSTALLED

from mpybuild import LOCK_PACKAGES, PORT_PACKAGES, compile_tree
from protocol import events, keys, reasons
from simulator.flash import CUT_MODES
from tools import issuer

ROOT = Path(__file__).resolve().parents[2]
SECRET = bytes(range(32))
LOCK_ID = "PC-1"
SITE = "cut-site"
T0 = 1_800_000_000
FS_BLOCKS, LOG_BLOCKS = 24, 4
SEED = int(os.environ.get("LOCK_MPY_POWERCUT_SEED", "20261122"))
PER_PART = 3
TOTAL = 20
HEAP = "256K"

needs_micropython = [pytest.mark.micropython, pytest.mark.skipif(MPY is None, reason=NOT_INSTALLED)]

SCRIPT = ROOT / "tests" / "mpyscripts" / "powercut_scenario.py"  # MicroPython


def grant(sub: str, now: int) -> list[str]:
    g = issuer.issue_token(SECRET, LOCK_ID, iss=SITE, sub=sub, start=now - 600,
                           end=now + 3600, iat=now - 900)
    return [g.token.hex(), g.pop_key.hex()]


class Runner:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.code = tmp / "code"
        compile_tree(self.code, LOCK_PACKAGES[:2] + PORT_PACKAGES)
        self.script = SCRIPT
        self.size = (FS_BLOCKS + LOG_BLOCKS) * 4096
        update = issuer.revocation_update(SECRET, LOCK_ID, 1, T0, 0, {"s2": T0 + 1}, {})
        self.base = {
            "code": str(self.code), "lock_id": LOCK_ID, "site": SITE, "t0": T0,
            "fs_blocks": FS_BLOCKS, "log_blocks": LOG_BLOCKS, "size": self.size,
            "lock_secret": keys.lock_secret(SECRET, LOCK_ID).hex(),
            "s1": grant("s1", T0), "s2": [grant("s2", T0) for _ in range(6)],
            "update": update.hex(), "check": grant("s1", T0 + 60),
        }

    def run(self, name: str, phase: str, flash: Path, cut: dict | None = None) -> tuple[str, dict]:
        job = dict(self.base, phase=phase, flash=str(flash), cut=cut,
                   out=str(self.tmp / f"{name}.{phase}.out.json"))
        path = self.tmp / f"{name}.{phase}.job.json"
        path.write_text(json.dumps(job))
        proc = subprocess.run([MPY, "-X", f"heapsize={HEAP}", str(self.script)],
                              env=dict(os.environ, LOCK_CUT_JOB=str(path)),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{name} {phase}:\n{proc.stdout}{proc.stderr}"
        out = json.loads(Path(job["out"]).read_text()) if Path(job["out"]).exists() else {}
        return proc.stdout, out


def check(acked: dict, after: dict, where: str) -> None:
    acked = {"records": [], "commissioned": False, "rev_version": 0, **acked}  # {}: cut at boot
    got = [bytes.fromhex(r) for r in after["records"]]
    by_seq = {int.from_bytes(r[:4], "big"): r for r in got}
    for h in acked["records"]:  # no acknowledged event lost, none altered
        r = bytes.fromhex(h)
        assert by_seq.get(int.from_bytes(r[:4], "big")) == r, where
    for r in got:  # no corrupt record accepted
        events.decode(r)
    if acked["commissioned"]:
        assert after["lock_id"] == LOCK_ID, where
    # Old or new, never a mix.
    assert after["rev_version"] in (acked["rev_version"], acked["rev_version"] + 1), where
    if after["rev_version"] == 1:
        assert "s2" in after["rev_staff"], where
    assert after["attempt"] == reasons.ALLOW, where  # the lock still works
    records = [bytes.fromhex(r) for r in after["after"]]
    decoded = [events.decode(r) for r in records]
    start = max(i for i, e in enumerate(decoded) if e.code == events.COMMISSIONED)
    report = events.verify_chain(records[start:], keys.log_key(keys.lock_secret(SECRET, LOCK_ID)),
                                 anchor_mac=events.GENESIS_MAC)
    assert report.ok, (where, report)


def cut_points(ops: list[list], rng: random.Random) -> list[tuple[str, int]]:
    """TOTAL operation indices (1-based): up to PER_PART in each part of the
    scenario (every one of a part that has fewer), the rest anywhere."""
    at = {}
    for step, n in ops:
        at.setdefault(step, n)
        if step == "refusal":
            at["appends"] = n  # the last refusal
    parts = [("boot", 0, at["boot"]), ("commission", at["boot"], at["commission"]), ("open", at["commission"], at["open"]),
             ("revocation", at["open"], at["revocation"]), ("time", at["revocation"], at["time"]),
             ("appends", at["time"], at["appends"])]
    chosen: dict[int, str] = {}
    for name, lo, hi in parts:
        ops_here = list(range(lo + 1, hi + 1))
        assert ops_here, f"no flash operation in {name}"
        for k in rng.sample(ops_here, min(PER_PART, len(ops_here))):
            chosen[k] = name
    rest = [(k, name) for name, lo, hi in parts for k in range(lo + 1, hi + 1) if k not in chosen]
    for k, name in rng.sample(rest, min(TOTAL - len(chosen), len(rest))):
        chosen[k] = name
    return sorted(((name, k) for k, name in chosen.items()), key=lambda p: p[1])


@needs_micropython[0]
@needs_micropython[1]
def test_power_cuts_under_micropython(tmp_path: Path) -> None:
    runner = Runner(tmp_path)
    fresh = tmp_path / "fresh.bin"
    fresh.write_bytes(b"\xff" * runner.size)
    runner.run("fresh", "mkfs", fresh)
    image = fresh.read_bytes()

    clean = tmp_path / "clean.bin"
    clean.write_bytes(image)
    stdout, acked = runner.run("clean", "scenario", clean)
    assert "DONE" in stdout and acked["step"] == "refusal", stdout
    rng = random.Random(SEED)
    total_ops = acked["ops"][-1][1]
    if os.environ.get("LOCK_MPY_POWERCUT_ALL"):  # every operation, every mode
        points = [("all", k) for k in range(1, total_ops + 1) for _ in CUT_MODES]
    else:
        points = cut_points(acked["ops"], rng)
        assert len(points) == TOTAL, acked["ops"]

    def one(i: int, part: str, k: int) -> str:
        mode = rng_modes[i]
        where = f"seed {SEED}: cut {i} in {part} at operation {k} ({mode})"
        flash = tmp_path / f"cut{i}.bin"
        flash.write_bytes(image)
        cut = {"after": k - 1, "mode": mode, "seed": 1000 + i}
        out, acked = runner.run(f"cut{i}", "scenario", flash, cut)
        assert f"CUT {k}" in out, (where, out)
        _, after = runner.run(f"cut{i}", "check", flash)
        check(acked, after, where)
        return where

    rng_modes = [CUT_MODES[i % len(CUT_MODES)] for i in range(len(points))]
    rng.shuffle(rng_modes)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        done = list(pool.map(lambda a: one(*a), [(i, p, k) for i, (p, k) in enumerate(points)]))
    print(f"power cut under MicroPython: {len(done)} cuts, {total_ops} flash operations "
          f"in the scenario (seed {SEED})")


# --- the flash model over a file (as the unix port's HAL uses it), on CPython ---------
def _flash(tmp_path: Path, cut: dict | None = None):
    from simulator.mpy.flash import Flash
    from simulator.mpy.stores import FileStore

    path = tmp_path / "f.bin"
    path.write_bytes(b"\xff" * 8192)
    return Flash(FileStore(open(path, "r+b")), 8192, 4096, cut=cut), path


def test_flash_file_is_nor_flash(tmp_path: Path) -> None:
    flash, path = _flash(tmp_path)
    flash.program(10, b"\x0f\xf0")
    flash.program(10, b"\xff\x3c")  # a program only clears bits
    buf = bytearray(2)
    flash.read(10, buf)
    assert bytes(buf) == b"\x0f\x30"
    flash.erase(0)
    flash.read(10, buf)
    assert bytes(buf) == b"\xff\xff" and flash.ops == 3
    with pytest.raises(OSError):
        flash.program(8191, b"ab")  # outside the chip


@pytest.mark.parametrize("mode", CUT_MODES)
def test_flash_file_power_cut(tmp_path: Path, mode: str) -> None:
    from simulator.mpy.flash import PowerCut

    flash, path = _flash(tmp_path, {"after": 1, "mode": mode, "seed": 7})
    flash.program(0, b"\x00" * 64)  # succeeds
    with pytest.raises(PowerCut):
        flash.program(4096, b"\x00" * 64)  # cut
    with pytest.raises(PowerCut):
        flash.read(0, bytearray(1))  # no power any more
    flash.store.f.close()
    data = path.read_bytes()
    assert data[:64] == b"\x00" * 64
    cut = data[4096:4160]
    if mode == "lost":
        assert cut == b"\xff" * 64
    else:  # torn or half-set bits: something, not all of it
        assert cut != b"\x00" * 64


def test_flash_file_erase_cut(tmp_path: Path) -> None:
    from simulator.mpy.flash import PowerCut

    flash, path = _flash(tmp_path, {"after": 1, "mode": "erase", "seed": 3})
    flash.program(0, b"\x00" * 4096)
    with pytest.raises(PowerCut):
        flash.erase(0)
    flash.store.f.close()
    block = path.read_bytes()[:4096]
    done = len(block) - len(block.lstrip(b"\xff"))
    assert 0 <= done < 4096 and block != b"\xff" * 4096  # erased part-way
