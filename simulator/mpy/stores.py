# Stores for the flash model of simulator/mpy/flash.py (MicroPython code): the
# bytes of a chip in an open file (the simulator's flash.bin, under the unix
# port) or by sector, only those written taking memory (the fake esp32/rp2
# flash of tests/fakes: a 4 MB chip in a small heap).
_FF = b"\xff" * 256


class FileStore:
    """The bytes in an open binary file (the simulator's flash.bin)."""

    def __init__(self, f):
        self.f = f

    def read(self, addr, buf):
        self.f.seek(addr)
        if self.f.readinto(buf) != len(buf):
            raise OSError(5)  # EIO: the file is shorter than the flash

    def write(self, addr, data):
        self.f.seek(addr)
        self.f.write(data)

    def fill(self, addr, n):
        self.f.seek(addr)
        while n > 0:
            k = min(n, 256)
            self.f.write(_FF if k == 256 else _FF[:k])
            n -= k

    def flush(self):
        self.f.flush()


class SparseStore:
    """The bytes by sector: only the sectors written take memory."""

    def __init__(self, sector=4096):
        self.sector = sector
        self.sectors = {}

    def _each(self, addr, n):
        i = 0
        while i < n:
            s, off = divmod(addr + i, self.sector)
            k = min(n - i, self.sector - off)
            yield i, s, off, k
            i += k

    def read(self, addr, buf):
        for i, s, off, k in self._each(addr, len(buf)):
            sec = self.sectors.get(s)
            if sec is None:
                for j in range(k):
                    buf[i + j] = 0xFF
            else:
                buf[i : i + k] = sec[off : off + k]

    def write(self, addr, data):
        for i, s, off, k in self._each(addr, len(data)):
            sec = self.sectors.get(s)
            if sec is None:
                sec = self.sectors[s] = bytearray(b"\xff" * self.sector)
            sec[off : off + k] = data[i : i + k]

    def fill(self, addr, n):
        for i, s, _off, k in list(self._each(addr, n)):
            if k == self.sector:
                self.sectors.pop(s, None)
            else:
                self.write(addr + i, b"\xff" * k)

    def flush(self):
        pass
