# Fake `zephyr` (MicroPython's Zephyr port): FlashArea over a fake NOR flash,
# written from ports/zephyr/zephyr_storage.c: FlashArea(id, block_size) with
# readblocks/writeblocks/ioctl (the extended block protocol) and the class
# attribute `areas`, a dict of partition label -> (area id, erase size) made
# from the devicetree's fixed partitions. The test sets the partitions with
# set_partitions([(label, offset, size), ...]).
from fakes.flash import SECTOR, NorFlash, Region

FLASH_SIZE = 1024 * 1024  # nRF52840 internal flash
FLASH = NorFlash(FLASH_SIZE)
_table = {}  # area id -> (offset, size)


def set_partitions(rows):
    FlashArea.areas = {}
    _table.clear()
    for i, (label, offset, size) in enumerate(rows):
        FlashArea.areas[label] = (i, SECTOR)
        _table[i] = (offset, size)


class FlashArea(Region):
    areas = {}

    def __init__(self, id, block_size):
        if block_size <= 0:
            raise ValueError("invalid block size")
        if id not in _table:
            raise ValueError("unable to open flash area")
        offset, size = _table[id]
        Region.__init__(self, FLASH, offset, size, block_size)
        self.id = id
