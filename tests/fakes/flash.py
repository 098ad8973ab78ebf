# The NOR flash chip behind the fake esp32.Partition and rp2.Flash: the one
# flash model (simulator/mpy/flash.py) over a sparse store, so only sectors
# that were written take memory (a 4 MB chip fits a 96 KB MicroPython heap).
# A program that would need a bit set again is counted in `bad_programs`:
# the mistake a missing erase makes on a real chip.
from simulator.mpy.flash import Flash, Partition
from simulator.mpy.stores import SparseStore

SECTOR = 4096


def NorFlash(size):
    return Flash(SparseStore(SECTOR), size, SECTOR)


class Region(Partition):
    """MicroPython's extended block-device protocol over part of a NorFlash."""

    def __init__(self, flash, start, size, block_size=SECTOR):
        if block_size != flash.erase_size:
            raise ValueError("block size")
        Partition.__init__(self, flash, start, size)
        self.start = start
        self.size = size
