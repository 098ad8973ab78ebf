# The one NOR-flash model of the project, with power-cut injection, and block
# devices over it. MicroPython code: it runs under CPython (the simulator:
# simulator/flash.py adds mmap files, per-region counters, strict mode and a
# trace; simulator/lfs.py littlefs-python) and under the MicroPython unix port
# (the --mpy child and the virtual board, simulator/mpy/unixhal.py and
# vboard.py; the fake esp32/rp2 flash of tests/fakes; the portable tests' RAM
# devices).
#
# NOR semantics: erased bytes read 0xFF, a program can only clear bits (the
# result is the AND of old and new), an erase sets one erase block to 0xFF.
# The bytes live in a store: RamStore (a bytearray, or an mmap on CPython),
# or those of simulator/mpy/stores.py (a file; sparse sectors). This module is
# kept to what every user needs: the portable tests import it into a 96 KB heap.
#
# Power cuts: cut_at(n, mode, seed) lets n more program/erase operations
# succeed; the next one is damaged by `mode` and raises PowerCut. From then on
# every access raises PowerCut until reboot().
#   lost   the operation never happens.
#   torn   a program writes a prefix of its bytes and part of the bits of the
#          next one; an erase is left part-way (as "erase").
#   bits   a program clears a random subset of the bits it was to clear.
#   erase  an erase is interrupted: a random prefix of the block reads 0xFF,
#          the rest keeps its old contents with random bits already set; a
#          program cut in this mode is torn.
# The damage comes from one seeded generator (xorshift32, Rng below), so the
# same seed damages the flash the same way under CPython and MicroPython.

CUT_MODES = ("lost", "torn", "bits", "erase")
EINVAL = 22

# MicroPython block-device ioctl operations.
IOCTL_INIT = 1
IOCTL_DEINIT = 2
IOCTL_SYNC = 3
IOCTL_BLOCK_COUNT = 4
IOCTL_BLOCK_SIZE = 5
IOCTL_BLOCK_ERASE = 6

_FF = b"\xff" * 256


class PowerCut(BaseException):
    """The board lost power. A BaseException, so that no `except Exception`
    in the firmware can swallow it."""


class FlashError(OSError):
    """A misuse of the flash (out of range, unaligned): an OSError (EINVAL),
    as a board's block device raises."""

    def __init__(self, what):
        OSError.__init__(self, EINVAL, what)


class Rng:
    """xorshift32: a small seeded generator that gives the same numbers under
    every interpreter."""

    def __init__(self, seed=0):
        self.x = (seed & 0xFFFFFFFF) or 0x9E3779B9

    def next32(self):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x

    def next8(self):
        return self.next32() & 0xFF

    def below(self, n):
        """A number in 0 .. n - 1 (n up to 2**24)."""
        return ((self.next8() << 16) | (self.next8() << 8) | self.next8()) % n


# --- where the bytes are --------------------------------------------------------
class RamStore:
    """The bytes in memory: a new erased bytearray of `size` bytes, or a given
    buffer (a bytearray, an mmap)."""

    def __init__(self, size=0, buf=None):
        if buf is None:
            buf = bytearray(size)
            mv = memoryview(buf)
            for a in range(0, size, 256):  # erased, without a second full-size copy
                k = min(256, size - a)
                mv[a : a + k] = _FF if k == 256 else _FF[:k]
        self.buf = buf
        # A bytearray is read through a memoryview (no copy); an mmap by
        # slicing (a view would keep it from closing).
        self._mv = memoryview(buf) if isinstance(buf, bytearray) else buf

    def read(self, addr, buf):
        buf[:] = self._mv[addr : addr + len(buf)]

    def write(self, addr, data):
        self._mv[addr : addr + len(data)] = data

    def fill(self, addr, n):
        end = addr + n
        while addr < end:
            k = min(256, end - addr)
            self._mv[addr : addr + k] = _FF if k == 256 else _FF[:k]
            addr += k

    def flush(self):
        pass


# --- the chip ---------------------------------------------------------------------
class Flash:
    """A NOR flash chip of `size` bytes in erase blocks of `erase_size`, its
    bytes in `store`. `cut` arms a power cut at once ({"after": N, "mode": M,
    "seed": S}); `on_cut` is called as the power goes (the board goes dark)."""

    def __init__(self, store, size, erase_size=4096, cut=None, on_cut=None):
        if erase_size <= 0 or size <= 0 or size % erase_size:
            raise FlashError("size must be a positive multiple of erase_size")
        self.store = store
        self.size = size
        self.erase_size = erase_size
        self.block_size = erase_size
        self.on_cut = on_cut
        self.ops = 0  # program + erase operations attempted, cut ones included
        self.cuts = 0  # power cuts so far
        self.bad_programs = 0  # programs that would have needed a bit set again
        self.powered = True
        self._cut_after = None
        self._mode = "lost"
        self._rng = Rng(0)
        if cut:
            self.cut_at(cut["after"], cut.get("mode", "lost"), cut.get("seed", 0))

    # -- power -------------------------------------------------------------------
    def cut_at(self, n, mode="lost", seed=0):
        """Let n more program/erase operations succeed; damage the next one
        by `mode` and cut the power."""
        if mode not in CUT_MODES:
            raise FlashError("unknown cut mode %r" % mode)
        if n < 0:
            raise FlashError("n must be >= 0")
        self._cut_after = self.ops + n
        self._mode = mode
        self._rng = Rng(seed)

    def cancel_cut(self):
        self._cut_after = None

    @property
    def cut_pending(self):
        return self._cut_after is not None

    def reboot(self):
        """Power comes back. Pending cuts are cancelled."""
        self.powered = True
        self._cut_after = None

    def _check(self, addr, n):
        if not self.powered:
            raise PowerCut("flash has no power")
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError("access outside the flash")

    def _cut_now(self, kind, addr, n):
        """Count one program/erase op; True if it is the one to cut."""
        self.ops += 1
        if self._cut_after is not None and self.ops > self._cut_after:
            self._cut_after = None
            self.powered = False
            self.cuts += 1
            return True
        return False

    def _lost(self, what):
        self.store.flush()
        if self.on_cut is not None:
            self.on_cut()
        raise PowerCut(what)

    def count(self, kind, region, n):
        # Called for each read, program and erase ("read" | "program" |
        # "erase", the region's name or None, bytes): for counters.
        pass

    # -- access ------------------------------------------------------------------
    def read(self, addr, buf, region=None):
        self._check(addr, len(buf))
        self.count("read", region, len(buf))
        self.store.read(addr, buf)

    def program(self, addr, data, region=None):
        """Program `data` at `addr`: bits can only go from 1 to 0."""
        n = len(data)
        self._check(addr, n)
        old = bytearray(n)
        self.store.read(addr, old)
        cut = self._cut_now("program", addr, n)
        self.count("program", region, n)
        if not n:
            if cut:
                self._lost("power cut during an empty program")
            return
        o = int.from_bytes(old, "big")
        d = int.from_bytes(bytes(data), "big")
        if o | d != o:
            self.bad_programs += 1
        want = bytearray((o & d).to_bytes(n, "big"))
        if not cut:
            self.store.write(addr, want)
            return
        mode = self._mode
        rng = self._rng
        if mode == "bits":
            for i in range(n):  # clear only some of the bits it was to clear
                old[i] &= want[i] | rng.next8()
            self.store.write(addr, old)
        elif mode != "lost":  # torn (and a program cut in erase mode)
            k = rng.below(n)
            old[k] &= want[k] | rng.next8()
            self.store.write(addr, want[:k] + old[k:])
        self._lost("power cut during a %s program of %d bytes at 0x%x" % (mode, n, addr))

    def erase(self, block, region=None):
        """Erase one erase block (its number on the chip)."""
        es = self.erase_size
        addr = block * es
        self._check(addr, es)
        cut = self._cut_now("erase", addr, es)
        self.count("erase", region, es)
        if not cut:
            self.store.fill(addr, es)
            return
        if self._mode != "lost":
            rng = self._rng
            done = rng.below(es)
            rest = bytearray(es - done)
            self.store.read(addr + done, rest)
            self.store.fill(addr, done)
            for i in range(len(rest)):  # not yet erased: random bits already set
                rest[i] |= rng.next8()
            self.store.write(addr + done, rest)
        self._lost("power cut during a %s erase of block %d" % (self._mode, block))


# --- block devices ----------------------------------------------------------------
class Partition:
    """A region of a Flash (whole erase blocks, `offset` and `size` in bytes)
    with MicroPython's extended block-device protocol: readblocks/writeblocks
    with offsets, ioctl 4/5/6, for vfs.VfsLfs2 and the raw event log, as
    esp32.Partition gives. writeblocks without an offset is the simple
    protocol: whole blocks, erased first. `name` labels its counters."""

    def __init__(self, flash, offset, size, name=None):
        bs = flash.erase_size
        if offset < 0 or size <= 0 or offset % bs or size % bs or offset + size > flash.size:
            raise FlashError("region not aligned to the flash or outside it")
        self.flash = flash
        self.offset = offset
        self.block_size = bs
        self.block_count = size // bs
        self.name = name

    def _addr(self, block_num, offset, n):
        a = block_num * self.block_size + offset
        if block_num < 0 or offset < 0 or a + n > self.block_count * self.block_size:
            raise FlashError("access outside the region")
        return self.offset + a

    def readblocks(self, block_num, buf, offset=0):
        self.flash.read(self._addr(block_num, offset, len(buf)), buf, self.name)

    def writeblocks(self, block_num, buf, offset=None):
        n = len(buf)
        if offset is None:
            if n % self.block_size:
                raise FlashError("simple writeblocks needs whole blocks")
            self._addr(block_num, 0, n)
            for i in range(n // self.block_size):
                self.ioctl(IOCTL_BLOCK_ERASE, block_num + i)
            offset = 0
        self.flash.program(self._addr(block_num, offset, n), buf, self.name)

    def ioctl(self, op, arg):
        if op == IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == IOCTL_BLOCK_ERASE:
            if not 0 <= arg < self.block_count:
                raise FlashError("erase outside the region")
            self.flash.erase(self.offset // self.block_size + arg, self.name)
            return 0
        if op in (IOCTL_INIT, IOCTL_DEINIT, IOCTL_SYNC):
            if not self.flash.powered:
                raise PowerCut("flash has no power")
            return 0
        return None

    def erased(self):
        """True if every byte of the region reads 0xFF (a new board)."""
        buf = bytearray(256)
        for b in range(self.block_count):
            for off in range(0, self.block_size, 256):
                self.readblocks(b, buf, off)
                if buf != _FF:
                    return False
        return True


class RamBlockDevice(Partition):
    """A whole flash in RAM as one block device (tests, and running without
    flash); starts erased. `data` is its bytes."""

    def __init__(self, block_size, block_count):
        size = block_size * block_count
        store = RamStore(size)
        Partition.__init__(self, Flash(store, size, block_size), 0, size)
        self.data = store.buf
