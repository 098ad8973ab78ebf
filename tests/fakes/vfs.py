# Fake `vfs`: mount() lists what the test mounted (the boards' _boot.py
# mounts littlefs at "/"); VfsLfs2 is MicroPython's own on the unix port and,
# on CPython, littlefs-python on the same block device (a real littlefs:
# files survive a new VfsLfs2 over the same flash).
_mounts = []
VfsLfs2 = None


def configure(real_vfs):
    global VfsLfs2
    VfsLfs2 = real_vfs.VfsLfs2 if real_vfs is not None else CPythonVfsLfs2


def mount(fsobj=None, mount_point=None, *, readonly=False):
    if fsobj is None:
        return list(_mounts)
    _mounts.append((fsobj, mount_point))
    return None


def umount(mount_point):
    for i in range(len(_mounts)):
        if _mounts[i][1] == mount_point:
            del _mounts[i]
            return
    raise OSError(22)


def _oserror(exc):
    code = getattr(exc, "code", -5)
    return OSError(-code if code < 0 else 5, str(exc))


class CPythonVfsLfs2:
    """The methods of vfs.VfsLfs2 the firmware uses, over littlefs-python."""

    def __init__(self, block_dev, readsize=32, progsize=32, lookahead=32, mtime=True):
        self._lfs = self._make(block_dev, readsize, progsize, lookahead, True)

    @staticmethod
    def _make(bdev, readsize, progsize, lookahead, mount):
        import littlefs

        class Context(littlefs.UserContext):
            def __init__(self):
                pass

            def read(self, cfg, block, off, size):
                buf = bytearray(size)
                bdev.readblocks(block, buf, off)
                return buf

            def prog(self, cfg, block, off, data):
                bdev.writeblocks(block, bytes(data), off)
                return 0

            def erase(self, cfg, block):
                bdev.ioctl(6, block)
                return 0

            def sync(self, cfg):
                return 0

        try:
            return littlefs.LittleFS(context=Context(), block_size=bdev.ioctl(5, 0),
                                     block_count=bdev.ioctl(4, 0), read_size=readsize,
                                     prog_size=progsize, lookahead_size=lookahead, mount=mount)
        except littlefs.LittleFSError as exc:
            raise _oserror(exc) from None

    @staticmethod
    def mkfs(block_dev, readsize=32, progsize=32, lookahead=32):
        import littlefs

        fs = CPythonVfsLfs2._make(block_dev, readsize, progsize, lookahead, False)
        try:
            fs.format()
        except littlefs.LittleFSError as exc:
            raise _oserror(exc) from None

    def _call(self, fn, *args):
        import littlefs

        try:
            return fn(*args)
        except littlefs.LittleFSError as exc:
            raise _oserror(exc) from None

    def open(self, path, mode="r"):
        return self._call(self._lfs.open, path, mode)

    def rename(self, src, dst):
        self._call(self._lfs.rename, src, dst)

    def remove(self, path):
        self._call(self._lfs.remove, path)

    def mkdir(self, path):
        self._call(self._lfs.mkdir, path)

    def ilistdir(self, path="/"):
        for name in self._call(self._lfs.listdir, path):
            st = self._call(self._lfs.stat, path.rstrip("/") + "/" + name)
            yield (name, 0x4000 if st.type == 2 else 0x8000, 0, st.size)

    def stat(self, path):
        st = self._call(self._lfs.stat, path)
        return (0x4000 if st.type == 2 else 0x8000, 0, 0, 0, 0, 0, st.size, 0, 0, 0)

    def statvfs(self, path):
        cfg = self._lfs.cfg
        free = cfg.block_count - self._lfs.used_block_count
        return (cfg.block_size, cfg.block_size, cfg.block_count, free, free, 0, 0, 0, 0, 255)
