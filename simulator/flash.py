"""The simulator's flash on CPython: the one NOR-flash model
(simulator/mpy/flash.py, shared with MicroPython) with CPython's conveniences.

``FlashDevice`` is that model's chip (erased bytes read 0xFF, programming can
only clear bits, erasing is per block, power cuts at any program or erase)
with operation counters per region, and its bytes in memory or in a file
through mmap (so a restarted simulator keeps its flash).

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
from typing import Any

from simulator.mpy import flash as core
from simulator.mpy.flash import (  # noqa: F401  (the model's names, for callers)
    CUT_MODES,
    IOCTL_BLOCK_COUNT,
    IOCTL_BLOCK_ERASE,
    IOCTL_BLOCK_SIZE,
    IOCTL_DEINIT,
    IOCTL_INIT,
    IOCTL_SYNC,
    FlashError,
    PowerCut,
    RamBlockDevice,
)

# Geometry shared with MicroPython's VfsLfs2 defaults (readsize=32, progsize=32,
# lookahead=32; cache = min(block, 4 * max(read, prog)); block_cycles=100), so an
# image made on either interpreter mounts on the other.
LFS_READ_SIZE = 32
LFS_PROG_SIZE = 32
LFS_LOOKAHEAD = 32
LFS_BLOCK_CYCLES = 100
LFS_ERR_IO = -5


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

    def add(self, kind: str, n: int) -> None:
        if kind == "read":
            self.reads += 1
            self.bytes_read += n
        elif kind == "program":
            self.writes += 1
            self.bytes_written += n
        else:
            self.erases += 1

    def __repr__(self) -> str:
        return "Counters(%s)" % ", ".join("%s=%d" % kv for kv in self.as_dict().items())


class FlashDevice(core.Flash):
    """A NOR flash chip of ``size`` bytes in erase blocks of ``erase_size``,
    counting operations in ``total`` and per region name in ``regions``."""

    def __init__(
        self,
        size: int,
        erase_size: int = 4096,
        prog_size: int = 1,
        *,
        strict: bool = False,
        path: str | None = None,
    ) -> None:
        super().__init__(core.RamStore(size), size, erase_size)
        if prog_size <= 0 or erase_size % prog_size:
            raise FlashError("prog_size must divide erase_size")
        self.prog_size = prog_size
        self.strict = strict
        # Set to a list to record ("program" | "erase", address, length) per op.
        self.trace: list[tuple[str, int, int]] | None = None
        self.path = path
        self._file: Any = None
        self.total = Counters()
        self.regions: dict[str, Counters] = {}

    @property
    def data(self) -> bytearray | mmap.mmap:
        return self.store.buf

    @data.setter
    def data(self, buf: bytearray | mmap.mmap) -> None:
        self.store = core.RamStore(buf=buf)

    def read(self, addr: int, buf: Any, region: str | None = None) -> Any:
        """Read into ``buf``; given a length instead, return the bytes."""
        if isinstance(buf, int):
            out = bytearray(buf)
            super().read(addr, out, region)
            return bytes(out)
        return super().read(addr, buf, region)

    def program(self, addr: int, data: Any, region: str | None = None) -> None:
        n = len(data)
        if addr % self.prog_size or n % self.prog_size:
            raise FlashError("program not aligned to the program size")
        if self.strict and 0 <= addr and addr + n <= self.size and self.powered:
            if bytes(self.data[addr : addr + n]) != b"\xff" * n:
                raise FlashError("program over bytes that are not erased (strict mode)")
        super().program(addr, data, region)

    def _cut_now(self, kind: str, addr: int, n: int) -> bool:
        if self.trace is not None:
            self.trace.append((kind, addr, n))
        return super()._cut_now(kind, addr, n)

    def cut_random(self, seed: int, within: int = 100) -> tuple[int, str]:
        """Arm a cut at a random one of the next ``within`` operations, in a
        random mode (the model's own generator). Returns (n, mode) so a
        failure can be replayed."""
        rng = core.Rng(seed)
        n = rng.below(within)
        mode = CUT_MODES[rng.below(len(CUT_MODES))]
        self.cut_at(n, mode, rng.next32())
        return n, mode

    def count(self, kind: str, region: str | None, n: int) -> None:
        self.total.add(kind, n)
        if region is not None:
            c = self.regions.get(region)
            if c is None:
                c = self.regions[region] = Counters()
            c.add(kind, n)

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
        data = self.data
        if isinstance(data, mmap.mmap):
            data.flush()
            self.data = bytearray(self.size)
            data.close()
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


class BlockDevice(core.Partition):
    """A region of a FlashDevice (``block_count`` erase blocks from
    ``start_block``) as a MicroPython (extended) block device, counted under
    ``name``. ``writeblocks(n, buf, offset)`` only programs (the caller erases
    with ``ioctl(6, n)``), as littlefs and the event log expect;
    ``writeblocks(n, buf)`` without an offset is the simple protocol and erases
    the blocks first, as esp32.Partition does."""

    def __init__(
        self, flash: FlashDevice, start_block: int, block_count: int, name: str | None = None
    ) -> None:
        if start_block < 0 or block_count <= 0:
            raise FlashError("bad region")
        es = flash.erase_size
        super().__init__(flash, start_block * es, block_count * es,
                         name or "blocks %d+%d" % (start_block, block_count))
        self.start_block = start_block

    @property
    def counters(self) -> Counters:
        assert isinstance(self.flash, FlashDevice) and self.name is not None
        return self.flash.regions.setdefault(self.name, Counters())


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
