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
# simulator.lfs.LittleFsFs, on the same block devices (the one flash model,
# simulator/mpy/flash.py, which also gives tests a RamBlockDevice).

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
    import vfs  # MicroPython only; the simulator uses simulator.lfs.LittleFsFs

    if mkfs:
        vfs.VfsLfs2.mkfs(bdev)
    return Fs(vfs.VfsLfs2(bdev))  # type: ignore[abstract]  # (stubs: bdev protocol)
