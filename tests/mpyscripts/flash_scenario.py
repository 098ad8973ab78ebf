# A seeded sequence of programs, erases and power cuts in every mode on the one
# flash model (simulator/mpy/flash.py), ending in a SHA-256 of the flash's
# bytes. MicroPython code: tests/simulator/test_flash.py runs it under CPython and under
# the real MicroPython interpreter (`micropython tests/mpyscripts/flash_scenario.py`) and
# compares the digests: the same seed must damage the flash the same way.
import binascii
import hashlib
import sys

BS = 4096
BLOCKS = 8


def _root():
    here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
    return here + "/../.."


def digests():
    """{store name: hex SHA-256 of the flash after the scenario}."""
    from simulator.mpy.flash import CUT_MODES, Flash, Partition, PowerCut, RamStore, Rng
    from simulator.mpy.stores import SparseStore

    out = {}
    for name in ("ram", "sparse"):
        store = RamStore(BS * BLOCKS) if name == "ram" else SparseStore(BS)
        flash = Flash(store, BS * BLOCKS, BS)
        dev = Partition(flash, BS, BS * (BLOCKS - 1))
        rng = Rng(20261201)
        cuts = 0
        for step in range(200):
            block = rng.below(BLOCKS - 1)
            if step % 7 == 3:
                mode = CUT_MODES[step % len(CUT_MODES)]
                flash.cut_at(rng.below(3), mode, rng.next32())
            try:
                if rng.below(5) == 0:
                    dev.ioctl(6, block)
                else:
                    n = 1 + rng.below(300)
                    off = rng.below(BS - n)
                    data = bytes(rng.next8() for _ in range(n))
                    dev.writeblocks(block, data, off)
            except PowerCut:
                cuts += 1
                flash.reboot()
        assert cuts > 10, cuts
        buf = bytearray(BS)
        h = hashlib.sha256()
        for b in range(BLOCKS):
            flash.read(b * BS, buf)
            h.update(buf)
        out[name] = binascii.hexlify(h.digest()).decode()
    return out


if __name__ == "__main__":
    sys.path.insert(0, _root())
    d = digests()
    print(d["ram"], d["sparse"])
