# The few file operations firmware/store.py needs, and littlefs on a block device.
#
# Store works through a small filesystem object with these methods:
#   open(path, mode) -> file (read, write, flush, close)   sync(file)
#   rename(src, dst)   remove(path)   mkdir(path)   listdir(path) -> names
#   size(path) -> int (raises OSError if the path does not exist)
# Fs gives them over an os-like module: `os` itself with the builtin open (the
# filesystem mounted at / on the lock, or a host directory on CPython), or a
# MicroPython VFS object such as vfs.VfsLfs2(bdev) used without mounting it.
# On CPython the simulator gives the same methods over littlefs-python with
# simulator.flash.LittleFsFs, on the same block devices.

import os


class Fs:
    def __init__(self, mod=None, opener=None):
        if mod is None:
            mod = os
            opener = open
        elif opener is None:
            opener = mod.open  # a VFS object opens its own files
        self._mod = mod
        self._open = opener

    def open(self, path, mode="rb"):
        return self._open(path, mode)

    def sync(self, f):
        # On littlefs, flush() commits the file (lfs_file_sync). A host
        # filesystem on CPython also needs fsync to reach the disk.
        f.flush()
        fsync = getattr(self._mod, "fsync", None)
        if fsync is not None and hasattr(f, "fileno"):
            fsync(f.fileno())

    def rename(self, src, dst):
        self._mod.rename(src, dst)

    def remove(self, path):
        self._mod.remove(path)

    def mkdir(self, path):
        self._mod.mkdir(path)

    def listdir(self, path):
        ilistdir = getattr(self._mod, "ilistdir", None)
        if ilistdir is not None:
            return [e[0] for e in ilistdir(path)]
        return self._mod.listdir(path)

    def size(self, path):
        return self._mod.stat(path)[6]


def mount_lfs(bdev, mkfs=False):
    """littlefs on a block device (MicroPython): an Fs over vfs.VfsLfs2(bdev),
    not mounted anywhere. Formats first only if mkfs is true: a filesystem that
    fails to mount raises OSError rather than being silently reformatted."""
    import vfs  # MicroPython only; the simulator uses simulator.flash.LittleFsFs

    if mkfs:
        vfs.VfsLfs2.mkfs(bdev)
    return Fs(vfs.VfsLfs2(bdev))  # type: ignore[abstract]  # (stubs: bdev protocol)


_FF64 = b"\xff" * 64


class RamBlockDevice:
    """A block device in RAM with MicroPython's extended block-device protocol
    (readblocks/writeblocks with offsets, ioctl 4/5/6 for count, size, erase).
    For tests and for running without flash; starts erased (0xFF)."""

    def __init__(self, block_size, block_count):
        self.block_size = block_size
        self.block_count = block_count
        self.data = bytearray(block_size * block_count)
        self._mv = memoryview(self.data)
        for b in range(block_count):  # erased, without a second device-sized copy
            self.ioctl(6, b)

    def readblocks(self, block_num, buf, offset=0):
        a = block_num * self.block_size + offset
        n = len(buf)
        if a < 0 or a + n > len(self.data):
            raise OSError(22)  # EINVAL
        buf[:] = self._mv[a : a + n]

    def writeblocks(self, block_num, buf, offset=None):
        n = len(buf)
        if offset is None:  # simple protocol: whole blocks, erased first
            for i in range(n // self.block_size):
                self.ioctl(6, block_num + i)
            offset = 0
        a = block_num * self.block_size + offset
        if a < 0 or a + n > len(self.data):
            raise OSError(22)
        self._mv[a : a + n] = buf

    def ioctl(self, op, arg):
        if op == 4:
            return self.block_count
        if op == 5:
            return self.block_size
        if op == 6:
            if not 0 <= arg < self.block_count:
                raise OSError(22)
            i = arg * self.block_size
            end = i + self.block_size
            while i < end:  # in small pieces: no block-sized temporary
                k = min(64, end - i)
                self._mv[i : i + k] = _FF64 if k == 64 else _FF64[:k]
                i += k
            return 0
        if op in (1, 2, 3):
            return 0
        return None
