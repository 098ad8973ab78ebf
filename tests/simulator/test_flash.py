"""simulator/flash.py (over the one model, simulator/mpy/flash.py): NOR semantics, counters, power-cut modes, persistence,
the MicroPython block-device protocol and littlefs-python on top of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.flash import (
    CUT_MODES,
    BlockDevice,
    FlashDevice,
    FlashError,
    PowerCut,
)
from simulator.lfs import LittleFsFs

ROOT = Path(__file__).resolve().parents[2]


def bits_subset(small: bytes, big: bytes) -> bool:
    """Every 1 bit of `small` is also set in `big`."""
    return all(a & ~b == 0 for a, b in zip(small, big, strict=True))


def test_starts_erased_and_programs_like_nor() -> None:
    f = FlashDevice(2 * 4096)
    assert f.read(0, 8192) == b"\xff" * 8192
    f.program(10, b"\x0f\xf0")
    assert f.read(10, 2) == b"\x0f\xf0"
    f.program(10, b"\xf3\x3f")  # NOR: only 1 -> 0, the result is the AND
    assert f.read(10, 2) == b"\x03\x30"
    f.program(10, b"\xff\xff")  # cannot set bits again
    assert f.read(10, 2) == b"\x03\x30"
    f.erase(0)
    assert f.read(0, 4096) == b"\xff" * 4096
    f.program(4096, b"\x00")
    f.erase(0)  # erase is per block
    assert f.read(4096, 1) == b"\x00"


def test_strict_mode_refuses_program_over_unerased_bytes() -> None:
    f = FlashDevice(4096, strict=True)
    f.program(0, b"\xfe")
    with pytest.raises(FlashError):
        f.program(0, b"\xfc")
    f.erase(0)
    f.program(0, b"\xfc")
    assert f.read(0, 1) == b"\xfc"


def test_geometry_checks() -> None:
    with pytest.raises(FlashError):
        FlashDevice(5000)
    f = FlashDevice(8192, prog_size=16)
    with pytest.raises(FlashError):
        f.program(8, bytes(16))
    with pytest.raises(FlashError):
        f.program(0, bytes(8))
    with pytest.raises(FlashError):
        f.read(8190, 4)
    with pytest.raises(FlashError):
        f.erase(2)
    with pytest.raises(FlashError):
        BlockDevice(f, 1, 2)


def test_counters_total_and_per_region() -> None:
    f = FlashDevice(4 * 4096)
    a = BlockDevice(f, 0, 2, "fs")
    b = BlockDevice(f, 2, 2, "log")
    a.writeblocks(1, b"x" * 32, 0)
    a.ioctl(6, 0)
    b.writeblocks(0, b"y" * 32, 32)
    b.writeblocks(1, b"z" * 64, 64)
    buf = bytearray(16)
    b.readblocks(1, buf, 64)
    assert buf == b"z" * 16
    assert f.total.writes == 3 and f.total.bytes_written == 128 and f.total.erases == 1
    assert f.regions["fs"].as_dict() == {
        "writes": 1,
        "bytes_written": 32,
        "erases": 1,
        "reads": 0,
        "bytes_read": 0,
    }
    assert b.counters.writes == 2 and b.counters.bytes_written == 96
    assert b.counters.reads == 1 and b.counters.bytes_read == 16
    assert f.ops == 4
    assert f.read(2 * 4096 + 32, 32) == b"y" * 32  # region offsets


def test_block_device_protocol() -> None:
    f = FlashDevice(8 * 512, erase_size=512)
    bd = BlockDevice(f, 4, 3)
    assert bd.ioctl(4, 0) == 3 and bd.ioctl(5, 0) == 512
    assert bd.ioctl(1, 0) == 0 and bd.ioctl(3, 0) == 0 and bd.ioctl(2, 0) == 0
    assert bd.ioctl(99, 0) is None
    bd.writeblocks(0, b"\x00" * 512, 0)
    bd.writeblocks(0, b"\x55" * 1024)  # simple protocol: erases first
    assert f.read(4 * 512, 1024) == b"\x55" * 1024
    assert f.total.erases == 2
    buf = bytearray(600)  # reads may span blocks
    bd.readblocks(0, buf, 100)
    assert buf == b"\x55" * 600
    with pytest.raises(FlashError):
        bd.readblocks(2, bytearray(513), 0)
    with pytest.raises(FlashError):
        bd.writeblocks(3, b"x", 0)
    with pytest.raises(FlashError):
        bd.ioctl(6, 3)


def test_cut_at_counts_operations() -> None:
    f = FlashDevice(2 * 4096)
    f.cut_at(2, "lost")
    f.program(0, b"\x01")
    f.erase(1)
    assert f.cut_pending
    with pytest.raises(PowerCut):
        f.program(1, b"\x02")
    assert not f.powered and not f.cut_pending and f.cuts == 1
    with pytest.raises(PowerCut):  # no power: everything fails until reboot
        f.read(0, 1)
    with pytest.raises(PowerCut):
        f.erase(0)
    f.reboot()
    assert f.read(0, 2) == b"\x01\xff"  # the cut program was lost
    assert f.ops == 3  # the failed ops after the cut are not counted


def test_power_cut_is_not_an_exception() -> None:
    f = FlashDevice(4096)
    f.cut_at(0)
    caught = False
    try:
        try:
            f.erase(0)
        except Exception:  # noqa: BLE001 - the point: this must not catch it
            pytest.fail("PowerCut caught by except Exception")
    except PowerCut:
        caught = True
    assert caught


@settings(max_examples=200, deadline=None)
@given(
    old=st.binary(min_size=1, max_size=64),
    new=st.binary(min_size=1, max_size=64),
    seed=st.integers(0, 2**32),
)
def test_torn_and_bits_programs(old: bytes, new: bytes, seed: int) -> None:
    n = min(len(old), len(new))
    old, new = old[:n], new[:n]
    want = bytes(a & b for a, b in zip(old, new, strict=True))
    f = FlashDevice(4096)
    f.program(0, old)
    for mode in ("torn", "bits", "erase"):
        snap = f.snapshot()
        f.cut_at(0, mode, seed)
        with pytest.raises(PowerCut):
            f.program(0, new)
        f.reboot()
        got = f.read(0, n)
        # Only bits the program was to clear are cleared, some of them.
        assert bits_subset(want, got) and bits_subset(got, old)
        if mode != "bits":
            # A prefix lands, one byte is partial, the rest is untouched.
            k = next((i for i in range(n) if got[i] != want[i]), n)
            assert got[k + 1 :] == old[k + 1 :]
        f.restore(snap)


def test_torn_program_is_reproducible_by_seed() -> None:
    def run(seed: int) -> bytes:
        f = FlashDevice(4096)
        f.cut_at(0, "torn", seed)
        with pytest.raises(PowerCut):
            f.program(0, bytes(256))
        f.reboot()
        return f.read(0, 256)

    assert run(7) == run(7)
    results = {run(s) for s in range(20)}
    assert len(results) > 10  # the torn length varies with the seed
    assert all(r != bytes(256) and r != b"\xff" * 256 for r in results)


def test_erase_cut_modes() -> None:
    old = bytes(range(256)) * 16
    f = FlashDevice(2 * 4096)
    f.program(4096, old)
    snap = f.snapshot()
    f.cut_at(0, "lost")
    with pytest.raises(PowerCut):
        f.erase(1)
    f.reboot()
    assert f.read(4096, 4096) == old
    partial = set()
    for mode in ("erase", "torn", "bits"):
        for seed in range(5):
            f.restore(snap)
            f.cut_at(0, mode, seed)
            with pytest.raises(PowerCut):
                f.erase(1)
            f.reboot()
            got = f.read(4096, 4096)
            assert bits_subset(old, got)  # an erase only sets bits
            done = len(got) - len(got.lstrip(b"\xff"))
            assert got != b"\xff" * 4096 or done == 4096
            partial.add(done)
            assert f.read(0, 4096) == b"\xff" * 4096  # other blocks untouched
    assert len(partial) >= 4  # the erased part varies with the seed


def test_cut_random_is_reproducible() -> None:
    a = FlashDevice(4096)
    b = FlashDevice(4096)
    assert a.cut_random(42, within=50) == b.cut_random(42, within=50)
    n, mode = a.cut_random(3, within=10)
    assert 0 <= n < 10 and mode in CUT_MODES
    with pytest.raises(FlashError):
        a.cut_at(1, "melt")


def test_snapshot_restore() -> None:
    f = FlashDevice(4096)
    f.program(0, b"abc")
    s = f.snapshot()
    f.erase(0)
    f.restore(s)
    assert f.read(0, 3) == b"abc"
    with pytest.raises(FlashError):
        f.restore(b"\xff")


def test_persistence_in_a_file(tmp_path: Path) -> None:
    path = str(tmp_path / "flash.bin")
    f = FlashDevice.open(path, 4 * 4096)
    assert os.path.getsize(path) == 4 * 4096
    assert f.read(0, 16) == b"\xff" * 16
    f.program(5000, b"kept")
    f.close()
    g = FlashDevice.open(path, 4 * 4096)
    assert g.read(5000, 4) == b"kept"
    # mmap: a write is in the file before any save (a killed simulator keeps it)
    g.program(6000, b"now")
    with open(path, "rb") as fh:
        fh.seek(6000)
        assert fh.read(3) == b"now"
    g.save()
    g.close()
    with pytest.raises(FlashError):
        FlashDevice.open(path, 8 * 4096)
    # An in-memory flash saves to a path of its own.
    m = FlashDevice(4096)
    m.program(0, b"mem")
    m.save(str(tmp_path / "m.bin"))
    assert FlashDevice.open(str(tmp_path / "m.bin"), 4096).read(0, 3) == b"mem"


def test_littlefs_on_the_block_device() -> None:
    f = FlashDevice(16 * 4096)
    bd = BlockDevice(f, 4, 8, "fs")
    with pytest.raises(OSError):
        LittleFsFs(bd)  # blank: mounting never formats
    fs = LittleFsFs.mkfs(bd)
    fs.mkdir("/d")
    with fs.open("/d/a", "wb") as fh:
        assert fh.write(b"hello" * 1000) == 5000
    fs.rename("/d/a", "/d/b")
    assert fs.listdir("/d") == ["b"]
    assert fs.size("/d/b") == 5000
    with pytest.raises(OSError):
        fs.size("/d/a")
    with pytest.raises(OSError):
        fs.open("/nope", "rb")
    fs.unmount()
    fs2 = LittleFsFs(bd)
    fh = fs2.open("/d/b", "rb")
    assert fh.read(5) == b"hello" and len(fh.read()) == 4995
    fh.close()
    fh.close()  # closing twice is harmless (littlefs itself would abort)
    fs2.remove("/d/b")
    assert fs2.listdir("/d") == []
    assert f.read(0, 4 * 4096) == b"\xff" * 4 * 4096  # outside the region: untouched
    assert f.regions["fs"].writes > 0


def test_littlefs_power_cut_raises_and_remounts() -> None:
    f = FlashDevice(8 * 4096)
    bd = BlockDevice(f, 0, 8, "fs")
    fs = LittleFsFs.mkfs(bd)
    with fs.open("/a", "wb") as fh:
        fh.write(b"old")
    f.cut_at(1, "torn", 5)
    with pytest.raises(PowerCut):
        fh = fs.open("/a", "wb")
        try:
            fh.write(b"new" * 500)
        finally:
            fh.close()
    with pytest.raises(PowerCut):  # the old mount is dead with the board
        fs.listdir("/")
    f.reboot()
    fs = LittleFsFs(bd)
    with fs.open("/a", "rb") as fh:
        assert fh.read() in (b"old", b"new" * 500)


MPY = shutil.which("micropython", path=str(Path(sys.executable).parent)) or shutil.which(
    "micropython"
)


@pytest.mark.micropython
@pytest.mark.skipif(MPY is None, reason="MicroPython unix port not installed")
def test_images_cross_between_interpreters(tmp_path: Path) -> None:
    """A store written by littlefs-python on the simulated flash loads under
    MicroPython's VfsLfs2, and the other way round."""
    from firmware.store import Store

    bs, nb = 1024, 16
    img = tmp_path / "fs.bin"
    f = FlashDevice.open(str(img), bs * nb, erase_size=bs)
    Store("/s", LittleFsFs.mkfs(BlockDevice(f, 0, nb))).save("config", b"from cpython")
    f.close()
    script = ROOT / "tests" / "mpyscripts" / "store_image.py"
    env = dict(os.environ, LOCK_IMAGE=f"{img}:{bs}:{nb}")
    out = subprocess.run([MPY, str(script)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split() == ["from", "cpython", "1"]
    g = FlashDevice.open(str(img), bs * nb, erase_size=bs)
    st2 = Store("/s", LittleFsFs(BlockDevice(g, 0, nb)))
    assert st2.load("config") == b"from micropython"
    assert st2.version("config") == 2
    g.close()


@pytest.mark.micropython
@pytest.mark.skipif(MPY is None, reason="MicroPython unix port not installed")
def test_same_seed_damages_the_flash_alike_on_both_interpreters() -> None:
    """The one flash model and its one generator: a seeded run of programs,
    erases and power cuts in every mode leaves the same bytes under CPython
    and MicroPython (tests/mpyscripts/flash_scenario.py)."""
    import importlib.util

    path = ROOT / "tests" / "mpyscripts" / "flash_scenario.py"
    spec = importlib.util.spec_from_file_location("flash_scenario", path)
    assert spec is not None and spec.loader is not None
    scenario = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(scenario)
    here = scenario.digests()
    assert here["ram"] == here["sparse"]  # the store does not change the damage
    proc = subprocess.run([MPY, str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [here["ram"], here["sparse"]]
