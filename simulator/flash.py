"""A NOR-flash model with power-cut injection, and block devices over it.

``FlashDevice`` models a NOR chip: erased bytes read 0xFF, programming can only
clear bits (the new contents are the AND of old and new), erasing is per block.
It counts operations per region, can live in a file (so a restarted simulator
keeps its flash), and can lose power in the middle of any program or erase.

``BlockDevice`` exposes a region of it through MicroPython's extended
block-device protocol (``readblocks``/``writeblocks`` with offsets, ``ioctl``),
which the firmware's event log uses directly and MicroPython's ``vfs.VfsLfs2``
mounts. ``LittleFsFs`` mounts littlefs-python on the same protocol so that the
simulator's filesystem sees the same flash, the same faults and the same file
interface as firmware/fs.py gives on the lock.

Power cuts: ``cut_at(n, mode)`` lets ``n`` more program/erase operations succeed;
the next one is damaged according to ``mode`` and raises ``PowerCut``. From then
on every access raises ``PowerCut`` until ``reboot()``: the test then mounts the
filesystem and recovers the log again from what is left in the flash.

  lost   the operation never happens.
  torn   a program writes a prefix of its bytes and part of the bits of the next
         one; an erase is left part-way (as "erase").
  bits   a program clears a random subset of the bits it was to clear.
  erase  an erase is interrupted: a random prefix of the block reads 0xFF, the
         rest keeps its old contents with random bits already set; a program
         cut in this mode is torn.
"""

from __future__ import annotations

import errno
import mmap
import os
import random
from collections.abc import Iterator
from typing import Any

CUT_MODES = ("lost", "torn", "bits", "erase")

# MicroPython block-device ioctl operations.
IOCTL_INIT = 1
IOCTL_DEINIT = 2
IOCTL_SYNC = 3
IOCTL_BLOCK_COUNT = 4
IOCTL_BLOCK_SIZE = 5
IOCTL_BLOCK_ERASE = 6

# Geometry shared with MicroPython's VfsLfs2 defaults (readsize=32, progsize=32,
# lookahead=32; cache = min(block, 4 * max(read, prog)); block_cycles=100), so an
# image made on either interpreter mounts on the other.
LFS_READ_SIZE = 32
LFS_PROG_SIZE = 32
LFS_LOOKAHEAD = 32
LFS_BLOCK_CYCLES = 100
LFS_ERR_IO = -5


class PowerCut(BaseException):
    """The simulated board lost power. A BaseException, so that no
    ``except Exception`` in the firmware can swallow it."""


class FlashError(ValueError):
    """A misuse of the flash: out of range, unaligned, or (in strict mode) a
    program over bytes that are not erased."""


class Counters:
    """Operation counters for a whole chip or for one region of it."""

    __slots__ = ("writes", "bytes_written", "erases", "reads", "bytes_read")

    def __init__(self) -> None:
        self.writes = 0
        self.bytes_written = 0
        self.erases = 0
        self.reads = 0
        self.bytes_read = 0

    def as_dict(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__slots__}

    def __repr__(self) -> str:
        return "Counters(%s)" % ", ".join("%s=%d" % kv for kv in self.as_dict().items())


class FlashDevice:
    """A NOR flash chip of ``size`` bytes in erase blocks of ``erase_size``."""

    def __init__(
        self,
        size: int,
        erase_size: int = 4096,
        prog_size: int = 1,
        *,
        strict: bool = False,
        path: str | None = None,
    ) -> None:
        if erase_size <= 0 or size <= 0 or size % erase_size:
            raise FlashError("size must be a positive multiple of erase_size")
        if prog_size <= 0 or erase_size % prog_size:
            raise FlashError("prog_size must divide erase_size")
        self.size = size
        self.erase_size = erase_size
        self.prog_size = prog_size
        self.strict = strict
        self.path = path
        self.data: bytearray | mmap.mmap = bytearray(b"\xff" * size)
        self._file: Any = None
        self.total = Counters()
        self.regions: dict[str, Counters] = {}
        self.ops = 0  # program + erase operations attempted, cut ones included
        self.cuts = 0  # power cuts injected so far
        self.powered = True
        # Set to a list to record ("program" | "erase", address, length) per op.
        self.trace: list[tuple[str, int, int]] | None = None
        self._cut_after: int | None = None
        self._cut_mode = "lost"
        self._cut_rng = random.Random(0)

    # -- persistence ---------------------------------------------------------

    @classmethod
    def open(cls, path: str, size: int, erase_size: int = 4096, **kw: Any) -> FlashDevice:
        """Flash kept in the file ``path`` through mmap: every program and erase
        lands in the file at once, so a killed simulator keeps its flash. A new
        file starts erased; an existing one must have the same size."""
        dev = cls(size, erase_size, path=path, **kw)
        if os.path.exists(path):
            if os.path.getsize(path) != size:
                raise FlashError("flash image size does not match")
            f = open(path, "r+b")
        else:
            f = open(path, "w+b")
            f.write(b"\xff" * size)
            f.flush()
        dev._file = f
        dev.data = mmap.mmap(f.fileno(), size)
        return dev

    def save(self, path: str | None = None) -> None:
        """Write the flash out: flush the mmap, or write the image to ``path``
        (atomically, through a temporary file and rename)."""
        target = path or self.path
        if isinstance(self.data, mmap.mmap) and (target is None or target == self.path):
            self.data.flush()
            return
        if target is None:
            raise FlashError("no path to save the flash to")
        tmp = target + ".tmp"
        with open(tmp, "wb") as f:
            f.write(bytes(self.data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)

    def close(self) -> None:
        if isinstance(self.data, mmap.mmap):
            self.data.flush()
            self.data.close()
            self.data = bytearray(self.size)
        if self._file is not None:
            self._file.close()
            self._file = None

    def snapshot(self) -> bytes:
        """The whole contents, to ``restore`` later (counters are not part of it)."""
        return bytes(self.data[:])

    def restore(self, snapshot: bytes) -> None:
        if len(snapshot) != self.size:
            raise FlashError("snapshot size does not match")
        self.data[:] = snapshot

    # -- power ---------------------------------------------------------------

    def cut_at(self, n: int, mode: str = "lost", seed: int = 0) -> None:
        """Let ``n`` more program/erase operations succeed; damage the next one
        according to ``mode`` (see the module doc) and raise PowerCut."""
        if mode not in CUT_MODES:
            raise FlashError("unknown cut mode %r" % mode)
        if n < 0:
            raise FlashError("n must be >= 0")
        self._cut_after = self.ops + n
        self._cut_mode = mode
        self._cut_rng = random.Random(seed)

    def cut_random(self, seed: int, within: int = 100) -> tuple[int, str]:
        """Arm a cut at a random one of the next ``within`` operations, in a
        random mode. Returns (n, mode) so a failure can be replayed."""
        rng = random.Random(seed)
        n = rng.randrange(within)
        mode = rng.choice(CUT_MODES)
        self.cut_at(n, mode, seed=rng.getrandbits(32))
        return n, mode

    def cancel_cut(self) -> None:
        self._cut_after = None

    @property
    def cut_pending(self) -> bool:
        return self._cut_after is not None

    def reboot(self) -> None:
        """Power comes back. Pending cuts are cancelled."""
        self.powered = True
        self._cut_after = None

    def _check_power(self) -> None:
        if not self.powered:
            raise PowerCut("flash has no power")

    def _cut_now(self, kind: str, addr: int, n: int) -> bool:
        """Count one program/erase op; True if it is the one to cut."""
        self._check_power()
        self.ops += 1
        if self.trace is not None:
            self.trace.append((kind, addr, n))
        if self._cut_after is not None and self.ops > self._cut_after:
            self._cut_after = None
            self.powered = False
            self.cuts += 1
            return True
        return False

    # -- access --------------------------------------------------------------

    def _counters(self, region: str | None) -> Iterator[Counters]:
        yield self.total
        if region is not None:
            c = self.regions.get(region)
            if c is None:
                c = self.regions[region] = Counters()
            yield c

    def _range(self, addr: int, n: int) -> None:
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError("access outside the flash")

    def read(self, addr: int, n: int, region: str | None = None) -> bytes:
        self._check_power()
        self._range(addr, n)
        for c in self._counters(region):
            c.reads += 1
            c.bytes_read += n
        return bytes(self.data[addr : addr + n])

    def program(self, addr: int, data: bytes, region: str | None = None) -> None:
        """Program ``data`` at ``addr``: bits can only go from 1 to 0."""
        n = len(data)
        self._range(addr, n)
        if addr % self.prog_size or n % self.prog_size:
            raise FlashError("program not aligned to the program size")
        old = bytes(self.data[addr : addr + n])
        if self.strict and old != b"\xff" * n:
            raise FlashError("program over bytes that are not erased (strict mode)")
        cut = self._cut_now("program", addr, n)
        for c in self._counters(region):
            c.writes += 1
            c.bytes_written += n
        if not n:
            if cut:
                raise PowerCut("power cut during an empty program")
            return
        want = _and(old, bytes(data))
        if cut:
            mode = self._cut_mode
            rng = self._cut_rng
            if mode == "lost":
                result = old
            elif mode == "bits":
                mask = rng.getrandbits(8 * n)
                # Clear only the chosen bits of those the program would clear.
                result = _and(old, (int.from_bytes(want, "big") | mask).to_bytes(n, "big"))
            else:  # torn (and a program cut in erase mode)
                k = rng.randrange(n)
                partial = want[k] | rng.getrandbits(8)
                result = want[:k] + bytes([old[k] & partial]) + old[k + 1 :]
            self.data[addr : addr + n] = result
            raise PowerCut("power cut during a %s program of %d bytes at 0x%x" % (mode, n, addr))
        self.data[addr : addr + n] = want

    def erase(self, block: int, region: str | None = None) -> None:
        """Erase one erase block (absolute block number on the chip)."""
        es = self.erase_size
        addr = block * es
        self._range(addr, es)
        cut = self._cut_now("erase", addr, es)
        for c in self._counters(region):
            c.erases += 1
        if cut:
            mode = self._cut_mode
            if mode != "lost":
                rng = self._cut_rng
                done = rng.randrange(es)
                old = bytes(self.data[addr + done : addr + es])
                noise = rng.getrandbits(8 * len(old)).to_bytes(len(old), "big") if old else b""
                rest = bytes(a | b for a, b in zip(old, noise, strict=True))
                self.data[addr : addr + es] = b"\xff" * done + rest
            raise PowerCut("power cut during a %s erase of block %d" % (mode, block))
        self.data[addr : addr + es] = b"\xff" * es


def _and(a: bytes, b: bytes) -> bytes:
    n = len(a)
    return (int.from_bytes(a, "big") & int.from_bytes(b, "big")).to_bytes(n, "big")


class BlockDevice:
    """A region of a FlashDevice as a MicroPython (extended) block device.

    Blocks are the flash's erase blocks. ``writeblocks(n, buf, offset)`` only
    programs (the caller erases with ``ioctl(6, n)``), as littlefs and the
    event log expect; ``writeblocks(n, buf)`` without an offset is the simple
    protocol and erases the blocks first, as esp32.Partition does.
    """

    def __init__(
        self, flash: FlashDevice, start_block: int, block_count: int, name: str | None = None
    ) -> None:
        if start_block < 0 or block_count <= 0:
            raise FlashError("bad region")
        if (start_block + block_count) * flash.erase_size > flash.size:
            raise FlashError("region does not fit in the flash")
        self.flash = flash
        self.start_block = start_block
        self.block_count = block_count
        self.block_size = flash.erase_size
        self.name = name or "blocks %d+%d" % (start_block, block_count)

    @property
    def counters(self) -> Counters:
        return self.flash.regions.setdefault(self.name, Counters())

    def _addr(self, block_num: int, offset: int, n: int) -> int:
        if block_num < 0 or offset < 0:
            raise FlashError("negative block or offset")
        start = block_num * self.block_size + offset
        if start + n > self.block_count * self.block_size:
            raise FlashError("access outside the region")
        return self.start_block * self.block_size + start

    def readblocks(self, block_num: int, buf: Any, offset: int = 0) -> None:
        n = len(buf)
        buf[:] = self.flash.read(self._addr(block_num, offset, n), n, self.name)

    def writeblocks(self, block_num: int, buf: Any, offset: int | None = None) -> None:
        n = len(buf)
        if offset is None:
            if n % self.block_size:
                raise FlashError("simple writeblocks needs whole blocks")
            self._addr(block_num, 0, n)
            for i in range(n // self.block_size):
                self.ioctl(IOCTL_BLOCK_ERASE, block_num + i)
            offset = 0
        self.flash.program(self._addr(block_num, offset, n), bytes(buf), self.name)

    def ioctl(self, op: int, arg: int) -> int | None:
        if op == IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == IOCTL_BLOCK_ERASE:
            if not 0 <= arg < self.block_count:
                raise FlashError("erase outside the region")
            self.flash.erase(self.start_block + arg, self.name)
            return 0
        if op in (IOCTL_INIT, IOCTL_DEINIT, IOCTL_SYNC):
            self.flash._check_power()
            return 0
        return None


# -- littlefs-python over a block device --------------------------------------


class LfsContext:
    """littlefs-python user context that reads, programs and erases through a
    MicroPython-style block device. Exceptions cannot cross littlefs's C code,
    so they are kept here, littlefs gets LFS_ERR_IO, and LittleFsFs raises the
    kept exception once littlefs returns."""

    def __init__(self, bdev: Any) -> None:
        self.bdev = bdev
        self.failure: BaseException | None = None
        self.dead = False  # a PowerCut happened: nothing more reaches littlefs

    def _fail(self, exc: BaseException) -> int:
        if self.failure is None:
            self.failure = exc
        if isinstance(exc, PowerCut):
            self.dead = True
        return LFS_ERR_IO

    def read(self, cfg: Any, block: int, off: int, size: int) -> bytes:
        buf = bytearray(size)
        if self.failure is None:
            try:
                self.bdev.readblocks(block, buf, off)
                return bytes(buf)
            except BaseException as exc:  # noqa: BLE001 - handed back after littlefs returns
                self._fail(exc)
        # read() cannot return an error code: hand back garbage that fails
        # littlefs's CRCs; the kept exception is raised when littlefs returns.
        return b"\x00" * size

    def prog(self, cfg: Any, block: int, off: int, data: bytes) -> int:
        if self.failure is not None:
            return LFS_ERR_IO
        try:
            self.bdev.writeblocks(block, data, off)
        except BaseException as exc:  # noqa: BLE001
            return self._fail(exc)
        return 0

    def erase(self, cfg: Any, block: int) -> int:
        if self.failure is not None:
            return LFS_ERR_IO
        try:
            self.bdev.ioctl(IOCTL_BLOCK_ERASE, block)
        except BaseException as exc:  # noqa: BLE001
            return self._fail(exc)
        return 0

    def sync(self, cfg: Any) -> int:
        if self.failure is not None:
            return LFS_ERR_IO
        try:
            self.bdev.ioctl(IOCTL_SYNC, 0)
        except BaseException as exc:  # noqa: BLE001
            return self._fail(exc)
        return 0


class LittleFsFs:
    """littlefs-python on a block device, with the file interface firmware/fs.py
    gives on the lock (open/sync/rename/remove/mkdir/listdir/size).

    Mounting never formats: a filesystem that does not mount is an error, as on
    the lock (formatting would hide exactly the corruption the tests look for).
    Use ``LittleFsFs.mkfs(bdev)`` to make a new one.
    """

    def __init__(self, bdev: Any) -> None:
        import littlefs  # CPython only

        self._lfs = littlefs.lfs
        self._error = littlefs.LittleFSError
        self.bdev = bdev
        self.ctx = LfsContext(bdev)
        self._cfg = littlefs.lfs.LFSConfig(
            context=self.ctx,
            block_size=bdev.ioctl(IOCTL_BLOCK_SIZE, 0),
            block_count=bdev.ioctl(IOCTL_BLOCK_COUNT, 0),
            read_size=LFS_READ_SIZE,
            prog_size=LFS_PROG_SIZE,
            cache_size=min(bdev.ioctl(IOCTL_BLOCK_SIZE, 0), 4 * max(LFS_READ_SIZE, LFS_PROG_SIZE)),
            lookahead_size=LFS_LOOKAHEAD,
            block_cycles=LFS_BLOCK_CYCLES,
        )
        self.fs = littlefs.lfs.LFSFilesystem()
        self._call(self._lfs.mount, self.fs, self._cfg)
        self.mounted = True

    @classmethod
    def mkfs(cls, bdev: Any) -> LittleFsFs:
        """Format ``bdev`` and mount it."""
        import littlefs

        ctx = LfsContext(bdev)
        bs = bdev.ioctl(IOCTL_BLOCK_SIZE, 0)
        cfg = littlefs.lfs.LFSConfig(
            context=ctx,
            block_size=bs,
            block_count=bdev.ioctl(IOCTL_BLOCK_COUNT, 0),
            read_size=LFS_READ_SIZE,
            prog_size=LFS_PROG_SIZE,
            cache_size=min(bs, 4 * max(LFS_READ_SIZE, LFS_PROG_SIZE)),
            lookahead_size=LFS_LOOKAHEAD,
            block_cycles=LFS_BLOCK_CYCLES,
        )
        try:
            littlefs.lfs.format(littlefs.lfs.LFSFilesystem(), cfg)
        except littlefs.LittleFSError as exc:
            if ctx.failure is not None:
                raise ctx.failure from None
            raise OSError(-exc.code, "littlefs format failed") from None
        return cls(bdev)

    def _call(self, fn: Any, *args: Any) -> Any:
        if self.ctx.dead:
            raise PowerCut("flash has no power")
        try:
            result = fn(*args)
        except self._error as exc:
            failure, self.ctx.failure = self.ctx.failure, None
            if failure is not None:
                raise failure from None
            raise OSError(-exc.code, "littlefs error %d" % exc.code) from None
        failure, self.ctx.failure = self.ctx.failure, None
        if failure is not None:
            raise failure
        return result

    def open(self, path: str, mode: str = "rb") -> LfsFile:
        if "b" not in mode:
            mode += "b"
        try:
            fh = self._call(self._lfs.file_open, self.fs, path, mode)
        except OSError as exc:
            raise OSError(exc.errno, "cannot open file") from None
        return LfsFile(self, fh)

    def sync(self, f: LfsFile) -> None:
        f.flush()

    def rename(self, src: str, dst: str) -> None:
        self._call(self._lfs.rename, self.fs, src, dst)

    def remove(self, path: str) -> None:
        self._call(self._lfs.remove, self.fs, path)

    def mkdir(self, path: str) -> None:
        self._call(self._lfs.mkdir, self.fs, path)

    def listdir(self, path: str = "/") -> list[str]:
        dh = self._call(self._lfs.dir_open, self.fs, path)
        names = []
        try:
            while True:
                info = self._call(self._lfs.dir_read, self.fs, dh)
                if not info:
                    break
                if info.name not in (".", ".."):
                    names.append(info.name)
        finally:
            if not self.ctx.dead:
                self._call(self._lfs.dir_close, self.fs, dh)
        return names

    def size(self, path: str) -> int:
        return int(self._call(self._lfs.stat, self.fs, path).size)

    def unmount(self) -> None:
        if self.mounted and not self.ctx.dead:
            self.mounted = False
            self._call(self._lfs.unmount, self.fs)


class LfsFile:
    """A binary file on LittleFsFs. Closes exactly once: littlefs aborts the
    process if a handle is closed twice, which littlefs-python's own file object
    does when a close fails."""

    def __init__(self, owner: LittleFsFs, fh: Any) -> None:
        self._owner = owner
        self._fh = fh
        self.closed = False

    def _check(self) -> None:
        if self.closed:
            raise OSError(errno.EBADF, "file is closed")

    def read(self, n: int = -1) -> bytes:
        self._check()
        lfs = self._owner._lfs
        if n is None or n < 0:
            n = self._owner._call(lfs.file_size, self._owner.fs, self._fh) - self._owner._call(
                lfs.file_tell, self._owner.fs, self._fh
            )
        return bytes(self._owner._call(lfs.file_read, self._owner.fs, self._fh, n))

    def write(self, data: Any) -> int:
        self._check()
        return int(
            self._owner._call(self._owner._lfs.file_write, self._owner.fs, self._fh, bytes(data))
        )

    def flush(self) -> None:
        self._check()
        self._owner._call(self._owner._lfs.file_sync, self._owner.fs, self._fh)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._owner.ctx.dead:
            # The board is off; littlefs's state is gone with it.
            raise PowerCut("flash has no power")
        self._owner._call(self._owner._lfs.file_close, self._owner.fs, self._fh)

    def __enter__(self) -> LfsFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
