# Fake `rp2`: Flash over the port's storage region, the last
# STORAGE_BYTES of a 2 MB flash (MICROPY_HW_FLASH_STORAGE_BYTES is 848 KB on
# RPI_PICO_W), with rp2_flash.c's argument checks: start and len are
# keyword-only, block-aligned offsets inside the storage region.
from fakes.flash import SECTOR, NorFlash, Region

FLASH_SIZE = 2 * 1024 * 1024
STORAGE_BYTES = 848 * 1024
FLASH = NorFlash(FLASH_SIZE)


class Flash(Region):
    def __init__(self, *, start=-1, len=-1):
        base = FLASH_SIZE - STORAGE_BYTES
        if start == -1 and len == -1:
            Region.__init__(self, FLASH, base, STORAGE_BYTES)
            return
        if start == -1:
            start = 0
        elif not (0 <= start < STORAGE_BYTES and start % SECTOR == 0):
            raise ValueError()
        if len == -1:
            len = STORAGE_BYTES - start
        elif not (0 < len and start + len <= STORAGE_BYTES and len % SECTOR == 0):
            raise ValueError()
        Region.__init__(self, FLASH, base + start, len)
