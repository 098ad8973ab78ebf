"""littlefs-python on the simulator's flash (CPython only).

``LittleFsFs`` mounts littlefs-python on a MicroPython-style block device
(simulator.flash.BlockDevice, or any device of the flash model) so that the
simulator's filesystem sees the same flash, the same faults and the same file
interface as firmware/fs.py gives on the lock.
"""

from __future__ import annotations

import errno
from typing import Any

from simulator.mpy.flash import (
    IOCTL_BLOCK_COUNT,
    IOCTL_BLOCK_ERASE,
    IOCTL_BLOCK_SIZE,
    IOCTL_SYNC,
    PowerCut,
)

# Geometry shared with MicroPython's VfsLfs2 defaults (readsize=32, progsize=32,
# lookahead=32; cache = min(block, 4 * max(read, prog)); block_cycles=100), so an
# image made on either interpreter mounts on the other.
LFS_READ_SIZE = 32
LFS_PROG_SIZE = 32
LFS_LOOKAHEAD = 32
LFS_BLOCK_CYCLES = 100
LFS_ERR_IO = -5


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
