# A NOR flash chip for the fake esp32.Partition and rp2.Flash: erase sets a
# 4 KB sector to 0xFF, a program can only clear bits (old AND new), and a
# program that would need a bit set again is counted in `bad_programs`: the
# mistake a missing erase makes on a real chip. Sparse: only sectors that
# were written take memory (a 4 MB chip fits a 96 KB MicroPython heap).
SECTOR = 4096


class NorFlash:
    def __init__(self, size):
        self.size = size
        self.sectors = {}
        self.programs = 0
        self.erases = 0
        self.bad_programs = 0

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise OSError(22)

    def read(self, addr, buf):
        n = len(buf)
        self._check(addr, n)
        i = 0
        while i < n:
            s, off = divmod(addr + i, SECTOR)
            k = min(n - i, SECTOR - off)
            sec = self.sectors.get(s)
            if sec is None:
                for j in range(k):
                    buf[i + j] = 0xFF
            else:
                buf[i:i + k] = sec[off:off + k]
            i += k

    def program(self, addr, data):
        n = len(data)
        self._check(addr, n)
        self.programs += 1
        for i in range(n):
            s, off = divmod(addr + i, SECTOR)
            sec = self.sectors.get(s)
            if sec is None:
                sec = bytearray(b"\xff" * SECTOR)
                self.sectors[s] = sec
            old = sec[off]
            new = data[i]
            if new & ~old & 0xFF:
                self.bad_programs += 1
            sec[off] = old & new

    def erase(self, addr):
        if addr % SECTOR:
            raise OSError(22)
        self._check(addr, SECTOR)
        self.erases += 1
        self.sectors.pop(addr // SECTOR, None)


class Region:
    """MicroPython's extended block-device protocol over part of a NorFlash."""

    def __init__(self, flash, start, size, block_size=SECTOR):
        self.flash = flash
        self.start = start
        self.size = size
        self.block_size = block_size

    def _addr(self, block_num, offset, n):
        a = block_num * self.block_size + offset
        if a < 0 or a + n > self.size:
            raise OSError(22)
        return self.start + a

    def readblocks(self, block_num, buf, offset=0):
        self.flash.read(self._addr(block_num, offset, len(buf)), buf)

    def writeblocks(self, block_num, buf, offset=None):
        if offset is None:  # the simple protocol: whole blocks, erased first
            for i in range(len(buf) // self.block_size):
                self.ioctl(6, block_num + i)
            offset = 0
        self.flash.program(self._addr(block_num, offset, len(buf)), buf)

    def ioctl(self, op, arg):
        if op == 4:
            return self.size // self.block_size
        if op == 5:
            return self.block_size
        if op == 6:
            self.flash.erase(self._addr(arg, 0, self.block_size))
            return 0
        if op in (1, 2, 3):
            return 0
        return None
