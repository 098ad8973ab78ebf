# Atomic, versioned storage of small records (configuration, the lock secret,
# the revocation list, the last trusted time) as files on littlefs.
#
# save(name, data) writes NAME.new, syncs and closes it, then renames it over
# NAME. littlefs commits a rename atomically, so after a power cut at any point
# NAME holds either the old or the new record, never a mix. A NAME.new left by a
# cut was never committed: load() ignores it and the next save() or the next
# Store() removes it.
#
# File layout (big-endian): magic b"NKS1" | version u32 | length u32 |
# crc u32 | body. crc = crc32 over the first 12 header bytes and the body, so a
# damaged version or length is caught as well as a damaged body. The version
# counts saves of that name (1 for the first) and survives reboots.
#
# Errors never carry record contents: messages name the record and the fault.
import binascii

from firmware.fs import Fs

MAGIC = b"NKS1"
HEADER_SIZE = 16
NEW_SUFFIX = ".new"
MAX_NAME = 48


class StoreError(ValueError):
    pass


def _check_name(name):
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_NAME
        or "/" in name
        or name in (".", "..")
        or name.endswith(NEW_SUFFIX)
    ):
        raise StoreError("invalid record name")


def _crc(head12, body):
    return binascii.crc32(body, binascii.crc32(head12)) & 0xFFFFFFFF


class Store:
    def __init__(self, root="/store", fs=None, max_size=16384):
        self._fs = fs if fs is not None else Fs()
        root = root.rstrip("/")
        self._root = root
        self.max_size = max_size
        if root:
            try:
                self._fs.mkdir(root)
            except OSError:
                pass  # it exists (or the next operation reports the problem)
        self.cleanup()

    def __repr__(self):
        return "<Store %s>" % (self._root or "/")

    def _path(self, name):
        return self._root + "/" + name

    def _read(self, name, header_only=False):
        # (version, body or None), or None if NAME does not exist.
        path = self._path(name)
        try:
            size = self._fs.size(path)
        except OSError:
            return None
        if size < HEADER_SIZE or size - HEADER_SIZE > self.max_size:
            raise StoreError("record %s has a bad size" % name)
        f = self._fs.open(path, "rb")
        try:
            head = f.read(HEADER_SIZE)
            body = None if header_only else f.read(size - HEADER_SIZE)
        finally:
            f.close()
        if len(head) != HEADER_SIZE or head[0:4] != MAGIC:
            raise StoreError("record %s has a bad header" % name)
        version = int.from_bytes(head[4:8], "big")
        length = int.from_bytes(head[8:12], "big")
        if length != size - HEADER_SIZE:
            raise StoreError("record %s has a bad length" % name)
        if body is not None:
            if len(body) != length or int.from_bytes(head[12:16], "big") != _crc(head[0:12], body):
                raise StoreError("record %s fails its check" % name)
        return version, body

    def load(self, name):
        """The committed body of NAME as bytes, or None if it was never saved.
        Raises StoreError if the committed file is damaged: a damaged record is
        a fault to report, never the same as an absent one."""
        _check_name(name)
        got = self._read(name)
        return None if got is None else got[1]

    def version(self, name):
        """How many times NAME has been saved (0 if it does not exist)."""
        _check_name(name)
        got = self._read(name)
        return 0 if got is None else got[0]

    def save(self, name, data):
        """Commit DATA as the new body of NAME; returns the new version."""
        _check_name(name)
        n = len(data)
        if n > self.max_size:
            raise StoreError("record %s is too large" % name)
        try:
            got = self._read(name, True)
        except StoreError:
            got = None  # a damaged record is replaced, numbering starts again
        version = 1 if got is None else got[0] + 1
        if version > 0xFFFFFFFF:
            raise StoreError("record %s version overflow" % name)
        head = MAGIC + version.to_bytes(4, "big") + n.to_bytes(4, "big")
        head += _crc(head, data).to_bytes(4, "big")
        path = self._path(name)
        tmp = path + NEW_SUFFIX
        f = self._fs.open(tmp, "wb")
        try:
            written = f.write(head)
            written += f.write(data)
            self._fs.sync(f)
        finally:
            f.close()
        if written != HEADER_SIZE + n:
            raise StoreError("record %s: short write" % name)
        self._fs.rename(tmp, path)
        return version

    def delete(self, name):
        """Remove NAME (and any uncommitted NAME.new). True if NAME existed."""
        _check_name(name)
        self._remove(self._path(name) + NEW_SUFFIX)
        return self._remove(self._path(name))

    def _remove(self, path):
        try:
            self._fs.remove(path)
        except OSError:
            return False
        return True

    def _listdir(self):
        try:
            return self._fs.listdir(self._root or "/")
        except OSError:
            return []

    def names(self):
        """The committed record names, sorted."""
        return sorted(n for n in self._listdir() if not n.endswith(NEW_SUFFIX))

    def cleanup(self):
        """Remove NAME.new files left by power cuts. Returns how many."""
        count = 0
        for n in self._listdir():
            if n.endswith(NEW_SUFFIX) and self._remove(self._path(n)):
                count += 1
        return count

    def wipe(self):
        """Factory reset: remove every file under the root. littlefs does not
        scrub freed blocks; erasing the old data is the caller's (reformat)."""
        count = 0
        for n in self._listdir():
            if self._remove(self._path(n)):
                count += 1
        return count
