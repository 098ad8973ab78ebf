# Atomic record store on littlefs over a RAM block device; runs on CPython and
# MicroPython. On MicroPython littlefs is vfs.VfsLfs2; on CPython it is
# littlefs-python through simulator.lfs.LittleFsFs, on the same device class.
import binascii

from firmware.fs import Fs
from firmware.store import HEADER_SIZE, MAGIC, Store, StoreError
from simulator.mpy.flash import RamBlockDevice
from testvectors import raises

try:
    import vfs
except ImportError:
    vfs = None

BS = 1024
NB = 16
SECRET = b"\x5a\xc3" + bytes(range(30))


def _mount(dev, mkfs=False):
    if vfs is not None:
        from firmware.fs import mount_lfs

        return mount_lfs(dev, mkfs)
    from simulator.lfs import LittleFsFs

    return LittleFsFs.mkfs(dev) if mkfs else LittleFsFs(dev)


def fresh():
    dev = RamBlockDevice(BS, NB)
    fs = _mount(dev, True)
    return dev, fs, Store("/s", fs)


def write_raw(fs, path, data):
    f = fs.open(path, "wb")
    f.write(data)
    f.close()


def test_roundtrip_and_versions():
    dev, fs, st = fresh()
    assert st.load("config") is None
    assert st.version("config") == 0
    assert st.save("config", b"one") == 1
    assert st.load("config") == b"one"
    assert st.save("config", bytearray(b"two!")) == 2
    assert st.load("config") == b"two!"
    assert st.version("config") == 2
    assert st.save("empty", b"") == 1
    assert st.load("empty") == b""
    big = bytes(i & 0xFF for i in range(3000))  # more than one block
    st.save("revocation", big)
    assert st.load("revocation") == big
    assert st.names() == ["config", "empty", "revocation"]
    assert fs.size("/s/config") == HEADER_SIZE + 4


def test_survives_remount():
    dev, fs, st = fresh()
    st.save("config", b"abc")
    st.save("config", b"abcd")
    st.save("time", b"\x00\x00\x01\x00")
    st2 = Store("/s", _mount(dev))
    assert st2.load("config") == b"abcd"
    assert st2.version("config") == 2
    assert st2.load("time") == b"\x00\x00\x01\x00"


def test_stale_new_is_ignored_and_cleaned():
    dev, fs, st = fresh()
    st.save("config", b"old")
    write_raw(fs, "/s/config.new", b"half a reco")  # left by a power cut
    write_raw(fs, "/s/secret.new", SECRET)  # first save cut before the rename
    assert st.load("config") == b"old"
    assert st.load("secret") is None
    assert st.names() == ["config"]
    st2 = Store("/s", fs)  # boot: stale .new files go
    assert sorted(fs.listdir("/s")) == ["config"]
    assert st2.load("config") == b"old"
    assert st2.save("config", b"new") == 2
    assert st2.load("config") == b"new"


def test_damaged_record_raises_without_contents():
    dev, fs, st = fresh()
    st.save("secret", SECRET)
    f = fs.open("/s/secret", "rb")
    raw = bytearray(f.read())
    f.close()
    assert raw[0:4] == MAGIC and raw[HEADER_SIZE:] == SECRET
    cases = []
    b = bytearray(raw)
    b[HEADER_SIZE + 3] ^= 0x40  # body
    cases.append(b)
    b = bytearray(raw)
    b[5] ^= 1  # version: covered by the crc too
    cases.append(b)
    b = bytearray(raw)
    b[0] = ord("X")  # magic
    cases.append(b)
    cases.append(raw[:-1])  # truncated: length mismatch
    cases.append(raw[:7])  # shorter than a header
    hexed = binascii.hexlify(SECRET).decode()
    for bad in cases:
        write_raw(fs, "/s/secret", bytes(bad))
        try:
            st.load("secret")
        except StoreError as exc:
            msg = str(exc) + repr(exc)
            assert hexed[:8] not in msg and str(SECRET[:4]) not in msg
        else:
            raise AssertionError("damaged record accepted")
    assert st.save("secret", SECRET) == 1  # replaced; numbering restarts
    assert st.load("secret") == SECRET
    assert "5a" not in repr(st) and repr(st) == "<Store /s>"


def test_delete_and_wipe():
    dev, fs, st = fresh()
    st.save("config", b"c")
    st.save("secret", SECRET)
    write_raw(fs, "/s/secret.new", b"x")
    assert st.delete("secret") is True
    assert st.delete("secret") is False
    assert st.load("secret") is None
    assert st.names() == ["config"]
    st.save("time", b"t")
    write_raw(fs, "/s/time.new", b"y")
    assert st.wipe() == 3
    assert fs.listdir("/s") == []
    assert st.load("config") is None
    assert st.save("config", b"again") == 1


def test_bad_names_and_sizes():
    dev, fs, st = fresh()
    for name in ("", "a/b", "x.new", ".", "..", "n" * 49, None):
        assert raises(StoreError, st.save, name, b"1")
        assert raises(StoreError, st.load, name)
    small = Store("/t", fs, max_size=8)
    assert raises(StoreError, small.save, "big", b"123456789")
    small.save("ok", b"12345678")
    assert small.load("ok") == b"12345678"
    # A file bigger than max_size is refused before its body is read.
    write_raw(fs, "/t/huge", MAGIC + bytes(12) + bytes(20))
    assert raises(StoreError, small.load, "huge")


def test_root_store_and_host_directory():
    dev, fs, st = fresh()
    top = Store("/", fs)
    top.save("a", b"1")
    assert top.load("a") == b"1" and "a" in fs.listdir("/")
    # The same Store over os + open, as on the lock with littlefs mounted at /
    # (here: a host directory; on MicroPython below, a mounted VfsLfs2).
    import random

    d = "/tmp/nkstore%08x" % random.getrandbits(32)
    host = Store(d)
    try:
        host.save("config", b"host")
        host.save("config", b"host2")
        assert Store(d).load("config") == b"host2"
        assert Store(d).version("config") == 2
    finally:
        host.wipe()
        import os

        os.rmdir(d)


def test_mounted_vfs_with_os():
    if vfs is None:
        return  # MicroPython only; CPython covers LittleFsFs above
    dev = RamBlockDevice(BS, NB)
    vfs.VfsLfs2.mkfs(dev)
    vfs.mount(vfs.VfsLfs2(dev), "/nklfs")
    try:
        st = Store("/nklfs/store")
        assert isinstance(st._fs, Fs)
        st.save("config", b"mounted")
        assert Store("/nklfs/store").load("config") == b"mounted"
    finally:
        vfs.umount("/nklfs")
    st = Store("/store", _mount(dev))
    assert st.load("config") == b"mounted"
